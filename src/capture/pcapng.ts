import type { Violations } from '../common/index.js';
import { parseMarkComment, PLAINTEXT_INTERFACE, type PlaintextMark } from './plaintext-mark.js';
import type { Packet, PacketSink } from './types.js';

/*
 * pcapng (draft-ietf-opsawg-pcapng). Every block is
 *
 *   +------------+-------------+---------------------+-------------+
 *   | block type | total length| body ...            | total length|
 *   +------------+-------------+---------------------+-------------+
 *
 * in the byte order set by the Section Header Block's byte-order magic. Interfaces (IDBs) are
 * numbered per section; each has its own link type and timestamp resolution (if_tsresol).
 */
export const PCAPNG_SHB = 0x0a0d0d0a;
const BOM = 0x1a2b3c4d;
const IDB = 0x00000001;
const OPB = 0x00000002; // obsolete Packet Block (§ Appendix A)
const SPB = 0x00000003;
const EPB = 0x00000006;
const OPT_COMMENT = 1;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
/** A block longer than this is taken for a lie: no real capture writes 64 MiB frames. */
export const MAX_PCAPNG_BLOCK = 64 * 1024 * 1024;
/** The largest time a Date can hold, in seconds (ECMA-262 §21.4.1.1). */
const MAX_TIME_SEC = 8.64e12;
const KNOWN_BLOCKS = new Set([PCAPNG_SHB, IDB, OPB, SPB, 4, 5, EPB, 7, 8, 9, 10, 0x0bad, 0x40000bad]);

interface Iface {
  linkType: number;
  snaplen: number;
  /** Units per second of this interface's timestamps. */
  perSec: number;
  offset: number;
  /** if_name is tapwire's decrypted-plaintext interface (plaintext-mark.ts). */
  plaintext: boolean;
}

export class PcapngParser {
  private little = true;
  private ifaces: Iface[] = [];
  private frame = 0;
  /** Time of the last packet emitted, for one whose own timestamp is past any date. */
  private lastTime = 0;
  private resyncing = false;
  /** Set by the reader before the last call, when no more data will come. */
  atEof = false;

  constructor(private readonly sink: PacketSink, private readonly violations: Violations) {}

