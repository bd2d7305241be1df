import type { Packet, PacketSink } from './types.js';

export interface TimeOrderOptions {
  /** How far back in capture time a late packet may still be put in its place (seconds). */
  windowSec: number;
  /** Packets held at most; the oldest is released past this. */
  maxPackets: number;
  /** Captured bytes held at most (held packets pin their read chunks; see the view rule). */
  maxBytes: number;
}

export const DEFAULT_TIME_ORDER: TimeOrderOptions = { windowSec: 0.5, maxPackets: 20_000, maxBytes: 16 << 20 };

/**
 * Puts packets back in time order within a bounded window. Files merged from several interfaces
 * (pcapng with many IDBs, `tcpdump -i any`) are often slightly out of order; timing and idle
 * timeouts downstream assume order. The common, in-order case costs an array push and shift.
 * A packet older than everything already released cannot be put back: it is released at once
 * and counted in `late`.
 */
export class TimeOrder {
  private held: Packet[] = [];
  private head = 0;
  private bytes = 0;
  private newest = -Infinity;
  private released = -Infinity;
  /** Packets that arrived out of time order and were put back in place. */
  reordered = 0;
  /** Packets older than what had already been released: delivered late, out of order. */
  late = 0;

  constructor(private readonly sink: PacketSink, private readonly opts: TimeOrderOptions = DEFAULT_TIME_ORDER) {}

  push(p: Packet): void {
    const t = p.time;
    if (t < this.released) {
      this.late++;
      this.sink(p);
      return;
    }
    const held = this.held;
    if (t >= this.newest) {
      held.push(p);
      this.newest = t;
    } else {
      // Insert in place (stable: after equal times), searching back from the tail.
      this.reordered++;
      let i = held.length;
      while (i > this.head && held[i - 1]!.time > t) i--;
      held.splice(i, 0, p);
    }
    this.bytes += p.data.length;
    const cutoff = this.newest - this.opts.windowSec;
    while (this.head < held.length) {
      const first = held[this.head]!;
      const count = held.length - this.head;
      if (first.time > cutoff && count <= this.opts.maxPackets && this.bytes <= this.opts.maxBytes) break;
      this.release();
    }
    if (this.head > 4096 && this.head * 2 > held.length) {
      this.held = held.slice(this.head);
      this.head = 0;
    }
  }

  private release(): void {
    const p = this.held[this.head]!;
    this.held[this.head] = undefined as unknown as Packet;
    this.head++;
    this.bytes -= p.data.length;
    this.released = p.time;
    this.sink(p);
  }

  /**
   * Releases what the window no longer needs to hold at time `now` (seconds, the source's clock):
   * packets older than `now − windowSec`. A live source calls this as time passes, because traffic
   * pauses and a held packet must not wait for the next one to be released.
   */
  advance(now: number): void {
    const cutoff = now - this.opts.windowSec;
    while (this.head < this.held.length && this.held[this.head]!.time <= cutoff) this.release();
    if (this.head === this.held.length) {
      this.held = [];
      this.head = 0;
    }
  }

  /** Releases everything held (end of input). */
  flush(): void {
    while (this.head < this.held.length) this.release();
    this.held = [];
    this.head = 0;
  }
}
