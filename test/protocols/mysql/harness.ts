import { readCapture, type Packet } from '../../../src/capture/index.js';
import { Violations } from '../../../src/common/index.js';
import { Decoder, IPPROTO_TCP, TCP_SYN } from '../../../src/decode/index.js';
import type { Exchange, SessionContext } from '../../../src/protocols/types.js';
import { MysqlSession } from '../../../src/protocols/mysql/session.js';
import type { MysqlExchange } from '../../../src/protocols/mysql/types.js';
import type { ConnectionInfo } from '../../../src/stream/index.js';
import { CAP } from '../../../src/protocols/mysql/messages.js';

export const SERVER_PORT = 18501;

/** One TCP segment of a connection: direction (0 client → server), stream offset, the peer offset it acknowledged. */
export interface Seg { dir: 0 | 1; off: number; ack: number; frame: number; time: number; bytes: Buffer }

/** The recorded capture's connections, each as its payload-bearing segments in capture order (by client port). */
export async function connections(file: string, serverPort = SERVER_PORT): Promise<Seg[][]> {
  const packets: Packet[] = [];
  await readCapture(file, (p) => { packets.push({ ...p, data: Buffer.from(p.data) }); });
  const d = new Decoder(new Violations());
  const conns = new Map<number, { isn: [number, number]; segs: Seg[] }>();
  for (const p of packets) {
    const x = d.decode(p);
    if (!x || x.proto !== IPPROTO_TCP || (x.srcPort !== serverPort && x.dstPort !== serverPort)) continue;
    const dir = x.dstPort === serverPort ? 0 : 1;
    const client = dir === 0 ? x.srcPort : x.dstPort;
    let c = conns.get(client);
    if (!c) conns.set(client, (c = { isn: [-1, -1], segs: [] }));
    if (x.flags & TCP_SYN) { c.isn[dir] = (x.seq + 1) >>> 0; continue; }
    if (x.payload.length === 0) continue;
    const peer = c.isn[1 - dir]!;
    c.segs.push({ dir, off: (x.seq - c.isn[dir]!) >>> 0, ack: peer < 0 ? -1 : (x.ack - peer) >>> 0, frame: p.frame, time: p.time, bytes: Buffer.from(x.payload) });
  }
  return [...conns.values()].map((c) => c.segs);
}

export interface Run {
  out: MysqlExchange[];
  violations: string[];
}

const CONN = {
  id: 'c1', client: { ip: '127.0.0.1', port: 40000 }, server: { ip: '127.0.0.1', port: SERVER_PORT }, family: 4,
  startTime: 0, firstFrame: 1, handshakeSeen: true, midStream: false,
} as ConnectionInfo;

/**
 * Feeds segments to a MysqlSession, each cut in two at `cut` (-1: whole), skipping the frames in
 * `drop` (a gap of their length in their direction). `mid`: the capture began mid-connection.
 */
export function feed(segs: Seg[], opts: { cut?: number; drop?: Set<number>; mid?: boolean; previewRows?: number } = {}): Run {
  const out: MysqlExchange[] = [];
  const violations: string[] = [];
  const ctx: SessionContext = {
    conn: opts.mid ? { ...CONN, handshakeSeen: false, midStream: true } : CONN,
    options: { bodyLimit: 1024, previewRows: opts.previewRows },
    emit: <T extends Exchange>(tx: T) => { out.push(tx as unknown as MysqlExchange); },
    violation: (code: string, reason: string) => { violations.push(`${code}: ${reason}`); },
    handover: () => undefined,
    carried: () => undefined,
  };
  const s = new MysqlSession(ctx);
  const cut = opts.cut ?? -1;
  for (const g of segs) {
    const meta = { time: g.time, frame: g.frame, offset: g.off, peerAck: g.ack };
    if (opts.drop?.has(g.frame)) {
      s.gap(g.dir, g.bytes.length, meta);
      continue;
    }
    const parts = cut <= 0 || cut >= g.bytes.length ? [g.bytes] : [g.bytes.subarray(0, cut), g.bytes.subarray(cut)];
    let off = g.off;
    for (const p of parts) {
      s.data(g.dir, p, { ...meta, offset: off });
      off += p.length;
    }
  }
  const last = segs[segs.length - 1];
  s.end(last ? last.time : 0, 'fin');
  return { out, violations };
}

/** The exchanges without times and frames (which a split moves), for comparison. */
export function strip(r: Run): string {
  return JSON.stringify(r, (k, v) => (k === 'start' || k === 'end' || k === 'frames' ? undefined : v));
}

/** Segments built from steps: [direction, bytes], each acknowledging all the other side sent before it. */
export function segments(steps: [0 | 1, Buffer][]): Seg[] {
  const off = [0, 0];
  return steps.map(([dir, bytes], i) => {
    const s: Seg = { dir, off: off[dir]!, ack: off[1 - dir]!, frame: i + 1, time: (i + 1) / 1000, bytes };
    off[dir]! += bytes.length;
    return s;
  });
}

/** A MySQL packet: 3-byte length, sequence id, payload. */
export function packet(seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

// Built messages (PAGE_PROTOCOL.html), for conversations the tests write byte by byte.
export const lenstr = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
export const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
export const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };

export function greeting(caps: number): Buffer {
  return packet(0, Buffer.concat([Buffer.from([10]), Buffer.from('8.0.36\0'), u32(7), Buffer.alloc(8, 0x41), Buffer.from([0]),
    u16(caps & 0xffff), Buffer.from([45]), u16(2), u16(caps >>> 16), Buffer.from([21]), Buffer.alloc(10),
    Buffer.alloc(13, 0x42), Buffer.from('caching_sha2_password\0')]));
}

export function login(caps: number, user: string, db?: string): Buffer {
  return packet(1, Buffer.concat([u32(caps), u32(1 << 24), Buffer.from([45]), Buffer.alloc(23), Buffer.from(`${user}\0`),
    Buffer.from([20]), Buffer.alloc(20, 0x5a), db ? Buffer.from(`${db}\0`) : Buffer.alloc(0), Buffer.from('caching_sha2_password\0')]));
}

export const OK = (seq: number, affected = 0, status = 2) => packet(seq, Buffer.concat([Buffer.from([0, affected, 0]), u16(status), u16(0)]));
export const EOF = (seq: number, status = 2) => packet(seq, Buffer.concat([Buffer.from([0xfe]), u16(0), u16(status)]));
export const column = (seq: number, name: string) => packet(seq, Buffer.concat([lenstr('def'), lenstr('shop'), lenstr('t'), lenstr('t'),
  lenstr(name), lenstr(name), Buffer.from([0x0c]), u16(45), u32(40), Buffer.from([253]), u16(0), Buffer.from([0, 0, 0])]));
export const query = (sql: string) => packet(0, Buffer.concat([Buffer.from([3]), Buffer.from(sql)]));
export const BASE = CAP.LONG_PASSWORD | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.CONNECT_WITH_DB | CAP.MULTI_RESULTS;

