/*
 * HTTP/2 framing (RFC 9113 §4.1):
 *
 *   +-----------------------------------------------+
 *   |                 Length (24)                   |
 *   +---------------+---------------+---------------+
 *   |   Type (8)    |   Flags (8)   |
 *   +-+-------------+---------------+-------------------------------+
 *   |R|                 Stream Identifier (31)                      |
 *   +=+=============================================================+
 *   |                   Frame Payload (0...)                      ...
 */

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** RFC 9113 §7 error codes, by value. */
export const ERROR_NAMES: readonly string[] = [
  'NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED',
];

export function errorName(code: number): string {
  return ERROR_NAMES[code] ?? `0x${code.toString(16)}`;
}

export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADER = 9;
/** SETTINGS_MAX_FRAME_SIZE starts at 2^14 and may be raised to 2^24 − 1 (RFC 9113 §6.5.2). */
export const DEFAULT_MAX_FRAME = 16_384;
export const LARGEST_FRAME = 16_777_215;

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  /** The payload (a view: copy before keeping it past the callback). */
  payload: Buffer;
  /** Stream offset of the frame's first byte in its direction. */
  offset: number;
  /** Capture time and frame number of the packet that carried the frame's first byte. */
  startTime: number;
  startFrame: number;
}

/**
 * Splits one direction's bytes into frames. Only a partial frame is buffered; a frame longer than
 * the limit the receiver announced is skipped whole and reported (its payload is never buffered).
 * A gap inside a frame's payload keeps framing: the frame is delivered flagged `gap`, and the
 * next frame header is where the length says. A gap across a frame boundary loses framing.
 */
export class FrameReader {
  /**
   * The partial frame so far, as copied pieces: joined only once the whole frame is here (or a gap
   * needs it), since joining on every segment copies a large frame once per segment. A 4 MB DATA
   * frame (SETTINGS_MAX_FRAME_SIZE allows 16 MB, RFC 9113 §6.5.2) in 1460-byte segments took 3 s
   * and grew as the square of its size (found by npm run fuzz: grpc/lie-len/b2c4a2e3).
   */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes the partial frame needs before it can be read: its header, then header and payload. */
  private need = 0;
  /** Bytes of an oversized or gapped frame still to skip. */
  private skip = 0;
  /** Offset of the next byte to be read in this direction. */
  offset = 0;
  /** Limit on payload length this direction may send (the peer's SETTINGS_MAX_FRAME_SIZE). */
  maxFrame = DEFAULT_MAX_FRAME;
  /** Partial frame header + payload progress when a gap hit: the header that was cut. */
  private partial: { type: number; flags: number; stream: number; length: number; got: number; offset: number } | undefined;

  constructor(
    private readonly onFrame: (f: Frame, gapped: boolean) => void,
    private readonly onOversize: (type: number, length: number, offset: number) => void,
  ) {}

  /** Packet of the first byte of the partial frame held in `pending`. */
  private pendingTime = 0;
  private pendingFrame = 0;