  parse(buf: Buffer, pos: number, base: number): number {
    for (;;) {
      if (buf.length - pos < 12) return pos;
      if (this.resyncing) {
        const found = this.findBlock(buf, pos);
        if (found < 0) return -found - 1; // keep from there and wait for more data
        pos = found;
        this.resyncing = false;
      }
      const type = buf.readUInt32LE(pos); // the SHB type is a palindrome, so either order reads it
      if (type === PCAPNG_SHB) {
        const bom = buf.readUInt32LE(pos + 8);
        if (bom === BOM) this.little = true;
        else if (bom === 0x4d3c2b1a) this.little = false;
        else {
          this.violations.add('pcapng.byte_order', `section header at byte ${base + pos} has no byte-order magic`, base + pos);
          this.resyncing = true;
          pos += 4;
          continue;
        }
      }
      const little = this.little;
      const btype = little ? type : buf.readUInt32BE(pos);
      const len = little ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_PCAPNG_BLOCK) {
        this.violations.add('pcapng.block_length', `block at byte ${base + pos} has impossible length ${len}; resynchronising`, base + pos);
        this.resyncing = true;
        pos += 4;
        continue;
      }
      if (buf.length - pos < len) return pos;
      const trailer = little ? buf.readUInt32LE(pos + len - 4) : buf.readUInt32BE(pos + len - 4);
      if (trailer !== len) {
        this.violations.add('pcapng.block_length', `block at byte ${base + pos}: leading length ${len} but trailing ${trailer}; resynchronising`, base + pos);
        this.resyncing = true;
        pos += 4;
        continue;
      }
      const body = buf.subarray(pos + 8, pos + len - 4);
      switch (btype) {
        case PCAPNG_SHB: this.ifaces = []; break;
        case IDB: this.readIdb(body, base + pos); break;
        case EPB: this.readEpb(body, base + pos); break;
        case SPB: this.readSpb(body, base + pos); break;
        case OPB: this.readOpb(body, base + pos); break;
        default: break; // name resolution, statistics, custom and unknown blocks are skipped
      }
      pos += len;
    }
  }

  private u32(b: Buffer, o: number): number {
    return this.little ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }

  private u16(b: Buffer, o: number): number {
    return this.little ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }

  private readIdb(body: Buffer, at: number): void {
    if (body.length < 8) {
      this.violations.add('pcapng.idb_short', `interface block at byte ${at} is ${body.length} bytes`, at);
      this.ifaces.push({ linkType: -1, snaplen: 0, perSec: 1e6, offset: 0, plaintext: false });
      return;
    }
    const iface: Iface = { linkType: this.u16(body, 0), snaplen: this.u32(body, 4), perSec: 1e6, offset: 0, plaintext: false };
    // Options: code(2) length(2) value padded to 4.
    let p = 8;
    while (p + 4 <= body.length) {
      const code = this.u16(body, p);
      const olen = this.u16(body, p + 2);
      const v = p + 4;
      if (code === 0 || v + olen > body.length) break;
      if (code === OPT_IF_TSRESOL && olen >= 1) {
        const r = body[v]!;
        // MSB clear: 10^-n; MSB set: 2^-n (pcapng §4.2, if_tsresol).
        iface.perSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
      } else if (code === OPT_IF_TSOFFSET && olen >= 8) {
        const hi = this.little ? body.readInt32LE(v + 4) : body.readInt32BE(v);
        const lo = this.little ? body.readUInt32LE(v) : body.readUInt32BE(v + 4);
        iface.offset = hi * 4294967296 + lo;
      } else if (code === OPT_IF_NAME) {
        iface.plaintext = body.toString('utf8', v, v + olen).replace(/\0+$/, '') === PLAINTEXT_INTERFACE;
      }
      p = v + ((olen + 3) & ~3);
    }
    this.ifaces.push(iface);
  }

  private emit(ifId: number, tsHigh: number, tsLow: number, data: Buffer, wireLen: number, at: number, options?: Buffer): void {
    this.frame++;
    const iface = this.ifaces[ifId];
    if (!iface || iface.linkType < 0) {
      this.violations.add('pcapng.unknown_interface', `packet block at byte ${at} names interface ${ifId}, which was not described`, this.frame);
      return;
    }
    let time = (tsHigh * 4294967296 + tsLow) / iface.perSec + iface.offset;
    // A 64-bit timestamp (pcapng §4.3) with if_tsresol and if_tsoffset can lie past any date a
    // record can carry (ECMAScript's time value range, ECMA-262 §21.4.1.1: ±8.64e15 ms), which
    // would throw wherever a record's time becomes a date (HAR, the table). The bytes are kept;
    // the time is the last believable one (found by npm run fuzz: capture/pcapng/8a5da9de).
    if (!(Math.abs(time) <= MAX_TIME_SEC)) {
      this.violations.add('pcapng.bad_timestamp', `packet block at byte ${at} has a timestamp of ${time} s, beyond any date; taken as the previous packet's`, this.frame);
      time = this.lastTime;
    }
    this.lastTime = time;
    const packet: Packet = {
      frame: this.frame,
      time,
      linkType: iface.linkType,
      iface: ifId,
      data,
      wireLen: wireLen >= data.length ? wireLen : data.length,
    };
    const mark = this.markOf(iface, options, at);
    if (mark) packet.plaintext = mark;
    this.sink(packet);
  }

  /**
   * The decrypted-plaintext mark of a packet block: its interface is tapwire's plaintext one and
   * its opt_comment carries the mark. A mark that cannot be read, or one on another interface, is
   * a violation and the packet an ordinary one; other comments are people's notes, left alone.
   */
  private markOf(iface: Iface, options: Buffer | undefined, at: number): PlaintextMark | undefined {
    let said: { mark: PlaintextMark } | { error: string } | undefined;
    for (let p = 0; options && p + 4 <= options.length && !said;) {
      const code = this.u16(options, p);
      const olen = this.u16(options, p + 2);
      const v = p + 4;
      if (code === 0) break;
      if (v + olen > options.length) {
        if (iface.plaintext) said = { error: `option ${code} of ${olen} bytes runs past its block` };
        break;
      }
      if (code === OPT_COMMENT) said = parseMarkComment(options.toString('utf8', v, v + olen));
      p = v + ((olen + 3) & ~3);
    }
    if (!iface.plaintext && !said) return undefined;
    const where = `packet block at byte ${at}`;
    if (!iface.plaintext) {
      this.violations.add('pcapng.plaintext_mark', `${where} is marked as decrypted TLS plaintext on an interface not named ${PLAINTEXT_INTERFACE}; decoded as an ordinary packet`, this.frame);
      return undefined;
    }
    if (!said) said = { error: 'no tapwire mark in its comment' };
    if ('error' in said) {
      this.violations.add('pcapng.plaintext_mark', `${where} on interface ${PLAINTEXT_INTERFACE}: ${said.error}; decoded as an ordinary packet`, this.frame);
      return undefined;
    }
    return said.mark;
  }

  private readEpb(body: Buffer, at: number): void {
    if (body.length < 20) {
      this.frame++;
      this.violations.add('pcapng.epb_short', `enhanced packet block at byte ${at} is too short`, this.frame);
      return;
    }
    const cap = this.u32(body, 12);
    if (20 + cap > body.length) {
      this.frame++;
      this.violations.add('pcapng.caplen', `packet block at byte ${at} claims ${cap} captured bytes but holds ${body.length - 20}`, this.frame);
      return;
    }
    // Options follow the packet data, padded to 32 bits (§4.3).
    this.emit(this.u32(body, 0), this.u32(body, 4), this.u32(body, 8), body.subarray(20, 20 + cap), this.u32(body, 16), at, body.subarray(Math.min(body.length, 20 + ((cap + 3) & ~3))));
  }

  private readSpb(body: Buffer, at: number): void {
    if (body.length < 4) return;
    const orig = this.u32(body, 0);
    const snap = this.ifaces[0]?.snaplen || Infinity;
    const cap = Math.min(orig, snap, body.length - 4);
    // A simple packet block has no timestamp: it takes 0, and the time-order stage copes.
    this.emit(0, 0, 0, body.subarray(4, 4 + cap), orig, at);
  }

  private readOpb(body: Buffer, at: number): void {
    if (body.length < 20) return;
    const cap = this.u32(body, 12);
    if (20 + cap > body.length) {
      this.frame++;
      this.violations.add('pcapng.caplen', `packet block at byte ${at} claims ${cap} captured bytes but holds ${body.length - 20}`, this.frame);
      return;
    }
    this.emit(this.u16(body, 0), this.u32(body, 4), this.u32(body, 8), body.subarray(20, 20 + cap), this.u32(body, 16), at);
  }

  /**
   * Finds the next 4-byte-aligned position that starts a known block whose two lengths agree.
   * Returns it, or -(k + 1) where k is the position to resume scanning from once more data came.
   */
  private findBlock(buf: Buffer, from: number): number {
    let p = from;
    for (; p + 12 <= buf.length; p += 4) {
      const type = this.u32(buf, p);
      if (!KNOWN_BLOCKS.has(type)) continue;
      const len = this.u32(buf, p + 4);
      if (len < 12 || len % 4 !== 0 || len > MAX_PCAPNG_BLOCK) continue;
      if (p + len > buf.length) {
        if (!this.atEof) return -p - 1; // cannot confirm yet: wait for more data
        continue; // at the end a block that does not fit is no block: keep scanning
      }
      if (this.u32(buf, p + len - 4) === len) return p;
    }
    return -p - 1;
  }

  get resynchronising(): boolean {
    return this.resyncing;
  }
}
