import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HpackDecoder, type HeaderField } from '../../src/protocols/http2/hpack.js';
import { STATIC_TABLE } from '../../src/protocols/http2/static-table.js';

/*
 * A real peer as the oracle: node:http2 (nghttp2's HPACK encoder, Huffman where shorter, indexing
 * by its own rules, never-indexed for sensitive headers) talks through a recording TCP proxy. The
 * header blocks on the wire are decoded here and compared with the raw header lists the peers
 * themselves decoded. Requests carry every static-table name node allows and every static value,
 * so each Appendix A row is exercised; long values force evictions, and the peers' SETTINGS make
 * each encoder send dynamic table size updates.
 */

const PREFACE = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", client to server only
const FRAME = { HEADERS: 0x1, SETTINGS: 0x4, CONTINUATION: 0x9 } as const;
const FLAG = { ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const SETTINGS_HEADER_TABLE_SIZE = 0x1;

type Dir = 0 | 1; // 0: client → server, 1: server → client
/** What the test needs from the frames, in the order their bytes reached the proxy. */
type Event = { dir: Dir; block: Buffer } | { dir: Dir; headerTableSize: number };

/** Frames of both directions in arrival order: joined header blocks and SETTINGS_HEADER_TABLE_SIZE values. */
function events(arrivals: { dir: Dir; data: Buffer }[]): Event[] {
  const out: Event[] = [];
  const rest: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  const skip = [PREFACE, 0];
  const pending: [Buffer[] | undefined, Buffer[] | undefined] = [undefined, undefined];
  for (const { dir, data } of arrivals) {
    let bytes = Buffer.concat([rest[dir], data]);
    const cut = Math.min(skip[dir]!, bytes.length);
    skip[dir]! -= cut;
    bytes = bytes.subarray(cut);
    let p = 0;
    for (; p + 9 <= bytes.length; ) {
      const len = bytes.readUIntBE(p, 3), type = bytes[p + 3]!, flags = bytes[p + 4]!;
      if (p + 9 + len > bytes.length) break;
      const payload = bytes.subarray(p + 9, p + 9 + len);
      p += 9 + len;
      if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) {
        for (let q = 0; q + 6 <= payload.length; q += 6) {
          if (payload.readUInt16BE(q) === SETTINGS_HEADER_TABLE_SIZE) out.push({ dir, headerTableSize: payload.readUInt32BE(q + 2) });
        }
        continue;
      }
      if (type === FRAME.HEADERS) {
        let start = 0, end = payload.length;
        if (flags & FLAG.PADDED) { start = 1; end -= payload[0]!; }
        if (flags & FLAG.PRIORITY) start += 5;
        pending[dir] = [payload.subarray(start, end)];
      } else if (type === FRAME.CONTINUATION) {
        pending[dir]!.push(payload);
      } else continue;
      if (flags & FLAG.END_HEADERS) {
        out.push({ dir, block: Buffer.concat(pending[dir]!) });
        pending[dir] = undefined;
      }
    }
    rest[dir] = Buffer.from(bytes.subarray(p));
  }
  return out;
}

const blocksOf = (dir: Dir): Buffer[] => wire.flatMap((e) => (e.dir === dir && 'block' in e ? [e.block] : []));

const pairs = (raw: readonly string[]): HeaderField[] => {
  const out: HeaderField[] = [];
  for (let i = 0; i < raw.length; i += 2) out.push({ name: raw[i]!, value: raw[i + 1]! });
  return out;
};

// Names node refuses to send (connection-specific, RFC 9113 §8.2.2) or sets itself.
const NOT_SENDABLE = new Set(['transfer-encoding', ':authority', ':scheme', ':status', ':method', ':path']);
const STATUSES = [200, 204, 206, 304, 400, 404, 500];
/** Values nghttp2 checks (content-length must match the empty body) or that hit a static row. */
const VALUES: Record<string, string> = { 'content-length': '0', 'accept-encoding': 'gzip, deflate' };

/** node passes the header list as received (rawHeaders) as the last listener argument; @types/node 20 does not declare it. */
const withRawHeaders = <A extends unknown[]>(f: (...args: [...A, string[]]) => void) => f as unknown as (...args: A) => void;

let requests: HeaderField[][] = [];
let responses: HeaderField[][] = [];
let wire: Event[] = [];

