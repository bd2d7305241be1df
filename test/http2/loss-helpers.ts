/**
 * pcaps/loss HTTP/2 captures with chosen segments dropped, for hpack-recovery.test.ts: the packets
 * with their TCP fields, each direction's header blocks with the packets that carried them, and
 * the records of the clean and the mutated run (the src/ pipeline, in memory, frame numbers kept),
 * compared as bench/loss does (everything but times and the record id).
 */
import { readCapture } from '../../src/capture/index.js';
import type { Packet } from '../../src/capture/types.js';
import { Violations } from '../../src/common/violations.js';
import { Decoder, formatIp, IPPROTO_TCP } from '../../src/decode/index.js';
import type { FlowOf, FlowRecord } from '../../src/flows/record.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { HpackDecoder } from '../../src/protocols/http2/hpack.js';

interface Tcp { from: string; to: string; seq: number; len: number }
interface Entry { packet: Packet; tcp?: Tcp }
/** One header block (HEADERS or PUSH_PROMISE + CONTINUATION) of one direction. */
interface Block { stream: number; bytes: Buffer; frames: Set<number>; inserts: number }
interface Dir { from: string; to: string; blocks: Block[]; streamsByPacket: Map<number, Set<number>> }

export interface LossCapture {
  entries: Entry[];
  clean: H2Record[];
  dirs: Map<string, Dir>;
}

export type H2Record = FlowOf<'http2' | 'grpc'>;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const endpoint = (p: { ip: string; port: number }): string => `${p.ip}:${p.port}`;

export function recordsOfEntries(entries: Entry[]): H2Record[] {
  const records: FlowRecord[] = [];
  const p = new Pipeline({ onRecord: (r) => records.push(r), frames: true });
  for (const e of entries) p.packet(e.packet);
  p.finish();
  return records.filter((r): r is H2Record => r.protocol === 'http2' || r.protocol === 'grpc');
}

export async function loadLoss(file: string): Promise<LossCapture> {
  const entries: Entry[] = [];
  await readCapture(file, (p) => { entries.push({ packet: { ...p, data: Buffer.from(p.data) } }); });
  const decoder = new Decoder(new Violations());
  for (const e of entries) {
    const d = decoder.decode(e.packet);
    if (!d || d.proto !== IPPROTO_TCP) continue;
    e.tcp = { from: `${formatIp(d.src)}:${d.srcPort}`, to: `${formatIp(d.dst)}:${d.dstPort}`, seq: d.seq >>> 0, len: d.payload.length };
  }
  return { entries, clean: recordsOfEntries(entries), dirs: frameMap(entries) };
}

/** Each direction's bytes in sequence order, split into frames; header blocks with their packets. */
function frameMap(entries: Entry[]): Map<string, Dir> {
  const byDir = new Map<string, Entry[]>();
  for (const e of entries) {
    if (!e.tcp || e.tcp.len === 0) continue;
    const k = `${e.tcp.from}>${e.tcp.to}`;
    if (!byDir.has(k)) byDir.set(k, []);
    byDir.get(k)!.push(e);
  }
  const out = new Map<string, Dir>();
  for (const [k, list] of byDir) {
    const isn = list[0]!.tcp!.seq;
    const pieces = list.map((e) => ({ e, off: (e.tcp!.seq - isn) >>> 0 })).sort((a, b) => a.off - b.off);
    const size = Math.max(...pieces.map((p) => p.off + p.e.tcp!.len));
    const buf = Buffer.alloc(size);
    for (const p of pieces) p.e.packet.data.copy(buf, p.off, p.e.packet.data.length - p.e.tcp!.len);
    /** The packets (frame numbers) carrying any of the bytes [a, b). */
    const packetsOf = (a: number, b: number): number[] => pieces.filter((p) => p.off < b && p.off + p.e.tcp!.len > a).map((p) => p.e.packet.frame);
    const dir: Dir = { from: list[0]!.tcp!.from, to: list[0]!.tcp!.to, blocks: [], streamsByPacket: new Map() };
    let off = buf.subarray(0, PREFACE.length).equals(PREFACE) ? PREFACE.length : 0;
    let open: Block | undefined;
    while (off + 9 <= buf.length) {
      const len = buf.readUIntBE(off, 3), type = buf[off + 3]!, flags = buf[off + 4]!, stream = buf.readUInt32BE(off + 5) & 0x7fffffff;
      if (off + 9 + len > buf.length) break;
      const carriers = packetsOf(off, off + 9 + len);
      if (stream !== 0) {
        for (const fr of carriers) {
          if (!dir.streamsByPacket.has(fr)) dir.streamsByPacket.set(fr, new Set());
          dir.streamsByPacket.get(fr)!.add(stream);
        }
      }
      if (type === 1 || type === 5 || type === 9) {
        let p = off + 9, q = off + 9 + len;
        if (type !== 9 && flags & 0x8) { q -= buf[p]!; p++; }
        if (type === 1 && flags & 0x20) p += 5;
        if (type === 5) p += 4;
        const part = buf.subarray(p, Math.max(p, q));
        if (type === 9 && open) {
          open.bytes = Buffer.concat([open.bytes, part]);
          for (const fr of carriers) open.frames.add(fr);
        } else open = { stream, bytes: Buffer.from(part), frames: new Set(carriers), inserts: 0 };
        if (flags & 0x4) {
          open.inserts = countInserts(open.bytes);
          dir.blocks.push(open);
          open = undefined;
        }
      }
      off += 9 + len;
    }
    out.set(k, dir);
  }
  return out;
}

