/**
 * Drives the capture parsers with the same position / leftover protocol as src/capture/reader.ts,
 * so tests can deliver a file's bytes in any chunking without going through the file system.
 */
import { Violations } from '../../src/common/violations.js';
import { PcapParser } from '../../src/capture/pcap.js';
import { PcapngParser } from '../../src/capture/pcapng.js';
import type { Packet } from '../../src/capture/types.js';

export interface Parsed {
  packets: Packet[];
  violations: Violations;
  /** Bytes left unparsed at the end (a record cut by the end of the data). */
  leftover: number;
}

/** Copies a packet so it survives its chunk (the view rule in capture/types.ts). */
function keep(p: Packet): Packet {
  return { ...p, data: Buffer.from(p.data) };
}

/**
 * Parses `file` delivered as consecutive chunks (cut at `cuts`, ascending byte positions).
 * Mirrors readCapture: pending tail + next chunk are concatenated, the parser returns how far it
 * got, and at the end a parser still resynchronising gets one more call with atEof set.
 */
export function parseChunks(kind: 'pcap' | 'pcapng', file: Buffer, cuts: number[] = []): Parsed {
  const violations = new Violations();
  const packets: Packet[] = [];
  const parser = kind === 'pcap' ? new PcapParser((p) => packets.push(keep(p)), violations) : new PcapngParser((p) => packets.push(keep(p)), violations);
  const edges = [0, ...cuts, file.length];
  let pending: Buffer | undefined;
  let base = 0;
  for (let i = 0; i + 1 < edges.length; i++) {
    const chunk = file.subarray(edges[i], edges[i + 1]);
    const buf = pending && pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    const pos = parser.parse(buf, 0, base);
    base += pos;
    pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : undefined;
  }
  if (pending && pending.length > 0 && parser.resynchronising) {
    (parser as { atEof: boolean }).atEof = true;
    const pos = parser.parse(pending, 0, base);
    pending = pending.subarray(pos);
  }
  return { packets, violations, leftover: pending?.length ?? 0 };
}

/** Cut points for chunks of `size` bytes. */
export function everyN(length: number, size: number): number[] {
  const out: number[] = [];
  for (let k = size; k < length; k += size) out.push(k);
  return out;
}

/** What two parses must agree on: frame, time, link type, interface, bytes, wire length. */
export function packetView(p: Packet): unknown {
  return { frame: p.frame, time: p.time, linkType: p.linkType, iface: p.iface, data: p.data.toString('hex'), wireLen: p.wireLen };
}
