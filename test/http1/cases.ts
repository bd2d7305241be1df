/**
 * HTTP/1 spec cases as data, in the spirit of llhttp's test/request/*.md: each case is the byte
 * exchange on one TCP connection (steps in wire order) and the flow records it must produce.
 * `records` are summaries ("METHOD path -> status (incompleteReason upgrade=…)"), checked in
 * order and in number; `details` are partial records checked with toMatchObject.
 */
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import type { ConversationOptions } from '../helpers/bytes.js';
import type { Step } from '../helpers/http.js';



export interface HttpCase {
  name: string;
  steps: Step[];
  records: string[];
  details?: Record<string, unknown>[];
  /** Violation counts by code (exact); undefined: none expected. */
  violations?: Record<string, number>;
  /** Violation codes must match this (a stable code), and at least one must occur. */
  violationPattern?: RegExp;
  conv?: ConversationOptions;
  /** Default: true. Without it the capture starts mid-connection. */
  handshake?: boolean;
  /** How the connection ends. Default: 'fin' (client first). */
  end?: 'fin' | 'server-fin' | 'none' | 'rst';
  /** Dispatcher stats to check. */
  unknownConnections?: number;
}

const CRLF = '\r\n';
export const req = (method: string, path: string, headers: string[] = [], body = '') =>
  `${method} ${path} HTTP/1.1${CRLF}Host: example.test${CRLF}${headers.map((h) => h + CRLF).join('')}${CRLF}${body}`;
export function resp(status: string, headers?: string[], body?: string): string;
export function resp(status: string, headers: string[], body: Buffer): Buffer;
export function resp(status: string, headers: string[] = [], body: string | Buffer = ''): string | Buffer {
  const head = `HTTP/1.1 ${status}${CRLF}${headers.map((h) => h + CRLF).join('')}${CRLF}`;
  return typeof body === 'string' ? head + body : Buffer.concat([Buffer.from(head, 'latin1'), body]);
}
export const ok = (body: string, headers: string[] = []) => resp('200 OK', [`Content-Length: ${Buffer.byteLength(body)}`, ...headers], body);

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(4);

/** A WebSocket frame (RFC 6455 §5.2), masked when sent by the client. */
function wsFrame(payload: Buffer, masked: boolean, opcode = 2): Buffer {
  const head = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([head, key, Buffer.from(payload.map((b, i) => b ^ key[i % 4]!))]);
}

/** Bytes that look like TLS records, with an HTTP-looking line inside to tempt a resync. */
const tlsish = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]), Buffer.alloc(20, 0xab), Buffer.from('\nHTTP/1.1 200 OK\r\n\r\n'), Buffer.alloc(24, 0x17)]);

