import type { FlowRecord } from '../flows/index.js';

/** Flows a window holds at most by default: about 150 MB of records, a few hundred ms to verify. */
export const DEFAULT_MAX_FLOWS = 50_000;

/** What the window holds at an evaluation: its flows, ordered by start, and what it is missing. */
export interface WindowView {
  flows: FlowRecord[];
  /** now − width, and now. */
  since: number;
  until: number;
  /** Flows lost inside the window (dropped to stay bounded, or by the feed); 0 when whole. */
  missed: number;
  /** With a loss: from this time on no flow is known to be missing. */
  wholeSince: number;
}

/**
 * The live flows of the last `widthSec` seconds, bounded. Flows arrive roughly in completion order;
 * the oldest arrivals are dropped past `maxFlows`. A loss is remembered by the newest time it
 * touched, so the window can say honestly that it is whole only from there on, until that time
 * slides out of it.
 */
export class FlowWindow {
  private items: FlowRecord[] = [];
  /** Index of the oldest held flow in `items`: dropping at the bound is O(1), compacted later. */
  private head = 0;
  private readonly ids = new Set<string>();
  private missedAt = -Infinity;
  private missedCount = 0;
  private changed = false;
  /** The `now` of the last slide: take() right after slide() (as Watcher.evaluate does) need not slide again. */
  private slidAt = NaN;

  constructor(readonly widthSec: number, readonly maxFlows = DEFAULT_MAX_FLOWS) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** Holds a flow; one already held (same id, e.g. from a history page and the live stream) is ignored. */
  add(r: FlowRecord): void {
    if (this.ids.has(r.id)) return;
    this.ids.add(r.id);
    this.items.push(r);
    this.changed = true;
    this.slidAt = NaN;
    if (this.size > this.maxFlows) {
      const old = this.items[this.head++]!;
      this.ids.delete(old.id);
      this.lost(1, old.start);
      if (this.head > this.items.length / 2) this.compact(() => true);
    }
  }

  /** `count` flows that started at or before `at` never reached the window (or were dropped from it). */
  lost(count: number, at: number): void {
    this.missedAt = Math.max(this.missedAt, at);
    this.missedCount += count;
    this.changed = true;
  }

  /**
   * Lets flows that started before `now − width` go. True when a verification would now see
   * something different from the last `take()`: a flow came, left, or was lost.
   */
  slide(now: number): boolean {
    this.slidAt = now;
    const since = now - this.widthSec;
    this.compact((r) => r.start >= since);
    if (this.missedCount > 0 && this.missedAt < since) {
      // The loss slid out of the window: the window is whole again.
      this.missedCount = 0;
      this.changed = true;
    }
    return this.changed;
  }

  /** What to verify at `now`, ordered by start (arrival order is completion order); clears the change mark. */
  take(now: number): WindowView {
    if (now !== this.slidAt) this.slide(now);
    this.changed = false;
    const since = now - this.widthSec;
    // Every held flow counts, lost ones or not: what was seen is still evidence, and the verdict
    // says the window is not whole. Sliding left only flows inside the window, from `head` on.
    const flows = this.items.slice(this.head)
      .sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { flows, since, until: now, missed: this.missedCount, wholeSince: this.missedCount > 0 ? Math.max(since, this.missedAt) : since };
  }

  private compact(keep: (r: FlowRecord) => boolean): void {
    const before = this.items.length;
    const kept: FlowRecord[] = [];
    for (let i = 0; i < this.items.length; i++) {
      const r = this.items[i]!;
      if (i >= this.head && keep(r)) kept.push(r);
      else if (i >= this.head) this.ids.delete(r.id);
    }
    if (kept.length !== before - this.head) this.changed = true;
    this.items = kept;
    this.head = 0;
  }
}
