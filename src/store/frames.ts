import { crc32 } from 'node:zlib';

/*
 * On-disk layout of a segment file (flows or packets; little-endian throughout):
 *
 *   header, 8 bytes: "TWSG" | version u8 | kind u8 | 0 u16
 *   frames:          payloadLen u32 | crc32(payload) u32 | payload
 *   payload:         time f64 | tag u16 | keyLen u16 | key (UTF-8) | body
 *
 * Every frame carries its own length and checksum, so a crash mid-write leaves a tail that is
 * recognised (short, or checksum wrong) while everything before it stays readable. `time` and `key`
 * sit outside the body so a scan can skip a frame (time window, cursor, id lookup) without
 * decoding it. Flows: time = start, key = id, body = msgpackr record. Packets: time = capture
 * time, tag = LINKTYPE, body = wireLen u32 + bytes.
 */
export const HEADER_BYTES = 8;
const MAGIC = 'TWSG';
const VERSION = 1;
const FRAME_HEAD = 8;
const PAYLOAD_HEAD = 12;
/** No real frame is this large (a flow record or one packet); a bigger length is a torn header. */
const MAX_PAYLOAD = 64 * 1024 * 1024;

export interface Frame {
  time: number;
  tag: number;
  key: string;
  /** A view into the read buffer: decode it or copy it before the buffer is reused. */
  body: Buffer;
}

export function segmentHeader(kind: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.write(MAGIC, 0, 'latin1');
  h[4] = VERSION;
  h[5] = kind;
  return h;
}

/** Why `buf` does not start with a header of this kind, or undefined when it does. */
export function badHeader(buf: Buffer, kind: number): string | undefined {
  if (buf.length < HEADER_BYTES) return 'header cut short';
  if (buf.toString('latin1', 0, 4) !== MAGIC) return 'not a tapwire segment';
  if (buf[4] !== VERSION) return `segment version ${buf[4]} unknown`;
  if (buf[5] !== kind) return `segment kind ${buf[5]} where ${kind} was expected`;
  return undefined;
}

/** One frame; the body may come in parts (a packet's length, then its bytes), copied once. */
export function encodeFrame(time: number, tag: number, key: string, body: Uint8Array[]): Buffer {
  const keyLen = Buffer.byteLength(key);
  if (keyLen > 0xffff) throw new RangeError(`frame key of ${keyLen} bytes is longer than 65535`);
  const payloadLen = PAYLOAD_HEAD + keyLen + body.reduce((n, b) => n + b.length, 0);
  const f = Buffer.allocUnsafe(FRAME_HEAD + payloadLen);
  f.writeUInt32LE(payloadLen, 0);
  f.writeDoubleLE(time, 8);
  f.writeUInt16LE(tag, 16);
  f.writeUInt16LE(keyLen, 18);
  let at = 20 + f.write(key, 20);
  for (const b of body) {
    f.set(b, at);
    at += b.length;
  }
  f.writeUInt32LE(crc32(f.subarray(FRAME_HEAD)), 4);
  return f;
}

export interface ParseEnd {
  /** Offset in buf just past the last whole, valid frame. */
  pos: number;
  /** Set when the bytes at pos are not a frame at all (not merely incomplete). */
  error?: string;
}

/**
 * Calls onFrame for each whole, valid frame in buf[pos..] (frame = its offset in buf and size).
 * Stops at the first frame that is incomplete (more bytes may follow) or invalid (error set).
 */
export function parseFrames(buf: Buffer, pos: number, onFrame: (f: Frame, at: number, size: number) => void): ParseEnd {
  while (buf.length - pos >= FRAME_HEAD) {
    const len = buf.readUInt32LE(pos);
    if (len < PAYLOAD_HEAD || len > MAX_PAYLOAD) return { pos, error: len === 0 ? 'zero-filled tail' : `frame length ${len} impossible` };
    if (buf.length - pos < FRAME_HEAD + len) break;
    const payload = buf.subarray(pos + FRAME_HEAD, pos + FRAME_HEAD + len);
    if (crc32(payload) !== buf.readUInt32LE(pos + 4)) return { pos, error: 'checksum mismatch' };
    const keyLen = payload.readUInt16LE(10);
    if (PAYLOAD_HEAD + keyLen > len) return { pos, error: 'key longer than its frame' };
    onFrame({
      time: payload.readDoubleLE(0),
      tag: payload.readUInt16LE(8),
      key: keyLen === 0 ? '' : payload.toString('utf8', PAYLOAD_HEAD, PAYLOAD_HEAD + keyLen),
      body: payload.subarray(PAYLOAD_HEAD + keyLen),
    }, pos, FRAME_HEAD + len);
    pos += FRAME_HEAD + len;
  }
  return { pos };
}

/**
 * Resync after a damaged frame: the offset of the next position in buf[from..] that holds a whole,
 * valid frame whose time `fits` (the block's time range), or undefined. Frames carry no marker, but
 * a length that fits, a time in range and a matching CRC32 at a wrong offset is a 2^-32 chance
 * after the time check has already ruled out nearly every position; the time check comes first,
 * so a scan of a 256 KiB block computes few checksums.
 */
export function findFrame(buf: Buffer, from: number, fits: (time: number) => boolean): number | undefined {
  for (let pos = from; buf.length - pos >= FRAME_HEAD + PAYLOAD_HEAD; pos++) {
    const len = buf.readUInt32LE(pos);
    if (len < PAYLOAD_HEAD || len > buf.length - pos - FRAME_HEAD) continue;
    if (!fits(buf.readDoubleLE(pos + FRAME_HEAD))) continue;
    if (PAYLOAD_HEAD + buf.readUInt16LE(pos + FRAME_HEAD + 10) > len) continue;
    if (crc32(buf.subarray(pos + FRAME_HEAD, pos + FRAME_HEAD + len)) === buf.readUInt32LE(pos + 4)) return pos;
  }
  return undefined;
}
