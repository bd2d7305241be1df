import { findMessageStart, requestLineAt, statusLineAt } from './probe.js';

const EMPTY: Buffer = Buffer.alloc(0);

/**
 * Regaining sync in one direction after a gap, malformed input, or a capture begun mid-connection:
 * bytes are skipped until a start line begins at a line start (RFC 9112 §2.1: a message begins
 * with its start line; §2.2 lets a recipient skip empty lines before a request). A start line may
 * be split across segments, so the last partial line is kept (bounded by maxStartLine) and looked
 * at again with the next segment.
 */
export class StartScanner {
  /** The last partial line (a copy: it outlives its packet), and its stream offset. */
  tail: { bytes: Buffer; off: number } | undefined;
  /** After `scan`: the bytes scanned (the tail and the segment), their stream offset, and whether bytes were skipped. */
  private buf: Buffer = EMPTY;
  base = 0;
  skipped = false;

  constructor(private readonly kind: 'request' | 'response', private readonly maxStartLine: number) {}

  private startsAt(b: Buffer, i: number): 1 | 0 | -1 {
    return this.kind === 'request' ? requestLineAt(b, i) : statusLineAt(b, i);
  }

  /** Looks for a message start in `bytes` at stream offset `off`: its index in `buf`, or -1. */
  scan(bytes: Buffer, off: number): number {
    const prev = this.tail;
    const buf = prev ? Buffer.concat([prev.bytes, bytes]) : bytes;
    this.buf = buf;
    this.base = prev ? prev.off : off;
    let p = findMessageStart(buf, this.kind);
    // A segment start is taken for a line start (as it is when no tail is held).
    if (prev && (p < 0 || p > prev.bytes.length) && this.startsAt(buf, prev.bytes.length) === 1) p = prev.bytes.length;
    let from = 0;
    if (p < 0) {
      // Keep the last partial line (bounded), or this segment if it begins like a start line.
      from = Math.max(buf.lastIndexOf(0x0a) + 1, buf.length - this.maxStartLine);
      const segStart = buf.length - bytes.length;
      if (segStart > from && this.startsAt(buf, from) !== 0 && this.startsAt(bytes, 0) === 0) from = segStart;
    }
    this.skipped = (p < 0 ? from : p) > 0;
    if (p < 0) {
      this.tail = from < buf.length ? { bytes: Buffer.from(buf.subarray(from)), off: this.base + from } : undefined;
      this.buf = EMPTY;
      return -1;
    }
    this.tail = undefined;
    return p;
  }

  /** The bytes the last successful `scan` looked at (a view of the packet: used at once, not kept). */
  take(): Buffer {
    const b = this.buf;
    this.buf = EMPTY;
    return b;
  }
}
