import type { Violations } from '../common/index.js';
import type { Packet, PacketSink } from './types.js';

/*
 * Classic libpcap file format (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html).
 *
 *   global header, 24 bytes            record header, 16 bytes
 *   +--------+----+----+----+----+      +--------+--------+--------+--------+
 *   | magic  |vmaj|vmin|zone|sigf|      | ts_sec |ts_frac |incl_len|orig_len|  then incl_len bytes
 *   +--------+----+----+----+----+      +--------+--------+--------+--------+
 *   | snaplen| linktype (+FCS bits)|
 *
 * The magic gives byte order and timestamp unit: a1b2c3d4 = microseconds, a1b23c4d = nanoseconds.
 */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
const GLOBAL_HEADER = 24;
const RECORD_HEADER = 16;
/** Largest record we believe: libpcap's own MAXIMUM_SNAPLEN. A larger incl_len is a lie. */
export const MAX_PCAP_RECORD = 262_144;

export class PcapParser {
  private little = true;
  private fracDiv = 1e6;
  private snaplen = 0;
  private linkType = 1;
  private started = false;
  private frame = 0;
  private lastTs = -1;
  /** True while scanning for a believable record header after a lying one. */
  private resyncing = false;
  /** Set by the reader before the last call, when no more data will come. */
  atEof = false;

  constructor(private readonly sink: PacketSink, private readonly violations: Violations) {}

  /**
   * Parses as many whole records as `buf[pos..]` holds and returns the new position.
   * `base` is the file offset of buf[0], used in messages.
   */
  parse(buf: Buffer, pos: number, base: number): number {
    if (!this.started) {
      if (buf.length - pos < GLOBAL_HEADER) return pos;
      this.readGlobalHeader(buf, pos);
      pos += GLOBAL_HEADER;
      this.started = true;
    }
    const little = this.little;
    const limit = Math.max(this.snaplen, MAX_PCAP_RECORD);
    for (;;) {
      if (buf.length - pos < RECORD_HEADER) return pos;
      if (this.resyncing) {
        const found = this.findRecord(buf, pos, limit);
        if (found < 0) return -found - 1; // keep from there and wait for more data
        pos = found;
        this.resyncing = false;
      }
      const sec = little ? buf.readUInt32LE(pos) : buf.readUInt32BE(pos);
      const frac = little ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
      const incl = little ? buf.readUInt32LE(pos + 8) : buf.readUInt32BE(pos + 8);
      const orig = little ? buf.readUInt32LE(pos + 12) : buf.readUInt32BE(pos + 12);
      if (incl > limit) {
        this.frame++;
        this.violations.add('pcap.record_length',
          `record at byte ${base + pos} claims ${incl} bytes (limit ${limit}); resynchronising`, this.frame);
        this.resyncing = true;
        pos += 1;
        continue;
      }
      if (buf.length - pos < RECORD_HEADER + incl) return pos;
      this.frame++;
      const start = pos + RECORD_HEADER;
      pos = start + incl;
      this.lastTs = sec;
      const packet: Packet = {
        frame: this.frame,
        time: sec + frac / this.fracDiv,
        linkType: this.linkType,
        iface: 0,
        data: buf.subarray(start, pos),
        wireLen: orig >= incl ? orig : incl,
      };
      this.sink(packet);
    }
  }

  private readGlobalHeader(buf: Buffer, pos: number): void {
    const be = buf.readUInt32BE(pos);
    this.little = be !== PCAP_MAGIC_US && be !== PCAP_MAGIC_NS;
    const magic = this.little ? buf.readUInt32LE(pos) : be;
    this.fracDiv = magic === PCAP_MAGIC_NS ? 1e9 : 1e6;
    this.snaplen = this.little ? buf.readUInt32LE(pos + 16) : buf.readUInt32BE(pos + 16);
    // The upper bits of the link-type field carry FCS information (draft-ietf-opsawg-pcap §4).
    this.linkType = (this.little ? buf.readUInt32LE(pos + 20) : buf.readUInt32BE(pos + 20)) & 0x0fffffff;
  }

  /**
   * After a lying record header, looks for the next position where two consecutive record headers
   * are believable (sane lengths, timestamp within a day of the last good one). Returns it, or
   * -(k + 1) where k is the position to resume from once more data came.
   */
  private findRecord(buf: Buffer, from: number, limit: number): number {
    let p = from;
    for (; p + RECORD_HEADER <= buf.length; p++) {
      const ok = this.plausible(buf, p, limit);
      if (ok < 0) continue;
      const next = p + RECORD_HEADER + ok;
      // Confirm with the header that follows; at the end of the data, wait for more.
      if (next + RECORD_HEADER > buf.length) {
        if (!this.atEof) return -p - 1;
        if (next === buf.length) return p;
        continue;
      }
      if (this.plausible(buf, next, limit) >= 0) return p;
    }
    return -p - 1;
  }

  private plausible(buf: Buffer, p: number, limit: number): number {
    const little = this.little;
    const sec = little ? buf.readUInt32LE(p) : buf.readUInt32BE(p);
    const frac = little ? buf.readUInt32LE(p + 4) : buf.readUInt32BE(p + 4);
    const incl = little ? buf.readUInt32LE(p + 8) : buf.readUInt32BE(p + 8);
    const orig = little ? buf.readUInt32LE(p + 12) : buf.readUInt32BE(p + 12);
    if (frac >= this.fracDiv || incl === 0 || incl > limit || orig < incl || orig > 0x40000) return -1;
    if (this.lastTs >= 0 && Math.abs(sec - this.lastTs) > 86_400) return -1;
    return incl;
  }

  get resynchronising(): boolean {
    return this.resyncing;
  }
}
