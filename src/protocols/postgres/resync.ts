import { provesStart, runAt, SCAN_WINDOW, type Run } from './messages.js';
import type { Mark } from './ops.js';

/** A position whose run reached the end of the bytes so far: more bytes may still prove it a start. */
interface Open {
  pos: number;
  /** Where its run stopped, the messages before that, and how it stopped (stream offsets). */
  at: number;
  messages: number;
  exact: boolean;
  /** The stream end from which its verdict can change. */
  wake: number;
  /** Settled: it broke, or the held bytes moved past it. */
  done: boolean;
}

/**
 * One direction's search for the next message start after framing was lost (a gap, garbage),
 * segment by segment, giving what findMessageStart on the held bytes plus the new segment gives
 * (the held bytes are the last 64 KiB looked at, and their first byte needs the fewest messages)
 * without rescanning them: that cost about 0.7 ms per segment (2 MB/s) while a stream never lined
 * up. A position is looked at once; only one whose run ran into the end of the bytes is looked at
 * again, when the message it stopped in can be whole (a min-heap on that), from where it stopped.
 * Bytes before the first position still open are dropped: they cannot start a message any more.
 */
export class Resync {
  /** Stream offset of the held bytes' first byte (findMessageStart's position 0). */
  private base: number;
  /** Positions before it have been looked at (settled, or in `open`). */
  private next: number;
  /** The bytes from `from` to `end`, in `buf[0 .. end - from]`. */
  private buf: Buffer = Buffer.alloc(0);
  private from: number;
  private end: number;
  /** Open positions by position, and as a heap by `wake`. */
  private readonly open: Open[] = [];
  private head = 0;
  private heap: Open[] = [];
  /** Positions not looked at yet that a broken run passed through: they break too. */
  private readonly broken = new Set<number>();

  /** `mark` and `ack`: the first segment's after the loss, which a start in earlier bytes takes. */
  constructor(off: number, readonly mark: Mark, readonly ack: number, private readonly frontend: boolean) {
    this.base = this.next = this.from = this.end = off;
  }

  /** Adds the segment at the end; the stream offset of a proven message start, or -1. */
  push(bytes: Buffer): number {
    this.append(bytes);
    const view = this.buf.subarray(0, this.end - this.from);
    // Open positions are all before fresh ones, so the first of them proven wins.
    let found = -1;
    const again: Open[] = [];
    while (this.heap.length > 0 && this.heap[0]!.wake <= this.end) {
      const o = this.pop();
      if (o.done) continue;
      const r = runAt(view, o.at - this.from, this.frontend, o.messages);
      if (provesStart(r, o.pos === this.base) && (found < 0 || o.pos < found)) found = o.pos;
      if (!r.exact && !r.partial) o.done = true;
      else again.push(this.update(o, r));
    }
    for (const o of again) this.add(o);
    // The first byte needs fewer messages: one that became it since it was looked at is judged again.
    const first = this.open[this.head];
    if (first?.pos === this.base && !first.done && first.messages >= (first.exact ? 1 : 2) && (found < 0 || first.pos < found)) found = first.pos;
    if (found >= 0) return found;
    for (const limit = Math.min(this.end, this.base + SCAN_WINDOW); this.next < limit; this.next++) {
      if (this.broken.size > 0 && this.broken.delete(this.next)) continue;
      const r = runAt(view, this.next - this.from, this.frontend);
      if (provesStart(r, this.next === this.base)) return this.next;
      if (!r.exact && !r.partial) {
        if (r.messages > 0) this.brokenChain(view, this.next - this.from, r.messages);
        continue;
      }
      const o = this.update({ pos: this.next, at: 0, messages: 0, exact: false, wake: 0, done: false }, r);
      this.open.push(o);
      this.add(o);
    }
    // As findMessageStart's caller did: only the last 64 KiB are held for the next segment.
    this.base = Math.max(this.base, this.end - SCAN_WINDOW);
    if (this.next < this.base) {
      this.next = this.base;
      this.broken.clear();
    }
    this.trim();
    return -1;
  }

  /** Where an open position's run stopped now (stream offsets). */
  private update(o: Open, r: Run): Open {
    o.at = r.at + this.from;
    o.messages = r.messages;
    o.exact = r.exact;
    o.wake = r.wake + this.from;
    return o;
  }

  /**
   * A run that broke after whole messages: the run from each of their starts is the rest of it and
   * breaks too, so those positions are not walked again (a long run of messages that ends in
   * garbage would otherwise be walked once from each of them).
   */
  private brokenChain(view: Buffer, p: number, messages: number): void {
    for (let i = 0; i < messages; i++) {
      p += 1 + view.readInt32BE(p + 1);
      this.broken.add(p + this.from);
    }
  }

  /** The bytes from stream offset `p` (a start `push` returned) to the end. */
  bytesFrom(p: number): Buffer {
    return this.buf.subarray(p - this.from, this.end - this.from);
  }

  private append(bytes: Buffer): void {
    const used = this.end - this.from;
    if (used + bytes.length > this.buf.length) {
      // Grown to twice what is held, so copying is paid for by the bytes appended since.
      const grown = Buffer.allocUnsafe(Math.max(2 * (used + bytes.length), 4096));
      this.buf.copy(grown, 0, 0, used);
      this.buf = grown;
    }
    bytes.copy(this.buf, used);
    this.end += bytes.length;
  }

  /** Drops what can no longer start a message: before the held bytes, settled, or not open. */
  private trim(): void {
    const open = this.open;
    while (this.head < open.length && (open[this.head]!.done || open[this.head]!.pos < this.base)) open[this.head++]!.done = true;
    if (this.head > 1024 && this.head * 2 > open.length) {
      open.splice(0, this.head);
      this.head = 0;
    }
    // Settled entries still in the heap are skipped when popped; rebuilt when they outnumber the open.
    if (this.heap.length > 1024 && this.heap.length > 2 * (open.length - this.head)) {
      const live = this.heap.filter((o) => !o.done);
      this.heap = [];
      for (const o of live) this.add(o);
    }
    // Moved to the front once the dropped bytes outnumber the held ones (and 64 KiB): linear in all.
    const keep = Math.min(open[this.head]?.pos ?? this.next, this.next);
    if (keep - this.from > Math.max(this.end - keep, SCAN_WINDOW)) {
      this.buf.copyWithin(0, keep - this.from, this.end - this.from);
      this.from = keep;
    }
  }

  private add(o: Open): void {
    const h = this.heap;
    let i = h.push(o) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.wake <= o.wake) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = o;
  }

  private pop(): Open {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1]!.wake < h[l]!.wake ? l + 1 : l;
        if (h[c]!.wake >= last.wake) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