  push(bytes: Buffer, offset: number, time = 0, frameNo = 0): void {
    this.offset = offset;
    let b = bytes;
    if (this.skip > 0) {
      const n = Math.min(this.skip, b.length);
      this.skip -= n;
      this.offset += n;
      b = b.subarray(n);
      if (b.length === 0) return;
    }
    // The first frame of this call began in the packet that started the held partial frame.
    let firstTime = time, firstFrame = frameNo;
    if (this.pendingLen > 0) {
      if (this.pendingLen + b.length < this.need) {
        // Still short of the frame: keep the piece (a copy: `bytes` is the packet's view).
        this.pending.push(Buffer.from(b));
        this.pendingLen += b.length;
        if (this.partial) this.partial.got += b.length;
        this.offset += b.length;
        return;
      }
      b = Buffer.concat([...this.pending, b]);
      this.offset -= this.pendingLen;
      this.pending = [];
      this.pendingLen = 0;
      firstTime = this.pendingTime;
      firstFrame = this.pendingFrame;
    }
    let p = 0;
    while (b.length - p >= FRAME_HEADER) {
      const length = (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
      const type = b[p + 3]!;
      const flags = b[p + 4]!;
      const stream = b.readUInt32BE(p + 5) & 0x7fffffff;
      if (length > this.maxFrame) {
        this.onOversize(type, length, this.offset + p);
        const avail = b.length - p - FRAME_HEADER;
        if (avail >= length) {
          p += FRAME_HEADER + length;
          continue;
        }
        this.skip = length - avail;
        this.offset += b.length;
        return;
      }
      if (b.length - p - FRAME_HEADER < length) break;
      const st = p === 0 ? firstTime : time, sf = p === 0 ? firstFrame : frameNo;
      this.onFrame({ type, flags, stream, payload: b.subarray(p + FRAME_HEADER, p + FRAME_HEADER + length), offset: this.offset + p, startTime: st, startFrame: sf }, false);
      p += FRAME_HEADER + length;
    }
    if (p < b.length) {
      if (p === 0) {
        this.pendingTime = firstTime;
        this.pendingFrame = firstFrame;
      } else {
        this.pendingTime = time;
        this.pendingFrame = frameNo;
      }
      const h = Buffer.from(b.subarray(p));
      this.pending = [h];
      this.pendingLen = h.length;
      this.partial = h.length >= FRAME_HEADER
        ? { type: h[3]!, flags: h[4]!, stream: h.readUInt32BE(5) & 0x7fffffff, length: (h[0]! << 16) | (h[1]! << 8) | h[2]!, got: h.length - FRAME_HEADER, offset: this.offset + p }
        : undefined;
      this.need = FRAME_HEADER + (this.partial?.length ?? 0);
    } else this.partial = undefined;
    this.offset += b.length;
  }

  /**
   * `length` bytes are lost. Returns true when framing survives (the hole lies inside the payload
   * of the frame being read, which is then delivered with `gapped` set and the known bytes only).
   */
  gap(length: number): boolean {
    if (this.skip > 0) {
      if (length <= this.skip) {
        this.skip -= length;
        this.offset += length;
        return true;
      }
      this.reset();
      return false;
    }
    const part = this.partial;
    if (part && part.got + length <= part.length) {
      // Deliver what we have of this frame now, then skip the rest of its payload.
      const have = Buffer.concat(this.pending).subarray(FRAME_HEADER);
      this.onFrame({ type: part.type, flags: part.flags, stream: part.stream, payload: have, offset: part.offset, startTime: this.pendingTime, startFrame: this.pendingFrame }, true);
      this.skip = part.length - part.got - length;
      this.offset += length;
      this.pending = [];
      this.pendingLen = 0;
      this.partial = undefined;
      return true;
    }
    this.reset();
    return false;
  }

  reset(): void {
    this.pending = [];
    this.pendingLen = 0;
    this.partial = undefined;
    this.skip = 0;
  }

  /** Bytes held of a partial frame (for end-of-stream reporting). */
  get held(): number {
    return this.pendingLen;
  }
}

/** A frame header that could start here, by shape: known type, valid flags, sane stream id. */
export function plausibleFrame(b: Buffer, p: number, maxLen = DEFAULT_MAX_FRAME): number {
  if (b.length - p < FRAME_HEADER) return -1;
  const length = (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
  const type = b[p + 3]!;
  const flags = b[p + 4]!;
  const r = b[p + 5]! & 0x80;
  const stream = b.readUInt32BE(p + 5) & 0x7fffffff;
  if (r || type > 9 || length > maxLen) return -1;
  switch (type) {
    case FRAME.DATA: if (stream === 0 || flags & ~0x09) return -1; break;
    case FRAME.HEADERS: if (stream === 0 || flags & ~0x2d) return -1; break;
    case FRAME.PRIORITY: if (stream === 0 || length !== 5) return -1; break;
    case FRAME.RST_STREAM: if (stream === 0 || length !== 4) return -1; break;
    case FRAME.SETTINGS: if (stream !== 0 || length % 6 !== 0 || flags & ~0x01) return -1; break;
    case FRAME.PUSH_PROMISE: if (stream === 0 || length < 4) return -1; break;
    case FRAME.PING: if (stream !== 0 || length !== 8 || flags & ~0x01) return -1; break;
    case FRAME.GOAWAY: if (stream !== 0 || length < 8) return -1; break;
    case FRAME.WINDOW_UPDATE: if (length !== 4) return -1; break;
    case FRAME.CONTINUATION: if (stream === 0 || flags & ~0x04) return -1; break;
  }
  return FRAME_HEADER + length;
}
