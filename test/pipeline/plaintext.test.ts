import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { Pipeline } from '../../src/pipeline/index.js';
import { PlaintextStreams, type PlaintextChunk } from '../../src/pipeline/plaintext.js';

/**
 * Plaintext as TLS libraries hand it over (the shape of src/capture/tls's chunks), through the real
 * pipeline: the HTTP analyzers must make the same records they make from packets, each side of a
 * connection probed on this host given once, and bytes the probe did not copy a gap, not a splice.
 */
const CLIENT = { ip: '10.0.0.5', port: 43512 }, SERVER = { ip: '10.0.0.9', port: 8443 };
const REQ = Buffer.from('GET /orders/42 HTTP/1.1\r\nHost: orders\r\n\r\n');
const RES = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}');

function setup() {
  const records: FlowRecord[] = [];
  const p = new Pipeline({ onRecord: (r) => records.push(r) });
  const streams = new PlaintextStreams(p.streams);
  return { records, streams, p };
}

const chunk = (o: Partial<PlaintextChunk> & Pick<PlaintextChunk, 'direction' | 'data' | 'time'>): PlaintextChunk => ({
  pid: 100, session: '0x5555a0', uncopied: 0, library: 'openssl',
  connection: { local: CLIENT, remote: SERVER }, ...o,
});