beforeAll(async () => {
  const server = http2.createServer({ settings: { headerTableSize: 1024 } });
  server.on('stream', withRawHeaders((stream: http2.ServerHttp2Stream, _headers: unknown, _flags: unknown, raw: string[]) => {
    const i = requests.length;
    requests.push(pairs(raw));
    stream.respond({
      ':status': STATUSES[i % STATUSES.length],
      'content-type': i % 2 ? 'application/json' : 'text/plain',
      'cache-control': 'private',
      'set-cookie': [`s=${i % 3}`, 'theme=dark'],
      'x-response-id': `r-${i}`,
      'x-padding': 'p'.repeat(100 + 37 * i),
      'www-authenticate': 'Basic',
      vary: 'accept-encoding',
    });
    stream.end();
  }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstream = (server.address() as AddressInfo).port;

  const arrivals: { dir: Dir; data: Buffer }[] = [];
  const proxy = net.createServer((down) => {
    const up = net.connect(upstream, '127.0.0.1');
    down.on('data', (d: Buffer) => { arrivals.push({ dir: 0, data: d }); up.write(d); });
    up.on('data', (d: Buffer) => { arrivals.push({ dir: 1, data: d }); down.write(d); });
    down.on('end', () => up.end());
    up.on('end', () => down.end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));

  const client = http2.connect(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, { settings: { headerTableSize: 256 } });
  const names = STATIC_TABLE.map(([n]) => n).filter((n, k, all) => !NOT_SENDABLE.has(n) && all.indexOf(n) === k);
  for (let i = 0; i < 40; i++) {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': i % 3 === 0 ? 'POST' : 'GET',
      ':path': ['/', '/index.html', `/items/${i % 4}`][i % 3],
      'x-trace-id': `t-${i}`,
      'x-secret': `s-${i % 2}`,
      [http2.sensitiveHeaders]: ['x-secret'],
    };
    // A rotating third of the static names per request, with repeating values.
    for (const [k, n] of names.entries()) if (k % 3 === i % 3) headers[n] = VALUES[n] ?? `v${(i + k) % 4}`;
    if (i % 5 === 0) headers['x-big'] = 'b'.repeat(150 + i);
    await new Promise<void>((resolve, reject) => {
      const req = client.request(headers);
      req.on('response', withRawHeaders((_h: unknown, _f: unknown, raw: string[]) => responses.push(pairs(raw))));
      req.on('error', reject);
      req.on('close', resolve);
      req.resume();
      req.end();
    });
  }
  await new Promise<void>((resolve) => client.close(resolve));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  proxy.close();
  wire = events(arrivals);
}, 60_000);

afterAll(() => {
  requests = [];
  responses = [];
  wire = [];
});

describe('HPACK against node:http2 (nghttp2) as a real peer', () => {
  it('decodes every request and response header block exactly as the peers did', () => {
    const reqBlocks = blocksOf(0), resBlocks = blocksOf(1);
    expect(reqBlocks).toHaveLength(40);
    expect(resBlocks).toHaveLength(40);
    const reqDecoder = new HpackDecoder(), resDecoder = new HpackDecoder();
    reqBlocks.forEach((b, i) => expect(reqDecoder.decode(b), `request ${i}`).toEqual({ fields: requests[i], unknown: 0 }));
    resBlocks.forEach((b, i) => expect(resDecoder.decode(b), `response ${i}`).toEqual({ fields: responses[i], unknown: 0 }));
    // Each encoder adopted the other side's SETTINGS_HEADER_TABLE_SIZE with a size update.
    expect(reqDecoder.dynamicTable().maxSize).toBe(1024);
    expect(resDecoder.dynamicTable().maxSize).toBe(256);
  });

  it('with SETTINGS_HEADER_TABLE_SIZE applied as the frames arrive, as the HTTP/2 session does', () => {
    // Each side's SETTINGS limits what the *other* side's encoder may use (RFC 9113 §6.5.2).
    expect(wire.filter((e) => 'headerTableSize' in e).map((e) => [e.dir, (e as { headerTableSize: number }).headerTableSize])).toEqual(expect.arrayContaining([[0, 256], [1, 1024]]));
    const decoders = [new HpackDecoder(), new HpackDecoder()] as const;
    const truth = [requests, responses] as const;
    const seen = [0, 0];
    for (const e of wire) {
      if ('headerTableSize' in e) decoders[1 - e.dir]!.setMaxTableSizeLimit(e.headerTableSize);
      else expect(decoders[e.dir].decode(e.block)).toEqual({ fields: truth[e.dir][seen[e.dir]!++], unknown: 0 });
    }
    expect(seen).toEqual([40, 40]);
  });

  it('every static-table row appears in what was decoded', () => {
    const seen = new Set([...requests, ...responses].flat().map((f) => f.name));
    // transfer-encoding is connection-specific: never allowed in HTTP/2 (RFC 9113 §8.2.2).
    expect(STATIC_TABLE.map(([n]) => n).filter((n) => n !== 'transfer-encoding' && !seen.has(n))).toEqual([]);
    const statuses = new Set(responses.map((r) => r.find((f) => f.name === ':status')!.value));
    expect([...statuses].sort()).toEqual(STATUSES.map(String).sort());
  });

  it('joining mid-connection: each block decodes to its true fields, minus the unknown ones', () => {
    for (const [blocks, truth] of [[blocksOf(0), requests], [blocksOf(1), responses]] as const) {
      for (let k = 1; k < blocks.length; k += 3) {
        const d = new HpackDecoder({ desynced: true });
        let decoded = 0;
        blocks.slice(k).forEach((b, j) => {
          const r = d.decode(b);
          const all = truth[k + j]!;
          expect(r.fields.length + r.unknown).toBe(all.length);
          let at = 0;
          for (const f of r.fields) {
            while (at < all.length && (all[at]!.name !== f.name || all[at]!.value !== f.value)) at++;
            expect(at, `block ${k + j}: ${JSON.stringify(f)} out of place`).toBeLessThan(all.length);
            at++;
          }
          decoded += r.fields.length;
        });
        expect(decoded).toBeGreaterThan(0);
      }
    }
  });
});
