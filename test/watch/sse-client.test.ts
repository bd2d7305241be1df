import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listen } from './helpers.js';
import { followEvents, MAX_EVENT_CHARS, openEvents, readEvents, SseError, SseParser, type SseEvent } from '../../src/client/sse.js';

/**
 * The SSE reader (src/client/sse.ts) against the WHATWG event-stream rules, as data: each case is
 * a stream and the events it must give, whole and split at every byte (and as random chunks).
 */
const enc = new TextEncoder();

async function collect(chunks: Uint8Array[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of readEvents(chunks)) out.push(e);
  return out;
}

const CASES: { name: string; stream: string; events: SseEvent[] }[] = [
  { name: 'named events with ids, as the agent sends them', stream: ': tapwire flow stream\n\nevent: flow\nid: a-1\ndata: {"id":"a-1"}\n\nevent: change\nid: 7\ndata: {"seq":7}\n\n',
    events: [{ event: 'flow', id: 'a-1', data: '{"id":"a-1"}' }, { event: 'change', id: '7', data: '{"seq":7}' }] },
  { name: 'multi-line data joins with \\n; no event field is "message"', stream: 'data: one\ndata: two\ndata:\ndata:  three\n\n',
    events: [{ event: 'message', data: 'one\ntwo\n\n three' }] },
  { name: 'CRLF and lone CR end lines too', stream: 'event: a\r\ndata: x\r\n\r\nevent: b\rdata: y\r\rdata: z\n\n',
    events: [{ event: 'a', data: 'x' }, { event: 'b', data: 'y' }, { event: 'message', data: 'z' }] },
  { name: 'comments and heartbeats are skipped; a blank line with no data dispatches nothing', stream: ': heartbeat\n\n:\n\nevent: lonely\n\ndata: after\n\n',
    events: [{ event: 'message', data: 'after' }] },
  { name: 'the last id persists; an id with NUL is ignored; unknown fields and retry are ignored', stream: 'id: 5\ndata: a\n\ndata: b\n\nid: 6\0\nretry: 10\nfoo: bar\ndata: c\n\nid\ndata: d\n\n',
    events: [{ event: 'message', id: '5', data: 'a' }, { event: 'message', id: '5', data: 'b' }, { event: 'message', id: '5', data: 'c' }, { event: 'message', id: '', data: 'd' }] },
  { name: 'a field name alone has an empty value; no space after the colon is fine', stream: 'data\n\ndata:x\nevent:e\n\n',
    events: [{ event: 'message', data: '' }, { event: 'e', data: 'x' }] },
  { name: 'a leading BOM is skipped; an event cut off by the end of the stream is discarded', stream: '\uFEFFdata: é ünïcode ✓\n\ndata: unfinished\n',
    events: [{ event: 'message', data: 'é ünïcode ✓' }] },
];

describe('event stream parsing', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const bytes = enc.encode(c.stream);
      expect(await collect([bytes])).toEqual(c.events);
      for (let i = 0; i <= bytes.length; i++) {
        expect(await collect([bytes.subarray(0, i), bytes.subarray(i)]), `split at ${i}`).toEqual(c.events);
      }
      expect(await collect([...bytes].map((b) => Uint8Array.of(b))), 'byte by byte').toEqual(c.events);
    });
  }

  it('any chunking of any stream gives the same events (fast-check)', async () => {
    const line = fc.oneof(
      fc.constantFrom('', ':c', 'data', 'event: x', 'id: 1', 'retry: 5'),
      fc.string({ maxLength: 12 }).map((s) => `data: ${s.replace(/[\r\n]/g, '')}`),
    );
    const eol = fc.constantFrom('\n', '\r\n', '\r');
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(line, eol), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 6 }), async (lines, cuts) => {
      const bytes = enc.encode(lines.map(([l, e]) => l + e).join(''));
      const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
      const chunks = [0, ...at].map((s, i) => bytes.subarray(s, at[i] ?? bytes.length));
      expect(await collect(chunks)).toEqual(await collect([bytes]));
    }));
  });

  it('a line or an event past the limit is an error, not unbounded memory', () => {
    expect(() => new SseParser().push('data: ' + 'x'.repeat(MAX_EVENT_CHARS))).toThrow(SseError);
    const p = new SseParser();
    const half = `data: ${'x'.repeat(MAX_EVENT_CHARS / 2)}\n`;
    p.push(half);
    expect(() => p.push(half)).toThrow(/more than 16777216 characters of data/);
  });
});

describe('following a stream over HTTP', () => {
  let server: Server, base = '', open = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        let n = 0;
        open++;
        const t = setInterval(() => res.write(`event: tick\nid: ${++n}\ndata: ${JSON.stringify({ n, last: req.headers['last-event-id'] ?? null })}\n\n`), 5);
        req.on('close', () => {
          open--;
          clearInterval(t);
        });
      } else if (req.url === '/short') {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
        res.end('data: only\n\n');
      } else if (req.url === '/json') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'no such endpoint: /nope' }));
      }
    });
    base = await listen(server);
  });
  afterAll(() => closeServer(server));

  it('yields events until the signal aborts, then ends quietly; Last-Event-ID is sent', async () => {
    const ac = new AbortController();
    const got: SseEvent[] = [];
    for await (const e of followEvents(`${base}/stream`, { signal: ac.signal, lastEventId: '41' })) {
      got.push(e);
      if (got.length === 3) ac.abort();
    }
    expect(got.map((e) => [e.event, e.id, JSON.parse(e.data)])).toEqual([1, 2, 3].map((n) => ['tick', String(n), { n, last: '41' }]));
    for (let i = 0; open > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    expect(open).toBe(0);
  });

  it('breaking out of the loop, or aborting, closes the stream', async () => {
    const events = await openEvents(`${base}/stream`);
    expect(open).toBe(1);
    for await (const e of events) if (e.id === '2') break;
    for (let i = 0; open > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    expect(open).toBe(0);
  });

  it('a stream the server ends ends the iteration', async () => {
    const got: SseEvent[] = [];
    for await (const e of followEvents(`${base}/short`)) got.push(e);
    expect(got).toEqual([{ event: 'message', data: 'only' }]);
  });

  it('an error status, something not an event stream, and no server at all are SseErrors naming why', async () => {
    await expect(openEvents(`${base}/nope`)).rejects.toThrow(new SseError('/nope answered 404: no such endpoint: /nope'));
    await expect(openEvents(`${base}/json`)).rejects.toThrow('/json is not an event stream (content-type "application/json")');
    const closed = createServer();
    const port = new URL(await listen(closed)).port;
    await closeServer(closed);
    await expect(openEvents(`http://127.0.0.1:${port}/stream`)).rejects.toThrow(`cannot reach http://127.0.0.1:${port}: ECONNREFUSED`);
  });
});