export const CASES: HttpCase[] = [
  {
    name: 'keep-alive: three requests answered in turn',
    steps: [
      ['c', req('GET', '/one')], ['s', ok('first')],
      ['c', req('GET', '/two?q=1')], ['s', ok('second', ['Content-Type: text/plain'])],
      ['c', req('POST', '/three', ['Content-Length: 5'], 'hello')], ['s', resp('201 Created', ['Content-Length: 0'])],
    ],
    records: ['GET /one -> 200', 'GET /two?q=1 -> 200', 'POST /three -> 201'],
    details: [
      { request: { headers: { host: 'example.test' }, bodySize: 0 }, response: { body: 'first', bodySize: 5, reason: 'OK', version: '1.1' } },
      { response: { body: 'second', headers: { 'content-type': 'text/plain' } } },
      { request: { body: 'hello', bodySize: 5 }, response: { bodySize: 0, reason: 'Created' } },
    ],
  },
  {
    name: 'pipelining: four requests in one segment, four responses',
    steps: [
      ['c', req('GET', '/p1') + req('GET', '/p2') + req('POST', '/p3', ['Content-Length: 3'], 'abc') + req('DELETE', '/p4')],
      ['s', ok('r1') + ok('r2') + resp('202 Accepted', ['Content-Length: 2'], 'r3') + ok('r4')],
    ],
    records: ['GET /p1 -> 200', 'GET /p2 -> 200', 'POST /p3 -> 202', 'DELETE /p4 -> 200'],
    details: [{ response: { body: 'r1' } }, { response: { body: 'r2' } }, { request: { body: 'abc' }, response: { body: 'r3' } }, { response: { body: 'r4' } }],
  },
  {
    name: 'chunked body with trailers',
    steps: [
      ['c', req('GET', '/chunked', ['TE: trailers'])],
      ['s', resp('200 OK', ['Transfer-Encoding: chunked', 'Trailer: X-Checksum'], `5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc123\r\nX-Other: 1\r\n\r\n`)],
      ['c', req('GET', '/after')], ['s', ok('after')],
    ],
    records: ['GET /chunked -> 200', 'GET /after -> 200'],
    details: [{ response: { body: 'hello, world', bodySize: 12, trailers: { 'x-checksum': 'abc123', 'x-other': '1' } } }, { response: { body: 'after' } }],
  },
  {
    name: 'chunked request body with chunk extensions',
    steps: [
      ['c', req('POST', '/ext', ['Transfer-Encoding: chunked'], `5;name=value\r\nhello\r\n6 ; a=1;b="x y"\r\n world\r\n0;last\r\n\r\n`)],
      ['s', resp('204 No Content')],
      ['c', req('GET', '/next')], ['s', ok('n')],
    ],
    records: ['POST /ext -> 204', 'GET /next -> 200'],
    details: [{ request: { body: 'hello world', bodySize: 11 }, response: { bodySize: 0 } }],
  },
  {
    name: 'Transfer-Encoding: gzip, chunked is framed as chunked',
    steps: [
      ['c', req('GET', '/te')],
      ['s', (() => {
        const z = gzipSync(Buffer.from(TEXT));
        return Buffer.concat([
          Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${z.length.toString(16)}\r\n`),
          z, Buffer.from('\r\n0\r\n\r\n'),
        ]);
      })()],
      ['c', req('GET', '/after-te')], ['s', ok('fine')],
    ],
    records: ['GET /te -> 200', 'GET /after-te -> 200'],
    details: [{ response: { bodySize: gzipSync(Buffer.from(TEXT)).length } }, { response: { body: 'fine' } }],
  },
  ...([
    ['gzip', gzipSync(Buffer.from(TEXT))],
    ['deflate', deflateSync(Buffer.from(TEXT))],
    ['deflate', deflateRawSync(Buffer.from(TEXT))],
    ['br', brotliCompressSync(Buffer.from(TEXT))],
  ] as const).map(([coding, bytes], i): HttpCase => ({
    name: `Content-Encoding ${coding}${i === 2 ? ' (raw, no zlib header)' : ''}: the preview is decoded`,
    steps: [['c', req('GET', `/enc${i}`, ['Accept-Encoding: gzip, deflate, br'])], ['s', resp('200 OK', [`Content-Encoding: ${coding}`, `Content-Length: ${bytes.length}`], bytes)]],
    records: [`GET /enc${i} -> 200`],
    details: [{ response: { body: TEXT, bodySize: bytes.length, headers: { 'content-encoding': coding } } }],
  })),
  {
    name: 'Expect: 100-continue: the interim response is kept with the final one',
    steps: [
      ['c', req('PUT', '/upload', ['Content-Length: 11', 'Expect: 100-continue'])],
      ['s', 'HTTP/1.1 100 Continue\r\n\r\n'],
      ['c', 'hello world'],
      ['s', resp('201 Created', ['Content-Length: 2'], 'ok')],
      ['c', req('GET', '/then')], ['s', ok('t')],
    ],
    records: ['PUT /upload -> 201', 'GET /then -> 200'],
    details: [{ request: { body: 'hello world', bodySize: 11 }, response: { interim: [{ status: 100 }], body: 'ok' } }],
  },
  {
    name: '103 Early Hints then the final response',
    steps: [
      ['c', req('GET', '/hints')],
      ['s', 'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' + ok('page')],
    ],
    records: ['GET /hints -> 200'],
    details: [{ response: { interim: [{ status: 103 }], body: 'page' } }],
  },
  {
    name: 'HEAD with Content-Length and no body, then another request',
    steps: [
      ['c', req('HEAD', '/big')], ['s', resp('200 OK', ['Content-Length: 123456'])],
      ['c', req('GET', '/small')], ['s', ok('small')],
    ],
    records: ['HEAD /big -> 200', 'GET /small -> 200'],
    details: [{ response: { bodySize: 0, headers: { 'content-length': '123456' } } }, { response: { body: 'small' } }],
  },
  {
    name: 'HEAD pipelined with a GET in one segment',
    steps: [
      ['c', req('HEAD', '/h') + req('GET', '/g')],
      ['s', resp('200 OK', ['Content-Length: 50']) + ok('gg')],
    ],
    records: ['HEAD /h -> 200', 'GET /g -> 200'],
    details: [{ response: { bodySize: 0 } }, { response: { body: 'gg' } }],
  },
  {
    name: '204 and 304 have no body',
    steps: [
      ['c', req('DELETE', '/item')], ['s', resp('204 No Content', ['X-A: 1'])],
      ['c', req('GET', '/cached', ['If-None-Match: "v1"'])], ['s', resp('304 Not Modified', ['ETag: "v1"'])],
      ['c', req('GET', '/fresh')], ['s', ok('fresh')],
    ],
    records: ['DELETE /item -> 204', 'GET /cached -> 304', 'GET /fresh -> 200'],
    details: [{ response: { bodySize: 0 } }, { response: { bodySize: 0 } }, { response: { body: 'fresh' } }],
  },
  {
    // RFC 9110 §8.6: a 304 may carry the Content-Length the 200 would have had; there is no body.
    name: '304 with the Content-Length of the representation has no body either',
    steps: [
      ['c', req('GET', '/cached', ['If-None-Match: "v1"'])], ['s', resp('304 Not Modified', ['ETag: "v1"', 'Content-Length: 20'])],
      ['c', req('GET', '/fresh')], ['s', ok('fresh')],
    ],
    records: ['GET /cached -> 304', 'GET /fresh -> 200'],
    details: [{ response: { bodySize: 0 } }, { response: { body: 'fresh' } }],
  },
  {
    name: 'body delimited by the connection close (FIN)',
    steps: [['c', req('GET', '/stream')], ['s', resp('200 OK', ['Connection: close'], 'until the end')]],
    end: 'server-fin',
    records: ['GET /stream -> 200'],
    details: [{ response: { body: 'until the end', bodySize: 13 } }],
  },
  {
    name: 'close-delimited body cut by the end of the capture is incomplete',
    steps: [['c', req('GET', '/stream')], ['s', resp('200 OK', [], 'partial')]],
    end: 'none',
    records: ['GET /stream -> 200 (capture-ended)'],
    details: [{ response: { body: 'partial' } }],
  },
  {
    name: 'request with no response before the capture ends',
    steps: [['c', req('GET', '/a')], ['s', ok('a')], ['c', req('GET', '/unanswered')]],
    end: 'none',
    records: ['GET /a -> 200', 'GET /unanswered -> ∅ (no-response-before-capture-end)'],
  },
  {
    name: 'Upgrade: websocket, 101, then frames: no records after the switch',
    steps: [
      ['c', req('GET', '/chat', ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'])],
      ['s', resp('101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo='])],
      ['c', wsFrame(Buffer.from('GET /not-http HTTP/1.1\r\n\r\n'), true, 1)],
      ['s', wsFrame(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), false, 1)],
      ['c', wsFrame(Buffer.alloc(30, 7), true)],
      ['s', wsFrame(Buffer.from('\r\nHTTP/1.1 404 Nope\r\n\r\n'), false, 1)],
    ],
    records: ['GET /chat -> 101 (upgrade=websocket)'],
  },
  {
    name: 'Upgrade and the first frame in the same segment as the 101',
    steps: [
      ['c', req('GET', '/ws', ['Upgrade: websocket', 'Connection: Upgrade'])],
      ['s', Buffer.concat([Buffer.from(resp('101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade'])), wsFrame(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), false, 1)])],
      ['c', wsFrame(Buffer.from('POST / HTTP/1.1\r\n\r\n'), true, 1)],
    ],
    records: ['GET /ws -> 101 (upgrade=websocket)'],
  },
  {
    name: 'Upgrade: h2c declined with a 200: HTTP/1.1 continues',
    steps: [
      ['c', req('GET', '/maybe-h2', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAAP__'])],
      ['s', ok('still h1')],
      ['c', req('GET', '/second')], ['s', ok('second')],
    ],
    records: ['GET /maybe-h2 -> 200', 'GET /second -> 200'],
    details: [{ response: { body: 'still h1' } }, { response: { body: 'second' } }],
  },
  {
    name: 'Upgrade declined, the next request already sent before the answer',
    steps: [
      ['c', req('GET', '/up', ['Connection: Upgrade', 'Upgrade: h2c']) + req('GET', '/queued')],
      ['s', ok('no upgrade') + ok('queued')],
    ],
    records: ['GET /up -> 200', 'GET /queued -> 200'],
    details: [{ response: { body: 'no upgrade' } }, { response: { body: 'queued' } }],
  },
  {
    name: 'CONNECT + 200, then tunnelled bytes: nothing after the tunnel is parsed',
    steps: [
      ['c', 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n'],
      ['s', 'HTTP/1.1 200 Connection Established\r\n\r\n'],
      ['c', tlsish], ['s', tlsish], ['c', Buffer.from('GET / HTTP/1.1\r\nHost: inner\r\n\r\n')], ['s', ok('inner')],
    ],
    records: ['CONNECT example.test:443 -> 200 (upgrade=tunnel)'],
  },
  {
    name: 'CONNECT + 407, then CONNECT with credentials + 200',
    steps: [
      ['c', 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n'],
      ['s', resp('407 Proxy Authentication Required', ['Proxy-Authenticate: Basic realm="p"', 'Content-Length: 6'], 'denied')],
      ['c', 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n'],
      ['s', 'HTTP/1.1 200 OK\r\n\r\n'],
      ['c', tlsish], ['s', tlsish],
    ],
    records: ['CONNECT example.test:443 -> 407', 'CONNECT example.test:443 -> 200 (upgrade=tunnel)'],
    details: [{ response: { body: 'denied' } }, {}],
  },
  {
    name: 'mid-stream start: a response with no request, then a normal exchange',
    handshake: false,
    steps: [
      ['s', 'ody of an earlier response\r\n' + ok('orphan')],
      ['c', req('GET', '/later')], ['s', ok('later')],
    ],
    records: ['∅ -> 200 (no-request-seen)', 'GET /later -> 200'],
    details: [{ response: { body: 'orphan' } }, { response: { body: 'later' } }],
  },
  {
    name: 'mid-stream start with a whole response first',
    handshake: false,
    steps: [['s', ok('first seen')], ['c', req('GET', '/x')], ['s', ok('x')]],
    records: ['∅ -> 200 (no-request-seen)', 'GET /x -> 200'],
  },
  {
    name: 'non-standard methods',
    steps: [
      ['c', req('BREW', '/pot')], ['s', resp("418 I'm a teapot", ['Content-Length: 0'])],
      ['c', req('PROPFIND', '/dav', ['Depth: 1'])], ['s', resp('207 Multi-Status', ['Content-Length: 2'], '<>')],
      ['c', req('PURGE', '/cache')], ['s', ok('purged')],
    ],
    records: ['BREW /pot -> 418', 'PROPFIND /dav -> 207', 'PURGE /cache -> 200'],
    details: [{ response: { reason: "I'm a teapot" } }],
  },
  {
    name: 'HTTP on port 9999',
    conv: { serverPort: 9999, clientPort: 50123 },
    steps: [['c', req('GET', '/odd-port')], ['s', ok('works')]],
    records: ['GET /odd-port -> 200'],
  },
  {
    name: 'HTTP/1.0 request and response without keep-alive',
    steps: [['c', 'GET /old HTTP/1.0\r\n\r\n'], ['s', 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold style']],
    end: 'server-fin',
    records: ['GET /old -> 200'],
    details: [{ request: { version: '1.0' }, response: { version: '1.0', body: 'old style' } }],
  },
  {
    name: 'a binary protocol on port 80: no records, no crash',
    steps: [
      // Content type 0x17, not 0x16: a TLS ClientHello would be decoded as tls (src/protocols/tls/).
      ['c', Buffer.from([0x17, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, ...Array(40).fill(0x5a)])],
      ['s', Buffer.from([0x16, 0x03, 0x03, 0x00, 0x5d, 0x02, ...Array(60).fill(0x33)])],
      ['c', Buffer.from('\x17\x03\x03 GET / HTTP/1.1\r\n', 'latin1')],
      ['s', Buffer.alloc(100, 0)],
    ],
    records: [],
    unknownConnections: 1,
  },
  {
    name: 'malformed: negative Content-Length, then a valid request',
    steps: [
      ['c', req('POST', '/neg', ['Content-Length: -1'])], ['s', resp('400 Bad Request', ['Content-Length: 0'])],
      ['c', req('GET', '/valid')], ['s', ok('valid')],
    ],
    records: ['POST /neg -> 400 (malformed)', 'GET /valid -> 200'],
    violations: { 'http.invalid_content_length': 1 },
  },
  {
    name: 'malformed: non-numeric Content-Length in a response, then a valid exchange',
    steps: [
      ['c', req('GET', '/nan')], ['s', resp('200 OK', ['Content-Length: twelve'], 'twelve bytes')],
      ['c', req('GET', '/valid')], ['s', ok('valid')],
    ],
    records: ['GET /nan -> 200 (malformed)', 'GET /valid -> 200'],
    violations: { 'http.invalid_content_length': 1 },
  },
  {
    name: 'malformed: invalid chunk size, then a valid exchange',
    steps: [
      ['c', req('GET', '/badchunk')], ['s', resp('200 OK', ['Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n')],
      ['c', req('GET', '/valid')], ['s', ok('valid')],
    ],
    records: ['GET /badchunk -> 200 (malformed)', 'GET /valid -> 200'],
    violations: { 'http.invalid_chunk_size': 1 },
  },
  ...[81, 200].map((kib): HttpCase => ({
    name: `malformed: a ${kib} KiB header line (over the 80 KiB limit), then a valid exchange`,
    steps: [
      ['c', req('GET', '/huge', [`X-Huge: ${'a'.repeat(kib * 1024)}`])], ['s', resp('431 Request Header Fields Too Large', ['Content-Length: 0'])],
      ['c', req('GET', '/valid')], ['s', ok('valid')],
    ],
    // The oversized request is not a message; its 431 answers nothing tapwire could pair.
    records: ['∅ -> 431 (no-request-seen)', 'GET /valid -> 200'],
    violationPattern: /^http\.[a-z0-9_]+$/,
  })),
  {
    name: 'malformed: a response line that is not HTTP, then a valid exchange',
    steps: [
      ['c', req('GET', '/garbled')], ['s', 'HTTP/1.1 2x0 Broken\r\nContent-Length: 0\r\n\r\n'],
      ['c', req('GET', '/valid')], ['s', ok('valid')],
    ],
    // The broken response is where in-order pairing expected /garbled's answer, so /garbled is
    // reported with it (malformed). /valid's response may then only be paired because the ACKs
    // prove it: /valid is the one request left that the server had received.
    records: ['GET /garbled -> ∅ (malformed)', 'GET /valid -> 200'],
    violations: { 'http.invalid_constant': 1 },
  },
  {
    name: 'malformed: chunk data longer than its size, then a valid exchange',
    steps: [
      ['c', req('GET', '/overrun')], ['s', resp('200 OK', ['Transfer-Encoding: chunked'], '3\r\nhello\r\n0\r\n\r\n')],
      ['c', req('GET', '/valid')], ['s', ok('valid')],
    ],
    records: ['GET /overrun -> 200 (malformed)', 'GET /valid -> 200'],
    violationPattern: /^http\.[a-z0-9_]+$/,
  },
  {
    name: 'three requests and no response before the capture ends: all three are reported',
    steps: [['c', req('GET', '/q1') + req('GET', '/q2')], ['c', req('GET', '/q3')]],
    end: 'none',
    records: ['GET /q1 -> ∅ (no-response-before-capture-end)', 'GET /q2 -> ∅ (no-response-before-capture-end)', 'GET /q3 -> ∅ (no-response-before-capture-end)'],
  },
  {
    name: 'a status line without a reason phrase',
    steps: [['c', req('GET', '/noreason')], ['s', 'HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok']],
    records: ['GET /noreason -> 200'],
    details: [{ response: { reason: '', body: 'ok' } }],
  },
  {
    name: 'repeated header fields are joined; Set-Cookie by newline',
    steps: [['c', req('GET', '/hdrs', ['Accept: a', 'accept: b'])], ['s', ok('h', ['Set-Cookie: a=1', 'Set-Cookie: b=2', 'Vary: x', 'Vary: y'])]],
    records: ['GET /hdrs -> 200'],
    details: [{ request: { headers: { accept: 'a, b' } }, response: { headers: { 'set-cookie': 'a=1\nb=2', vary: 'x, y' } } }],
  },
];
