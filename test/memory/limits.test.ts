/**
 * Issue 14 §4: every bound on what decoding holds is enforced and, when hit, named where a run's
 * output shows it: a violation code (analyze's summary, the verdict's decode problems), a counter
 * of reassembly's stats, or of the pipeline's limits (CaptureSummary.limits). One case per limit,
 * each fed through the real pipeline (frames → decode → reassembly → dispatch → session → records).
 */
import { PROBE_LIMITS } from '../../src/protocols/dispatch.js';
import { describe, expect, it } from 'vitest';
import { Conversation, type Segment } from '../helpers/bytes.js';
import { runSegments } from '../helpers/pipeline.js';
import { MAX_HEADER_BLOCK, MAX_STREAMS } from '../../src/protocols/http2/limits.js';
import { MAX_MESSAGE } from '../../src/protocols/postgres/messages.js';
import { frame } from '../helpers/http2.js';

const KIB = 1024;

// ---- HTTP/2 and gRPC frames --------------------------------------------------------------------

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const END_STREAM = 0x1, END_HEADERS = 0x4;

const settings = (pairs: [number, number][] = []) => {
  const b = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, v], i) => { b.writeUInt16BE(id, i * 6); b.writeUInt32BE(v, i * 6 + 2); });
  return frame(4, 0, 0, b);
};
const headers = (stream: number, block: Buffer, flags = END_HEADERS) => frame(1, flags, stream, block);
const data = (stream: number, payload: Buffer, flags = 0) => frame(0, flags, stream, payload);

/** An HPACK integer with an n-bit prefix (RFC 7541 §5.1), the prefix's flag bits in `first`. */
function hpackInt(first: number, n: number, v: number): Buffer {
  const max = (1 << n) - 1;
  if (v < max) return Buffer.from([first | v]);
  const out = [first | max];
  v -= max;
  while (v >= 128) { out.push((v & 127) | 128); v >>= 7; }
  out.push(v);
  return Buffer.from(out);
}
const str = (s: string) => Buffer.concat([hpackInt(0, 7, s.length), Buffer.from(s, 'latin1')]);
/** Literal field without indexing, name from the static table (§6.2.2). */
const lit = (nameIndex: number, value: string) => Buffer.concat([hpackInt(0, 4, nameIndex), str(value)]);
/** Literal field with incremental indexing and a new name (§6.2.1): it enters the dynamic table. */
const litIndexed = (name: string, value: string) => Buffer.concat([Buffer.from([0x40]), str(name), str(value)]);
const indexed = (i: number) => hpackInt(0x80, 7, i);
/** GET / (static :method GET, :scheme http, :path /) with an :authority. */
const GET_BLOCK = Buffer.concat([indexed(2), indexed(6), indexed(4), lit(1, 'h')]);

function h2(client: Buffer[], server: Buffer[] = [settings()], port = 8080): Segment[] {
  const c = new Conversation({ serverPort: port });
  c.handshake();
  c.send(0, Buffer.concat([PREFACE, settings(), ...client.slice(0, 1)]));
  c.send(1, Buffer.concat(server));
  for (const b of client.slice(1)) c.send(0, b, 16 * KIB);
  c.close();
  return c.segments;
}

/** A gRPC call with `n` request messages of `size` bytes, answered with status 0. */
function grpcCall(n: number, size: number): Segment[] {
  const req = Buffer.concat([indexed(3), indexed(6), lit(4, '/pkg.Svc/Call'), lit(1, 'h'), lit(31, 'application/grpc')]);
  const msg = (b: Buffer) => Buffer.concat([Buffer.from([0]), Buffer.from([0, 0, 0, 0]).fill(0).map((_, i) => (b.length >>> (24 - 8 * i)) & 255), b]);
  const body = Buffer.concat(Array.from({ length: n }, () => msg(Buffer.alloc(size, 0x41))));
  const resp = Buffer.concat([indexed(8), lit(31, 'application/grpc')]);
  const trailers = Buffer.concat([Buffer.from([0]), str('grpc-status'), str('0')]);
  const c = new Conversation({ serverPort: 50051 });
  c.handshake();
  c.send(0, Buffer.concat([PREFACE, settings(), headers(1, req), data(1, body, END_STREAM)]));
  c.send(1, Buffer.concat([settings(), headers(1, resp), data(1, msg(Buffer.from('ok'))), headers(1, trailers, END_HEADERS | END_STREAM)]));
  c.close();
  return c.segments;
}