/** Literals with incremental indexing (RFC 7541 §6.2.1) in a block. */
function countInserts(b: Buffer): number {
  const int = (i: number, bits: number): [number, number] => {
    const max = (1 << bits) - 1;
    let v = b[i]! & max, m = 0;
    i++;
    if (v < max) return [v, i];
    for (;;) {
      const c = b[i++]!;
      v += (c & 0x7f) * 2 ** m;
      m += 7;
      if (!(c & 0x80)) return [v, i];
    }
  };
  let n = 0, i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c & 0x80) { i = int(i, 7)[1]; continue; }
    if ((c & 0xe0) === 0x20) { i = int(i, 5)[1]; continue; }
    const inc = (c & 0xc0) === 0x40;
    const [idx, j] = int(i, inc ? 6 : 4);
    i = j;
    if (idx === 0) { const [l, k] = int(i, 7); i = k + l; }
    const [l, k] = int(i, 7);
    i = k + l;
    if (inc) n++;
  }
  return n;
}

/**
 * Drops the n-th segment of `side` (client → server or back) that carries a header block that
 * inserts into the dynamic table, on the connection of the first clean record.
 */
export function dropSegment(cap: LossCapture, side: 'client' | 'server', n: number): { dropped: Set<number>; conn: string; dir: string } {
  const first = cap.clean[0]!;
  const [from, to] = side === 'client' ? [endpoint(first.src), endpoint(first.dst)] : [endpoint(first.dst), endpoint(first.src)];
  const dir = `${from}>${to}`;
  const d = cap.dirs.get(dir)!;
  const carriers: number[] = [];
  for (const b of d.blocks) {
    if (b.inserts === 0) continue;
    for (const fr of b.frames) if (!carriers.includes(fr)) carriers.push(fr);
  }
  return { dropped: new Set([carriers[n]!]), conn: first.connectionId, dir };
}

export function recordsOf(cap: LossCapture, dropped: Set<number>): H2Record[] {
  return recordsOfEntries(cap.entries.filter((e) => !dropped.has(e.packet.frame)));
}

/**
 * Replays the clean header blocks of `dir` through a decoder that loses those carried by a dropped
 * packet (a desync each, as the session does): the streams a dropped packet carried a frame of (in
 * either direction), and the streams with a block after the loss that an observer cannot decode
 * whole (a reference past the known front), and those with a block after the loss.
 */
export function h2Blocks(cap: LossCapture, dir: string, dropped: Set<number>): { touched: Set<number>; partial: Set<number>; after: Set<number> } {
  const d = cap.dirs.get(dir)!;
  const [from, to] = dir.split('>');
  const back = cap.dirs.get(`${to}>${from}`);
  const touched = new Set<number>();
  for (const x of [d, back]) {
    for (const [fr, streams] of x?.streamsByPacket ?? []) if (dropped.has(fr)) for (const s of streams) touched.add(s);
  }
  const dec = new HpackDecoder();
  const partial = new Set<number>(), after = new Set<number>();
  let lost = false;
  for (const b of d.blocks) {
    if ([...b.frames].some((fr) => dropped.has(fr))) {
      dec.desync();
      lost = true;
      continue;
    }
    if (lost) after.add(b.stream);
    if (dec.decode(b.bytes).unknown > 0) partial.add(b.stream);
  }
  return { touched, partial, after };
}

const TIME_KEYS = new Set(['start', 'end', 'time', 'durationMs', 'connectMs']);
function strip(v: unknown, top: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => strip(x, false));
  if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      if (TIME_KEYS.has(k) || (top && k === 'id')) continue;
      out[k] = strip((v as Record<string, unknown>)[k], false);
    }
    return out;
  }
  return v;
}

/** Equal in everything but times and the record id (as bench/loss judges exactness). */
export function sameRecord(a: H2Record, b: H2Record): boolean {
  return JSON.stringify(strip(a, true)) === JSON.stringify(strip(b, true));
}
