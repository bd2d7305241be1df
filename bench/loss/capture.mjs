// Packets of a capture for the loss harness: read (tapwire's own reader, so frames keep their
// numbers), index their TCP fields, write a subset back as a pcap (the --dump cases), and map each
// HTTP/2 data packet to the streams whose frames it carries and whether it carried a header block
// that inserts into the HPACK dynamic table.
import { writeFileSync } from 'node:fs';
import { readCapture } from '../../dist/capture/index.js';
import { Decoder, formatIp, IPPROTO_TCP, TCP_SYN } from '../../dist/decode/index.js';
import { Violations } from '../../dist/common/index.js';

/** Canonical key of a TCP connection: its two endpoints, sorted. */
export const connKey = (a, b) => (a < b ? `${a}|${b}` : `${b}|${a}`);
export const endpoint = (peer) => `${peer.ip}:${peer.port}`;

/**
 * Every packet of FILE, in file order: { packet, tcp? } where tcp is
 * { key, from, to, seq, len, syn } for TCP packets (from/to: "ip:port").
 */
export async function readPackets(file) {
  const packets = [];
  await readCapture(file, (p) => {
    // The reader may reuse its buffer: keep a copy.
    packets.push({ packet: { ...p, data: Buffer.from(p.data) } });
  });
  const decoder = new Decoder(new Violations());
  for (const e of packets) {
    const d = decoder.decode(e.packet);
    if (!d || d.proto !== IPPROTO_TCP) continue;
    const from = `${formatIp(d.src)}:${d.srcPort}`;
    const to = `${formatIp(d.dst)}:${d.dstPort}`;
    e.tcp = { key: connKey(from, to), from, to, seq: d.seq >>> 0, len: d.payload.length, syn: (d.flags & TCP_SYN) !== 0 };
  }
  return packets;
}

/** Write packets (entries of readPackets) as a classic pcap, microsecond timestamps. */
export function writePcap(file, entries) {
  const link = entries[0]?.packet.linkType ?? 1;
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(link, 20);
  const parts = [head];
  for (const { packet: p } of entries) {
    const h = Buffer.alloc(16);
    let sec = Math.floor(p.time);
    let usec = Math.round((p.time - sec) * 1e6);
    if (usec >= 1e6) { sec++; usec -= 1e6; }
    h.writeUInt32LE(sec, 0);
    h.writeUInt32LE(usec, 4);
    h.writeUInt32LE(p.data.length, 8);
    h.writeUInt32LE(Math.max(p.wireLen ?? 0, p.data.length), 12);
    parts.push(h, p.data);
  }
  writeFileSync(file, Buffer.concat(parts));
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 frame map

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Decode an HPACK integer with an N-bit prefix at b[i]; returns [value, next index] or null. */
function hpackInt(b, i, bits) {
  if (i >= b.length) return null;
  const max = (1 << bits) - 1;
  let v = b[i] & max;
  i++;
  if (v < max) return [v, i];
  let m = 0;
  for (;;) {
    if (i >= b.length) return null;
    const c = b[i++];
    v += (c & 0x7f) * 2 ** m;
    m += 7;
    if ((c & 0x80) === 0) return [v, i];
  }
}

/** Dynamic-table inserts in one header block (RFC 7541 §6): literal with incremental indexing. */
export function hpackInserts(block) {
  let n = 0;
  let i = 0;
  const skipString = (j) => { const r = hpackInt(block, j, 7); return r ? r[1] + r[0] : block.length + 1; };
  while (i < block.length) {
    const c = block[i];
    if (c & 0x80) { const r = hpackInt(block, i, 7); if (!r) break; i = r[1]; continue; }
    if ((c & 0xe0) === 0x20) { const r = hpackInt(block, i, 5); if (!r) break; i = r[1]; continue; }
    const incremental = (c & 0xc0) === 0x40;
    const r = hpackInt(block, i, incremental ? 6 : 4);
    if (!r) break;
    i = r[1];
    if (r[0] === 0) i = skipString(i);
    i = skipString(i);
    if (incremental) n++;
  }
  return n;
}

/**
 * For each HTTP/2 connection of PACKETS (one whose client direction starts with the preface), the
 * frames carried by each data packet: Map frame number → { streams: Set<number>, headerBlock: bool,
 * inserts: number }. Packets are taken in sequence order per direction; the clean capture has no
 * retransmissions on loopback, so offsets are exact.
 */
export function http2FrameMap(packets) {
  const byDir = new Map();
  for (const e of packets) {
    if (!e.tcp || e.tcp.len === 0) continue;
    const d = `${e.tcp.from}>${e.tcp.to}`;
    if (!byDir.has(d)) byDir.set(d, []);
    byDir.get(d).push(e);
  }
  const out = new Map();
  for (const list of byDir.values()) {
    const isn = list[0].tcp.seq;
    const pieces = list.map((e) => ({ e, off: (e.tcp.seq - isn) >>> 0 })).sort((a, b) => a.off - b.off);
    const size = Math.max(...pieces.map((p) => p.off + p.e.tcp.len));
    const buf = Buffer.alloc(size);
    for (const p of pieces) {
      const d = p.e.packet;
      d.data.copy(buf, p.off, d.data.length - p.e.tcp.len);
    }
    let off = buf.subarray(0, PREFACE.length).equals(PREFACE) ? PREFACE.length : 0;
    // frames: [start, end, stream, type, inserts]
    const frames = [];
    let block = null; // the header block being collected across CONTINUATION frames
    while (off + 9 <= buf.length) {
      const len = buf.readUIntBE(off, 3);
      const type = buf[off + 3];
      const flags = buf[off + 4];
      const stream = buf.readUInt32BE(off + 5) & 0x7fffffff;
      if (off + 9 + len > buf.length) break;
      const f = { start: off, end: off + 9 + len, stream, type, inserts: 0 };
      frames.push(f);
      if (type === 1 || type === 5 || type === 9) {
        let p = off + 9;
        let q = off + 9 + len;
        if (type !== 9 && (flags & 0x8)) { q -= buf[p]; p++; }
        if (type === 1 && (flags & 0x20)) p += 5;
        if (type === 5) p += 4;
        const part = buf.subarray(p, Math.max(p, q));
        block = type === 9 && block ? { frames: [...block.frames, f], bytes: Buffer.concat([block.bytes, part]) } : { frames: [f], bytes: part };
        if (flags & 0x4) {
          const n = hpackInserts(block.bytes);
          for (const bf of block.frames) bf.inserts = n;
          block = null;
        }
      }
      off += 9 + len;
    }
    if (frames.length === 0 || (frames[0].type !== 4 && off === 0)) continue;
    let fi = 0;
    for (const p of pieces) {
      const a = p.off;
      const b = p.off + p.e.tcp.len;
      while (fi < frames.length && frames[fi].end <= a) fi++;
      const info = { streams: new Set(), headerBlock: false, inserts: 0 };
      for (let j = fi; j < frames.length && frames[j].start < b; j++) {
        const f = frames[j];
        if (f.stream !== 0) info.streams.add(f.stream);
        if (f.type === 1 || f.type === 5 || f.type === 9) { info.headerBlock = true; info.inserts += f.inserts; }
      }
      out.set(p.e.packet.frame, info);
    }
  }
  return out;
}

/** Whether a capture's packet list contains the HTTP/2 client preface on some connection. */
export function hasHttp2(packets) {
  return packets.some((e) => e.tcp && e.tcp.len >= PREFACE.length && e.packet.data.includes(PREFACE));
}

export { TCP_SYN };