describe('PlaintextStreams', () => {
  it('a client process: its write is the request, its read the response; one HTTP record with both', () => {
    const { records, streams } = setup();
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 1000 }));
    streams.chunk(chunk({ direction: 'ingress', data: RES, time: 1000.02 }));
    streams.finish(1001);
    expect(records).toHaveLength(1);
    const r = records[0]! as FlowRecord & { request: { path: string }; response: { status: number } };
    expect(r.protocol).toBe('http');
    expect([r.request.path, r.response.status]).toEqual(['/orders/42', 200]);
    expect(r.src).toMatchObject(CLIENT);
    expect(r.dst).toMatchObject(SERVER);
    expect(streams.originOf(r.connectionId)).toBeUndefined();
  });

  it('a server process: the peer is the client, and the origin is known while records come out', () => {
    const records: FlowRecord[] = [];
    const origins: unknown[] = [];
    const holder: { streams?: PlaintextStreams } = {};
    const p = new Pipeline({ onRecord: (r) => { records.push(r); origins.push(holder.streams!.originOf(r.connectionId)); } });
    const streams = new PlaintextStreams(p.streams);
    holder.streams = streams;
    const server = { local: SERVER, remote: CLIENT };
    streams.chunk(chunk({ pid: 7, comm: 'nginx', direction: 'ingress', data: REQ, time: 5, connection: server }));
    streams.chunk(chunk({ pid: 7, comm: 'nginx', direction: 'egress', data: RES, time: 5.01, connection: server }));
    streams.finish(6);
    expect(records.map((r) => [r.src.ip, r.dst.ip])).toEqual([[CLIENT.ip, SERVER.ip]]);
    expect(origins).toEqual([{ library: 'openssl', via: 'uprobe', pid: 7, comm: 'nginx' }]);
  });

  it('a server that writes first (HTTP/2 SETTINGS before the preface) keeps its role when the source says which end listens', () => {
    // RFC 9113 frames: 9-byte header (length, type, flags, stream), HPACK static-table indexes (RFC 7541 Appendix A).
    const frame = (type: number, flags: number, stream: number, payload: number[]) =>
      Buffer.concat([Buffer.from([0, 0, payload.length, type, flags, 0, 0, 0, stream]), Buffer.from(payload)]);
    const settings = frame(4, 0, 0, []);
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    const request = frame(1, 0x05, 1, [0x82, 0x87, 0x84]); // :method GET, :scheme https, :path /
    const response = frame(1, 0x05, 1, [0x88]); // :status 200
    const run = (side?: 'server') => {
      const { records, streams } = setup();
      const at = { pid: 9, connection: { local: SERVER, remote: CLIENT }, ...(side ? { side } : {}) };
      streams.chunk(chunk({ ...at, direction: 'egress', data: settings, time: 1 }));
      streams.chunk(chunk({ ...at, direction: 'ingress', data: Buffer.concat([preface, settings, request]), time: 1.001 }));
      streams.chunk(chunk({ ...at, direction: 'egress', data: response, time: 1.002 }));
      streams.finish(2);
      return records as (FlowRecord & { request?: { path: string }; response?: { status: number } })[];
    };
    const known = run('server');
    // (Without the side, the HTTP/2 analyzer still finds the preface in the other direction here; a
    // stream of records depends on it less when the roles are right from the first byte.)
    expect(known.map((r) => [r.protocol, r.src.port, r.dst.port, r.request?.path, r.response?.status])).toEqual([['http2', CLIENT.port, SERVER.port, '/', 200]]);
    // Without the side, the first writer (the server) is taken as the client: no such exchange.
    expect(run('server')).toEqual(known);
  });

  it('HTTP/2 from plaintext whose first frames come in pieces (a 9-byte header, then its payload) is framed from byte 0, not hunted for', () => {
    // What a Go server's reads gave (the preface, then a SETTINGS header alone, then its payload):
    // hunting for "one frame that fits the piece" locked inside the payload and read garbage.
    const frame = (type: number, flags: number, stream: number, payload: number[]) =>
      Buffer.concat([Buffer.from([0, 0, payload.length, type, flags, 0, 0, 0, stream]), Buffer.from(payload)]);
    // Go's client SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 4 MiB, MAX_FRAME_SIZE 16 MiB, MAX_HEADER_LIST_SIZE 10 MiB.
    // Inside its payload, "00 00 04 00 40 00 00 00 05" reads as a 4-byte DATA frame on stream 5: the
    // bytes that made the hunt lock in the wrong place.
    const settings = frame(4, 0, 0, [...Buffer.from('000200000000000400400000000500004000000600a00000', 'hex')]);
    const { records, streams } = setup();
    const at = { pid: 9, connection: { local: SERVER, remote: CLIENT }, side: 'server' as const };
    streams.chunk(chunk({ ...at, direction: 'egress', data: frame(4, 0, 0, [0, 3, 0, 0, 0, 100]), time: 1 }));
    streams.chunk(chunk({ ...at, direction: 'ingress', data: Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), time: 1.001 }));
    streams.chunk(chunk({ ...at, direction: 'ingress', data: settings.subarray(0, 9), time: 1.002 }));
    streams.chunk(chunk({ ...at, direction: 'ingress', data: settings.subarray(9), time: 1.003 }));
    streams.chunk(chunk({ ...at, direction: 'ingress', data: frame(1, 0x05, 1, [0x82, 0x87, 0x84]), time: 1.004 }));
    streams.chunk(chunk({ ...at, direction: 'egress', data: frame(1, 0x05, 1, [0x88]), time: 1.005 }));
    streams.finish(2);
    const h2 = records as (FlowRecord & { request?: { path: string }; response?: { status: number }; streamId?: number })[];
    expect(h2.map((r) => [r.protocol, r.streamId, r.request?.path, r.response?.status, r.incompleteReason])).toEqual([['http2', 1, '/', 200, undefined]]);
  });

  it('both ends probed on one host: the connection is given once, by the first process seen', () => {
    const { records, streams } = setup();
    const serverSide = { pid: 200, session: '0x77', connection: { local: SERVER, remote: CLIENT } };
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 1 }));
    streams.chunk(chunk({ ...serverSide, direction: 'ingress', data: REQ, time: 1.001 }));
    streams.chunk(chunk({ ...serverSide, direction: 'egress', data: RES, time: 1.002 }));
    streams.chunk(chunk({ direction: 'ingress', data: RES, time: 1.003 }));
    streams.finish(2);
    expect(records).toHaveLength(1);
    expect(streams.counters).toMatchObject({ chunks: 4, otherSide: 2, connections: 1 });
  });

  it('both ends probed, the giver ends first: the other end\'s late chunk does not open a second copy', () => {
    const { records, streams } = setup();
    const serverSide = { pid: 200, session: '0x77', connection: { local: SERVER, remote: CLIENT } };
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 1 }));
    streams.chunk(chunk({ ...serverSide, direction: 'ingress', data: REQ, time: 1.001 }));
    streams.chunk(chunk({ direction: 'ingress', data: RES, time: 1.003 }));
    // The client read the answer and closed before the server's write returned (its return probe
    // runs after the write syscall that woke the client): the server's chunk comes after the end.
    streams.endSession(100, '0x5555a0', 1.004);
    streams.chunk(chunk({ ...serverSide, direction: 'egress', data: RES, time: 1.002 }));
    streams.finish(2);
    expect(records).toHaveLength(1);
    expect(streams.counters).toMatchObject({ otherSide: 2, connections: 1 });
    // Past the grace, the same 4-tuple is a new connection again (it cannot be the old one's tail).
    streams.tick(10);
    streams.chunk(chunk({ ...serverSide, direction: 'ingress', data: REQ, time: 10 }));
    streams.chunk(chunk({ ...serverSide, direction: 'egress', data: RES, time: 10.001 }));
    streams.finish(11);
    expect(records).toHaveLength(2);
  });

  it('a response body the probe did not copy whole is a gap: the record is incomplete, never spliced', () => {
    const { records, streams } = setup();
    const head = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n');
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 1 }));
    // A 200 000-byte body read in one call, copied only to 131 072 bytes (8 pieces of 16 KiB).
    streams.chunk(chunk({ direction: 'ingress', data: head, time: 1.1 }));
    const copied = 131_072;
    for (let off = 0; off < copied; off += 16_384) {
      const last = off + 16_384 >= copied;
      streams.chunk(chunk({ direction: 'ingress', data: Buffer.alloc(16_384, 0x61), time: 1.2, uncopied: last ? 200_000 - copied : 0 }));
    }
    streams.finish(2);
    expect(streams.counters.gapBytes).toBe(200_000 - copied);
    expect(records).toHaveLength(1);
    const r = records[0]! as FlowRecord & { response?: { status: number } };
    expect(r.response?.status).toBe(200);
    expect(r.incomplete).toBe(true);
  });

  it('chunks without a connection are counted, not placed; an SSL* reused for another connection starts a new one', () => {
    const { records, streams } = setup();
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 1, connection: undefined }));
    expect(streams.counters.unplaced).toBe(1);
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 2 }));
    streams.chunk(chunk({ direction: 'ingress', data: RES, time: 2.1 }));
    const other = { local: { ip: CLIENT.ip, port: 43999 }, remote: SERVER };
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 3, connection: other }));
    streams.chunk(chunk({ direction: 'ingress', data: RES, time: 3.1, connection: other }));
    streams.finish(4);
    expect(records.map((r) => r.src.port)).toEqual([43512, 43999]);
    expect(new Set(records.map((r) => r.connectionId)).size).toBe(2);
  });

  it('the library ends the session (SSL_free): an HTTP/1.0 body delimited by the close completes at once', () => {
    const { records, streams } = setup();
    const res10 = Buffer.from('HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nhello, tls\n');
    streams.chunk(chunk({ direction: 'egress', data: Buffer.from('GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'), time: 10 }));
    streams.chunk(chunk({ direction: 'ingress', data: res10, time: 10.01 }));
    expect(records).toHaveLength(0); // the body ends with the connection: not yet
    // Another process's session, or one never placed, ends nothing.
    expect(streams.endSession(999, '0x5555a0', 10.02)).toBe(false);
    expect(streams.endSession(100, '0xdead', 10.02)).toBe(false);
    expect(records).toHaveLength(0);
    expect(streams.endSession(100, '0x5555a0', 10.02)).toBe(true);
    expect(records).toHaveLength(1);
    const r = records[0]! as FlowRecord & { request: { path: string }; response: { status: number; body?: string } };
    expect([r.request.path, r.response.status, r.response.body]).toEqual(['/hello.txt', 200, 'hello, tls\n']);
    expect(r.incomplete).toBeFalsy();
    expect(streams.counters).toMatchObject({ ended: 1, connections: 1 });
    // Ended once: a second end, or the idle tick, does nothing more.
    expect(streams.endSession(100, '0x5555a0', 10.03)).toBe(false);
    streams.tick(1000);
    expect(records).toHaveLength(1);
  });

  it('a connection the capture filter leaves out is counted and dropped, both ends alike', () => {
    const records: FlowRecord[] = [];
    const p = new Pipeline({ onRecord: (r) => records.push(r) });
    const asked: string[] = [];
    const streams = new PlaintextStreams(p.streams, undefined, (e) => {
      asked.push(`${e.local.port}-${e.remote.port}`);
      return e.remote.port !== SERVER.port && e.local.port !== SERVER.port;
    });
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 1 }));
    streams.chunk(chunk({ direction: 'ingress', data: RES, time: 1.1 }));
    streams.finish(2);
    expect(records).toHaveLength(0);
    expect(streams.counters).toMatchObject({ chunks: 2, filtered: 2, connections: 0 });
    // Asked once for the connection, not once a chunk.
    expect(asked).toEqual([`${CLIENT.port}-${SERVER.port}`]);
  });

  it('an idle session is closed by tick, flushing what it holds', () => {
    const { records, streams } = setup();
    streams.chunk(chunk({ direction: 'egress', data: REQ, time: 10 }));
    streams.tick(30);
    expect(records).toHaveLength(0);
    streams.tick(80);
    expect(records).toHaveLength(1);
    expect(records[0]!.incomplete).toBe(true);
  });
});
