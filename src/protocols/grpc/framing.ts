import type { GrpcMessage } from '../types.js';

/*
 * gRPC over HTTP/2 (grpc/doc/PROTOCOL-HTTP2.md): DATA carries Length-Prefixed-Messages,
 *
 *   +------------------+------------------------+---------------------+
 *   | Compressed-Flag  | Message-Length (4, BE) | Message (length)    |
 *   |       (1)        |                        |                     |
 *   +------------------+------------------------+---------------------+
 *
 * which may split or join across DATA frames freely.
 */
const PREFIX = 5;
const GAP_ACROSS = 'gap across a message boundary';

/** Reads one direction's messages incrementally, keeping at most `keep` bytes of each and `max` messages. */
export class GrpcMessageReader {
  readonly messages: GrpcMessage[] = [];
  dropped = 0;
  /** Set when framing was lost (a bad flag byte, or a gap across a prefix); nothing more is read. */
  broken: string | undefined;
  private prefix = Buffer.alloc(PREFIX);
  private prefixGot = 0;
  private remaining = 0;
  /** The message being read: its kept bytes go straight into `buf`, sized once from the prefix. */
  private cur: { size: number; compressed: boolean; buf: Buffer; kept: number; truncated: boolean } | undefined;

  constructor(private readonly keep: number, private readonly max: number) {}

  push(b: Buffer, time: number): void {
    let p = 0;
    while (p < b.length && !this.broken) {
      if (!this.cur) {
        const n = Math.min(PREFIX - this.prefixGot, b.length - p);
        b.copy(this.prefix, this.prefixGot, p, p + n);
        this.prefixGot += n;
        p += n;
        if (this.prefixGot < PREFIX) return;
        this.prefixGot = 0;
        const flag = this.prefix[0]!;
        if (flag > 1) {
          this.broken = `compressed-flag byte is ${flag}, not 0 or 1`;
          return;
        }
        const size = this.prefix.readUInt32BE(1);
        this.cur = { size, compressed: flag === 1, buf: Buffer.allocUnsafe(Math.min(size, this.keep)), kept: 0, truncated: false };
        this.remaining = size;
      }
      const n = Math.min(this.remaining, b.length - p);
      const room = this.cur.buf.length - this.cur.kept;
      if (room > 0 && n > 0) {
        const k = Math.min(room, n);
        b.copy(this.cur.buf, this.cur.kept, p, p + k);
        this.cur.kept += k;
      }
      if (n > room) this.cur.truncated = true;
      this.remaining -= n;
      p += n;
      if (this.remaining === 0) this.complete(time);
    }
  }

  /** `n` bytes of this direction's DATA were lost. */
  gap(n: number): void {
    if (this.broken) return;
    if (this.cur && n <= this.remaining) {
      // Inside one message: framing survives, the message is incomplete.
      this.cur.truncated = true;
      this.remaining -= n;
      // Bytes after the hole are not kept: the kept prefix must stay contiguous.
      this.cur.buf = this.cur.buf.subarray(0, this.cur.kept);
      return;
    }
    this.broken = GAP_ACROSS;
  }

  /**
   * After a gap lost the message framing: a DATA frame whose payload is exactly one or more whole
   * messages is a boundary that cannot be misread (grpc-js writes each message in its own
   * frames), so reading restarts there. Anything less certain keeps the reader stopped.
   */
  restartAt(b: Buffer): boolean {
    if (this.broken !== GAP_ACROSS) return false;
    let p = 0, n = 0;
    while (p + PREFIX <= b.length) {
      if (b[p]! > 1) return false;
      p += PREFIX + b.readUInt32BE(p + 1);
      n++;
    }
    if (p !== b.length || n === 0) return false;
    this.broken = undefined;
    this.cur = undefined;
    this.prefixGot = 0;
    this.remaining = 0;
    return true;
  }

  /** End of the stream: a message still open is kept, marked truncated. */
  finish(time: number): void {
    if (this.cur) {
      this.cur.truncated = true;
      this.complete(time);
    }
  }

  private complete(time: number): void {
    const c = this.cur!;
    this.cur = undefined;
    if (this.messages.length >= this.max) {
      this.dropped++;
      return;
    }
    const m: GrpcMessage = { time, size: c.size, compressed: c.compressed };
    if (c.kept > 0) m.data = c.kept === c.buf.length ? c.buf : c.buf.subarray(0, c.kept);
    if (c.truncated) m.truncated = true;
    this.messages.push(m);
  }
}

/** grpc-timeout (PROTOCOL-HTTP2.md: TimeoutValue TimeoutUnit, H M S m u n) in milliseconds. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2] as 'H'];
  return n * unit;
}

/** "/pkg.Service/Method" → service and method; undefined for anything else. */
export function splitGrpcPath(path: string): { service: string; method: string } | undefined {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
  return m ? { service: m[1]!, method: m[2]! } : undefined;
}

/** gRPC status codes (grpc/doc/statuscodes.md), by value. */
export const GRPC_STATUS_NAMES: readonly string[] = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];