// ---- PostgreSQL messages ---------------------------------------------------------------------------

function pgMsg(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
function pgStartup(): Buffer {
  const body = Buffer.from('\0\x03\0\0user\0u\0database\0d\0\0', 'latin1');
  const h = Buffer.alloc(4);
  h.writeInt32BE(body.length + 4);
  return Buffer.concat([h, body]);
}
const cstr = (s: string) => Buffer.from(`${s}\0`, 'latin1');
const ready = pgMsg('Z', Buffer.from('I'));
const authOk = pgMsg('R', Buffer.alloc(4));
function dataRow(value: Buffer): Buffer {
  const h = Buffer.alloc(6);
  h.writeInt16BE(1, 0);
  h.writeInt32BE(value.length, 2);
  return pgMsg('D', Buffer.concat([h, value]));
}

function pg(server: Buffer): Segment[] {
  const c = new Conversation({ serverPort: 5432 });
  c.handshake();
  c.send(0, pgStartup());
  c.send(1, Buffer.concat([authOk, ready]));
  c.send(0, pgMsg('Q', cstr('SELECT v FROM t')));
  c.send(1, server);
  c.close();
  return c.segments;
}

// ---- HTTP/1 --------------------------------------------------------------------------------------

function http1(client: string | Buffer, server = '', port = 80): Segment[] {
  const c = new Conversation({ serverPort: port });
  c.handshake();
  c.send(0, client);
  if (server) c.send(1, server);
  c.close();
  return c.segments;
}
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;

/** Segments of several connections, one after another in time. */
function concat(...convs: Segment[][]): Segment[] {
  let t = 1_700_000_000;
  return convs.flatMap((segs) => segs.map((s) => ({ ...s, time: (t += 0.001) })));
}

describe('reassembly limits: reassembly stats', () => {
  /** A SYN, then segments past a 100-byte hole: held out of order until a limit forces the gap. */
  function holey(port: number, bytes: number): Segment[] {
    const c = new Conversation({ clientPort: port });
    c.handshake();
    const segs = c.send(0, Buffer.alloc(100 + bytes, 0x61), 100);
    c.segments.splice(c.segments.indexOf(segs[0]!), 1);
    return c.segments;
  }

  it('maxBufferedPerConnection → forcedGaps', () => {
    const { pipeline } = runSegments(holey(40000, 3000), { reassembly: { maxBufferedPerConnection: 1000 } });
    expect(pipeline.reassembler.stats.forcedGaps).toBeGreaterThan(0);
  });

  it('maxBufferedTotal → forcedGaps', () => {
    const { pipeline } = runSegments(concat(holey(40000, 600), holey(40001, 600)), { reassembly: { maxBufferedTotal: 1000 } });
    expect(pipeline.reassembler.stats.forcedGaps).toBeGreaterThan(0);
  });

  it('maxConnections → evictions.connections', () => {
    const convs = Array.from({ length: 10 }, (_, i) => http1(get('/'), '', 80).map((s) => ({ ...s, srcPort: s.dir === 0 ? 41000 + i : s.srcPort, dstPort: s.dir === 1 ? 41000 + i : s.dstPort })));
    const open = concat(...convs.map((c) => c.slice(0, 4))); // handshake and request, no close
    const { pipeline } = runSegments(open, { reassembly: { maxConnections: 5 } });
    expect(pipeline.reassembler.stats.evictions.connections).toBeGreaterThan(0);
    expect(pipeline.reassembler.stats.evictions.memory).toBe(0);
  });

  it('maxConnectionMemory → evictions.memory', () => {
    const convs = Array.from({ length: 10 }, (_, i) => http1(get('/')).map((s) => ({ ...s, srcPort: s.dir === 0 ? 42000 + i : s.srcPort, dstPort: s.dir === 1 ? 42000 + i : s.dstPort })));
    const { pipeline } = runSegments(concat(...convs.map((c) => c.slice(0, 4))), { reassembly: { maxConnectionMemory: 30 * KIB } });
    const st = pipeline.reassembler.stats;
    expect(st.evictions.memory).toBeGreaterThan(0);
    expect(st.evictedConnections).toBe(st.evictions.memory + st.evictions.connections);
    expect(st.peakMemoryBytes).toBeLessThanOrEqual(30 * KIB);
  });
});

describe('content detection (dispatch.ts PROBE_LIMITS): dispatcher gaveUp, and limits.probeGaveUp', () => {
  /** A connection of bytes nobody recognises, sent as `turns` turns of `segs` segments of `size` bytes each, client first. */
  function junk(turns: number, segs: number, size: number) {
    const c = new Conversation({ serverPort: 7777 });
    c.handshake();
    for (let t = 0; t < turns; t++) {
      for (let i = 0; i < segs; i++) c.send((t % 2) as 0 | 1, Buffer.alloc(size, 0x80 + ((t + i) % 64)));
    }
    c.close();
    return runSegments(c.segments).pipeline;
  }

  it('maxAttemptsPerDir: turns that start no message → gaveUp.attempts', () => {
    const p = junk(2 * PROBE_LIMITS.maxAttemptsPerDir, 1, 200);
    expect(p.dispatcher.stats.gaveUp).toEqual({ attempts: 1, probes: 0, heldBytes: 0 });
    expect(p.limits().probeGaveUp).toBe(1);
    expect(p.coverage().byReason).toEqual({ unknown: 1 });
  });

  it('maxProbes: segment starts within one turn → gaveUp.probes', () => {
    const p = junk(1, PROBE_LIMITS.maxProbes + 1, 20);
    expect(p.dispatcher.stats.gaveUp).toEqual({ attempts: 0, probes: 1, heldBytes: 0 });
    expect(p.limits().probeGaveUp).toBe(1);
  });

  it('maxHeldBytes: bytes held while unidentified → gaveUp.heldBytes', () => {
    const p = junk(1, Math.ceil(PROBE_LIMITS.maxHeldBytes / 1400) + 1, 1400);
    expect(p.dispatcher.stats.gaveUp).toEqual({ attempts: 0, probes: 0, heldBytes: 1 });
    expect(p.limits().probeGaveUp).toBe(1);
  });
});

describe('HTTP/1 limits: violation codes and pipeline limits', () => {
  it('maxLine → http.header_overflow', () => {
    const { violations } = runSegments(http1(get('/', `X-Long: ${'x'.repeat(81 * KIB)}\r\n`)));
    expect(violations['http.header_overflow']).toBe(1);
  });

  it('maxChunkLine → http.invalid_chunk_size', () => {
    const { violations } = runSegments(http1(get('/'), `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;${'e'.repeat(2 * KIB)}\r\nhello\r\n0\r\n\r\n`));
    expect(violations['http.invalid_chunk_size']).toBe(1);
  });

  it('maxUpgradeHold → http.upgrade_hold', () => {
    const { violations } = runSegments(http1(get('/ws', 'Connection: Upgrade\r\nUpgrade: websocket\r\n') + 'x'.repeat(300 * KIB)));
    expect(violations['http.upgrade_hold']).toBe(1);
  });

  it('maxPendingRequests → http.pending_requests, and limits.evictedExchanges', () => {
    const { violations, pipeline } = runSegments(http1(Array.from({ length: 1010 }, (_, i) => get(`/${i}`)).join('')));
    expect(violations['http.pending_requests']).toBe(10);
    expect(pipeline.limits().evictedExchanges).toBe(10);
  });

  it('maxPendingBytes → http.pending_requests (the same code as the count)', () => {
    const body = 'b'.repeat(64 * KIB);
    const reqs = Array.from({ length: 300 }, (_, i) => `POST /${i} HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`).join('');
    const { violations } = runSegments(http1(reqs));
    expect(violations['http.pending_requests']).toBeGreaterThan(0);
  });

  it('--body-limit → limits.bodyTruncated', () => {
    const { pipeline } = runSegments(http1(get('/'), `HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${'z'.repeat(100)}`), { bodyLimit: 16 });
    expect(pipeline.limits().bodyTruncated).toBe(1);
  });
});

describe('HTTP/2 limits: violation codes and pipeline limits', () => {
  it('SETTINGS_MAX_FRAME_SIZE → http2.frame_size', () => {
    const { violations } = runSegments(h2([headers(1, GET_BLOCK, END_HEADERS), data(1, Buffer.alloc(20 * KIB), END_STREAM)]));
    expect(violations['http2.frame_size']).toBe(1);
  });

  it('header block over MAX_HEADER_BLOCK across CONTINUATION frames → http2.header_block_too_large', () => {
    const big = lit(1, 'a'.repeat(MAX_HEADER_BLOCK + KIB));
    const first = 16 * KIB - GET_BLOCK.length; // frames stay within the default 16 KiB
    const frames = [headers(1, Buffer.concat([GET_BLOCK, big.subarray(0, first)]), END_STREAM)];
    for (let p = first; p < big.length; p += 16 * KIB) frames.push(frame(9, p + 16 * KIB >= big.length ? END_HEADERS : 0, 1, big.subarray(p, p + 16 * KIB)));
    const { violations } = runSegments(h2([Buffer.alloc(0), ...frames]));
    expect(violations['http2.frame_size']).toBeUndefined();
    expect(violations['http2.header_block_too_large']).toBe(1);
  });

  it('one HEADERS frame over MAX_HEADER_BLOCK (the server allowed 1 MiB frames) → http2.header_block_too_large', () => {
    const block = Buffer.concat([GET_BLOCK, lit(1, 'a'.repeat(MAX_HEADER_BLOCK + KIB))]);
    const { violations } = runSegments(h2([Buffer.alloc(0), headers(1, block, END_HEADERS | END_STREAM)], [settings([[5, 1 << 20]])]));
    expect(violations['http2.frame_size']).toBeUndefined();
    expect(violations['http2.header_block_too_large']).toBe(1);
  });

  it('decoded header list over MAX_HEADER_LIST (an HPACK bomb: one 4 KB entry indexed 400 times) → http2.header_list_too_large', () => {
    const block = Buffer.concat([GET_BLOCK, litIndexed('x-bomb', 'b'.repeat(4000)), ...Array.from({ length: 400 }, () => indexed(62))]);
    const { violations, records } = runSegments(h2([headers(1, block, END_HEADERS | END_STREAM)]));
    expect(violations['http2.header_list_too_large']).toBe(1);
    expect(records).toHaveLength(1);
  });

  it(`more than MAX_STREAMS (${MAX_STREAMS}) open streams → http2.too_many_streams, and limits.evictedExchanges`, () => {
    const opens = Array.from({ length: MAX_STREAMS + 5 }, (_, i) => headers(1 + 2 * i, GET_BLOCK, END_HEADERS));
    const { violations, pipeline } = runSegments(h2([Buffer.alloc(0), Buffer.concat(opens)]));
    expect(violations['http2.too_many_streams']).toBe(5);
    expect(pipeline.limits().evictedExchanges).toBe(5);
  });

  it('SETTINGS_HEADER_TABLE_SIZE above the table tracked (1 MiB) → hpack.table_size_limit', () => {
    const { violations } = runSegments(h2([headers(1, GET_BLOCK, END_HEADERS | END_STREAM)], [settings([[1, 4 << 20]])]));
    expect(violations['hpack.table_size_limit']).toBe(1);
  });

  it('gRPC --max-messages → limits.grpcMessagesDropped', () => {
    const { pipeline, records } = runSegments(grpcCall(5, 10), { maxMessages: 2 });
    expect(records.map((r) => r.protocol)).toEqual(['grpc']);
    expect(pipeline.limits().grpcMessagesDropped).toBe(3);
  });

  it('gRPC message bytes past --body-limit → limits.grpcMessagesTruncated', () => {
    const { pipeline } = runSegments(grpcCall(2, 100), { bodyLimit: 16 });
    expect(pipeline.limits().grpcMessagesTruncated).toBe(2);
  });
});

describe('PostgreSQL limits', () => {
  it('a message declaring more than MAX_MESSAGE → pg.message_too_large', () => {
    const h = Buffer.alloc(5);
    h.write('D', 0, 'latin1');
    h.writeInt32BE(MAX_MESSAGE + 5, 1);
    const { violations } = runSegments(pg(Buffer.concat([h, Buffer.alloc(64)])));
    expect(violations['pg.message_too_large']).toBe(1);
  });

  it('an 8 MB row in 1460-byte segments is read whole, joined once (not once per segment)', () => {
    const t0 = Date.now();
    const { records, violations } = runSegments(pg(Buffer.concat([dataRow(Buffer.alloc(8 << 20, 0x62)), pgMsg('C', cstr('SELECT 1')), ready])));
    expect(violations).toEqual({});
    expect(records.map((r) => r.protocol === 'postgres' && r.response?.rows)).toEqual([1]);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
