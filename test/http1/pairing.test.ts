import { describe, expect, it } from 'vitest';
import { runScenario, summary, type Step } from '../helpers/http.js';
import type { HttpFlowRecord } from '../../src/flows/record.js';
import { httpRun } from '../helpers/pipeline.js';

/*
 * Malformed bytes must never make a response pair with a request it did not answer. These are
 * the shapes the mutation property (property.test.ts) found, kept as fixed cases. Each response
 * echoes its request's path in X-Echo-Path.
 */

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: example.test\r\n${extra}\r\n`;
const echo = (path: string, status = '200 OK', body = '') =>
  `HTTP/1.1 ${status}\r\nX-Echo-Path: ${path}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

/** Pairs of two known paths that do not match (a mangled path proves nothing either way). */
function wrongPairs(records: HttpFlowRecord[]): string[] {
  const known = /^\/e\d$/;
  return records.filter((r) => {
    const echoPath = r.response?.headers['x-echo-path'];
    return r.request && echoPath !== undefined && known.test(r.request.path) && known.test(echoPath) && echoPath !== r.request.path;
  }).map((r) => `${summary(r)} carries the response for ${r.response!.headers['x-echo-path']}`);
}

const cases: { name: string; steps: Step[]; check?: (records: HttpFlowRecord[], violations: Record<string, number>) => void }[] = [
  {
    // A line without a colon in a header section is invalid (RFC 9112 §5.1); accepting it silently
    // lets a broken request swallow the next one, and in-order pairing slips by one.
    name: 'a header line without a colon (NUL instead of the blank line\'s CR)',
    steps: [
      ['c', 'GET /e0 HTTP/1.1\r\nHost: example.test\r\n\u0000\n'], ['s', echo('/e0')],
      ['c', get('/e1')], ['s', echo('/e1')],
      ['c', get('/e2')], ['s', echo('/e2')],
    ],
    check: (_records, violations) => expect(Object.keys(violations).some((c) => c.startsWith('http.'))).toBe(true),
  },
  {
    // Response /e0's status line and request /e1's request line are both broken: /e1 is not in
    // the queue, so "exactly one candidate" (/e0) is not proof; /e1's response must stay unpaired.
    name: 'a broken response, then a broken request: the next response answers the broken request',
    steps: [
      ['c', get('/e0')], ['s', '\u0000' + echo('/e0').slice(1)],
      ['c', '\u0000' + get('/e1').slice(1)], ['s', echo('/e1')],
    ],
  },
  {
    name: 'a broken request line after a gap in the responses',
    steps: [
      ['c', get('/e0')], ['s', echo('/e0', '200 OK', 'a')],
      ['c', get('/e1')], ['s', 'HTTP/1.1 5' + echo('/e1').slice(10)],
      ['c', get('/e2').replace(' HTTP', '\u0000HTTP')], ['s', echo('/e2')],
    ],
  },
  {
    // The request's chunked body ends in a broken trailer line that runs into the next request;
    // its response had already been paired with it and must stay paired.
    name: 'a request broken after its response was seen keeps that response',
    steps: [
      ['c', 'POST /e0 HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\u0000'],
      ['s', echo('/e0')],
      ['c', 'POST /e1 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n'], ['s', echo('/e1')],
    ],
    check: (records) => {
      const e0 = records.filter((r) => r.response?.headers['x-echo-path'] === '/e0');
      expect(e0, 'the response to /e0 is reported').toHaveLength(1);
    },
  },
  {
    // Response /e0 is broken at its status line, so no response half is ever parsed for it, and
    // request /e1's header section never ends. /e0 is the only queued request, but the response
    // to /e1 must not be taken for /e0's: the server may be answering the request in progress.
    name: 'a broken status line, then a request whose header section never ends',
    steps: [
      ['c', get('/e0')], ['s', '\u0000' + echo('/e0').slice(1)],
      ['c', 'GET /e1 HTTP/1.1\r\nHost: example.test\r\n\r\u0000'], ['s', echo('/e1')],
    ],
  },
  {
    // As above, but the unfinished header section runs into the next request, which makes it
    // malformed only once that request's bytes arrive (after the response to /e1 was seen).
    name: 'a broken status line, then a request that turns out malformed only later',
    steps: [
      ['c', get('/e0')], ['s', '\u0000' + echo('/e0').slice(1)],
      ['c', 'OPTIONS /e1 HTTP/1.1\r\nHost: example.test\r\n\r\u0000'], ['s', echo('/e1')],
      ['c', get('/e2')], ['s', echo('/e2')],
    ],
  },
  {
    // "Transfer-Encoding" lost its T, so the line folds into the previous field and the request
    // has no body framing: its chunked body's last-chunk line "0" is left over. A lenient
    // request-line parse must not turn "0" into a request, or every later pair slips by one.
    name: 'a chunk terminator left over after a lost framing header is not a request',
    steps: [
      ['c', 'POST /e0 HTTP/1.1\r\nHost: example.test\r\n ransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], ['s', echo('/e0')],
      ['c', get('/e1')], ['s', echo('/e1')],
      ['c', get('/e2')], ['s', echo('/e2')],
    ],
  },
  {
    // http-parser-js reads header bytes as 'ascii', which drops the high bit: 0xB1 ('±') becomes
    // '1', so "Content-Length: \xB10" would read as 10 and eat the next response's first bytes.
    name: 'a Content-Length with a non-ASCII byte is invalid, not a number',
    steps: [
      ['c', get('/e0')], ['s', echo('/e0', '200 OK', 'a')],
      ['c', get('/e1')], ['s', 'HTTP/1.1 500 Oops\r\nX-Echo-Path: /e1\r\nContent-Length: \u00b10\r\n\r\n'],
      ['c', get('/e2')], ['s', echo('/e2', '200 OK', 'ccc')],
    ],
    check: (records, violations) => {
      expect(violations['http.invalid_content_length']).toBe(1);
      expect(records.filter((r) => r.response?.headers['x-echo-path'] === '/e2')).toHaveLength(1);
    },
  },
];

describe('malformed input never pairs a response with the wrong request', () => {
  for (const c of cases) {
    it(c.name, () => {
      const { records, violations } = httpRun(runScenario({ steps: c.steps }));
      expect(wrongPairs(records)).toEqual([]);
      c.check?.(records, violations);
    });
  }
});

describe('header bytes are kept as sent', () => {
  it('a UTF-8 header value is not mangled (obs-text, RFC 9110 §5.5)', () => {
    const value = Buffer.from('attachment; filename="café.txt"', 'utf8').toString('latin1');
    const { records } = httpRun(runScenario({ steps: [['c', get('/file')], ['s', `HTTP/1.1 200 OK\r\nContent-Disposition: ${value}\r\nContent-Length: 0\r\n\r\n`]] }));
    // Either decoding is acceptable; stripping the high bit of each byte is not.
    expect(['attachment; filename="café.txt"', value]).toContain(records[0]!.response!.headers['content-disposition']);
  });
});
