import { Violations } from '../../src/common/violations.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type Decoded } from '../../src/decode/packet.js';
import { TcpReassembler } from '../../src/reassembly/tcp.js';
import { DEFAULT_REASSEMBLY_LIMITS, type ReassemblyLimits } from '../../src/reassembly/limits.js';
import type { ConnectionInfo, Dir, StreamHandler } from '../../src/stream/index.js';

export const CLIENT = { ip: [10, 0, 0, 1], port: 40000 };
export const SERVER = { ip: [10, 0, 0, 2], port: 80 };

export interface Seg {
  from: 'c' | 's';
  seq: number;
  ack?: number;
  flags?: string; // any of S A F R
  data?: string;
  /** Payload length on the wire when the capture cut the data short. */
  wireLen?: number;
  time?: number;
  ipId?: number;
  /** Client port, to make several connections. */
  cport?: number;
}

export type Event =
  | { kind: 'open'; client: string; server: string; mid: boolean }
  | { kind: 'data'; dir: Dir; text: string; offset: number; peerAck: number }
  | { kind: 'gap'; dir: Dir; len: number; offset: number }
  | { kind: 'fin'; dir: Dir }
  | { kind: 'close'; reason: string };

/** Runs segments through a reassembler and records what its handler saw. */
export function run(segs: Seg[], limits: Partial<ReassemblyLimits> = {}, finish = true) {
  const events: Event[] = [];
  const handler: StreamHandler = {
    open: (c: ConnectionInfo) => events.push({ kind: 'open', client: `${c.client.ip}:${c.client.port}`, server: `${c.server.ip}:${c.server.port}`, mid: c.midStream }),
    data: (_c, dir, b, m) => events.push({ kind: 'data', dir, text: b.toString('latin1'), offset: m.offset, peerAck: m.peerAck }),
    gap: (_c, dir, len, m) => events.push({ kind: 'gap', dir, len, offset: m.offset }),
    fin: (_c, dir) => events.push({ kind: 'fin', dir }),
    close: (_c, _t, reason) => events.push({ kind: 'close', reason }),
  };
  const violations = new Violations();
  const r = new TcpReassembler(handler, violations, { ...DEFAULT_REASSEMBLY_LIMITS, ...limits });
  let frame = 0;
  for (const s of segs) r.packet(decoded(s, ++frame));
  if (finish) r.finish();
  return { events, stats: r.stats, violations };
}

export function decoded(s: Seg, frame: number): Decoded {
  const c = s.from === 'c';
  const data = Buffer.from(s.data ?? '', 'latin1');
  let flags = 0;
  for (const f of s.flags ?? (s.ack !== undefined ? 'A' : '')) {
    flags |= f === 'S' ? TCP_SYN : f === 'A' ? TCP_ACK : f === 'F' ? TCP_FIN : f === 'R' ? TCP_RST : 0;
  }
  return {
    frame, time: s.time ?? frame * 0.001, family: 4,
    src: Buffer.from(c ? CLIENT.ip : SERVER.ip), dst: Buffer.from(c ? SERVER.ip : CLIENT.ip),
    proto: 6, srcPort: c ? (s.cport ?? CLIENT.port) : SERVER.port, dstPort: c ? SERVER.port : (s.cport ?? CLIENT.port),
    seq: s.seq >>> 0, ack: (s.ack ?? 0) >>> 0, flags, window: 65535,
    ipId: s.ipId ?? frame, checksum: checksum(s),
    payload: data, payloadLen: s.wireLen ?? data.length,
  };
}

/** The bytes delivered per direction, with gaps shown as "<gap N>". */
export function streams(events: Event[]): [string, string] {
  const out: [string, string] = ['', ''];
  for (const e of events) {
    if (e.kind === 'data') out[e.dir] += e.text;
    if (e.kind === 'gap') out[e.dir] += `<gap ${e.len}>`;
  }
  return out;
}

/** Stands in for the TCP checksum: equal for equal segments, like the real one. */
function checksum(s: Seg): number {
  let h = (s.seq ^ (s.ack ?? 0)) >>> 0;
  for (const ch of s.data ?? '') h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  return h & 0xffff;
}
