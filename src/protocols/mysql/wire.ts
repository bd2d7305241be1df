/*
 * MySQL packet framing ("MySQL Packets", PAGE_PROTOCOL.html, protocol_basic_packets):
 *
 *   +----------------+-----+--------------------+
 *   | payload_length | seq | payload            |
 *   | int<3> LE      | 1   | payload_length     |
 *   +----------------+-----+--------------------+
 *
 * A payload of 2^24-1 bytes (0xffffff) continues in the next packet (the sequence id goes on), until
 * a packet shorter than that; the logical payload is their concatenation ("Sending More Than 16Mb").
 * The reader is a push parser over one direction: it keeps at most `keep` bytes of each logical
 * payload (copied, so a kept payload never aliases a packet buffer that is reused) and counts the
 * rest, so a 1 GiB BLOB costs `keep` bytes of memory.
 */

export const MAX_PAYLOAD = 0xffffff;

/** One logical packet: the kept head of its payload, and its whole length. */
export interface Packet {
  /** Sequence id of its first (or only) wire packet. */
  seq: number;
  /** The first `keep` bytes of the logical payload (copied). */
  payload: Buffer;
  /** Whole logical payload length; more than payload.length when cut. */
  length: number;
  /** Stream offset of its header's first byte. */
  offset: number;
  /** Bytes on the wire, headers included. */
  size: number;
}

const enum_ = { header: 0, body: 1 } as const;

export class PacketReader {
  private state: number = enum_.header;
  private readonly head = Buffer.alloc(4);
  private headLen = 0;
  /** Bytes of the current wire packet still to read. */
  private left = 0;
  private cont = false;
  private parts: Buffer[] = [];
  private kept = 0;
  private length = 0;
  private seq = 0;
  private start = -1;
  private wire = 0;

  constructor(private readonly keep: number, private readonly onPacket: (p: Packet) => void) {}

  /** Stream offset where the packet being read began (-1 when between packets). */
  get pendingOff(): number {
    return this.state === enum_.header && this.headLen === 0 && !this.cont ? -1 : this.start;
  }

  /** Forget any partial packet (after a gap): the next byte pushed must be a header's first. */
  reset(): void {
    this.state = enum_.header;
    this.headLen = 0;
    this.left = 0;
    this.cont = false;
    this.parts = [];
    this.kept = 0;
    this.length = 0;
    this.start = -1;
    this.wire = 0;
  }

  push(b: Buffer, offset: number): void {
    let p = 0;
    while (p < b.length) {
      if (this.state === enum_.header) {
        if (this.headLen === 0 && !this.cont) this.start = offset + p;
        const n = Math.min(4 - this.headLen, b.length - p);
        b.copy(this.head, this.headLen, p, p + n);
        this.headLen += n;
        p += n;
        if (this.headLen < 4) return;
        this.headLen = 0;
        this.left = this.head.readUIntLE(0, 3);
        if (!this.cont) this.seq = this.head[3]!;
        this.wire += 4;
        this.state = enum_.body;
        if (this.left === 0) this.bodyDone();
        continue;
      }
      const n = Math.min(this.left, b.length - p);
      const room = Math.min(n, this.keep - this.kept);
      if (room > 0) {
        this.parts.push(Buffer.from(b.subarray(p, p + room)));
        this.kept += room;
      }
      this.length += n;
      this.wire += n;
      this.left -= n;
      p += n;
      if (this.left === 0) this.bodyDone();
    }
  }

  private bodyDone(): void {
    this.state = enum_.header;
    const full = this.head.readUIntLE(0, 3) === MAX_PAYLOAD;
    if (full) {
      this.cont = true;
      return;
    }
    const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.kept);
    const pk: Packet = { seq: this.seq, payload, length: this.length, offset: this.start, size: this.wire };
    this.cont = false;
    this.parts = [];
    this.kept = 0;
    this.length = 0;
    this.wire = 0;
    this.onPacket(pk);
  }
}

/** Thrown by Cursor when a read runs past the end of the bytes it has; callers catch it. */
export class Short extends Error {
  constructor() {
    super('short');
  }
}

/**
 * Bounded reads over one payload ("Basic Data Types": int<n> little-endian, int<lenenc>,
 * string<NUL>, string<lenenc>). Every read checks the end; past it throws Short, which the message
 * parsers turn into undefined (never out of a session).
 */
export class Cursor {
  p = 0;
  constructor(readonly b: Buffer, start = 0) {
    this.p = start;
  }

  get left(): number {
    return this.b.length - this.p;
  }

  need(n: number): void {
    if (n < 0 || this.p + n > this.b.length) throw new Short();
  }

  u8(): number {
    this.need(1);
    return this.b[this.p++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.b.readUInt16LE(this.p);
    this.p += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.b.readUIntLE(this.p, 3);
    this.p += 3;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.b.readUInt32LE(this.p);
    this.p += 4;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.p += n;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }

  /** int<lenenc>; null for the 0xfb NULL marker of a text row. 8-byte values past 2^53 lose precision. */
  lenenc(): number | null {
    const c = this.u8();
    if (c < 0xfb) return c;
    if (c === 0xfb) return null;
    if (c === 0xfc) return this.u16();
    if (c === 0xfd) return this.u24();
    if (c === 0xfe) {
      this.need(8);
      const lo = this.b.readUInt32LE(this.p);
      const hi = this.b.readUInt32LE(this.p + 4);
      this.p += 8;
      return hi * 0x1_0000_0000 + lo;
    }
    throw new Short(); // 0xff is not a length
  }

  /** string<lenenc>; null for NULL. */
  lenstr(): Buffer | null {
    const n = this.lenenc();
    return n === null ? null : this.bytes(n);
  }

  /** string<NUL>: up to the NUL (or the end when there is none, as some fields at a packet's end are). */
  nulstr(): Buffer {
    const e = this.b.indexOf(0, this.p);
    if (e < 0) {
      const v = this.b.subarray(this.p);
      this.p = this.b.length;
      return v;
    }
    const v = this.b.subarray(this.p, e);
    this.p = e + 1;
    return v;
  }

  rest(): Buffer {
    const v = this.b.subarray(this.p);
    this.p = this.b.length;
    return v;
  }
}

/** Runs a parser over a payload: a short payload gives undefined. Other errors are bugs and propagate. */
export function parse<T>(b: Buffer, fn: (c: Cursor) => T): T | undefined {
  try {
    return fn(new Cursor(b));
  } catch (e) {
    if (e instanceof Short || e instanceof RangeError) return undefined;
    throw e;
  }
}
