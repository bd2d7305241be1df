import type { FlowRecord } from '../flows/index.js';
import { compareKeys, type FlowKey } from './keys.js';

interface Entry { r: FlowRecord; ordinal: number; bytes: number }

/**
 * The most recent flows (by arrival), held in memory so that a flow is queryable the moment it
 * is added, before any write. Flows are kept in arrival order (for eviction) and in (start, id)
 * order (for queries). Ordinals at or above `low` are answered from here; the disk answers
 * the rest, so a flow is never read from both.
 *
 * Two bounds: the number of flows, and their size (each weighed by its encoded record, which
 * grows with its body previews: 20 000 flows are 30 MB with small bodies and 2.6 GB with 64 KiB
 * ones). Eviction runs in batches of 1/16 of a bound: removing one flow from the sorted array
 * costs a pass over it, so a bound may be passed by up to a batch.
 */
export class RecentFlows {
  private arrival: Entry[] = [];
  private sorted: Entry[] = [];
  private byId = new Map<string, FlowRecord>();
  /** Ordinal of the oldest flow still held (the next ordinal when empty). */
  low = 0;
  /** Encoded bytes of the flows held. */
  bytes = 0;

  constructor(private readonly bound: number, private readonly maxBytes = Infinity) {}

  get size(): number {
    return this.arrival.length;
  }

  get overBound(): boolean {
    return this.arrival.length > this.bound + Math.ceil(this.bound / 16) || this.bytes > this.maxBytes + this.maxBytes / 16;
  }

  /** `bytes`: the flow's weight (its encoded record's length). */
  add(r: FlowRecord, ordinal: number, bytes = 0): void {
    const e = { r, ordinal, bytes };
    this.bytes += bytes;
    if (this.arrival.length === 0) this.low = ordinal;
    this.arrival.push(e);
    this.byId.set(r.id, r);
    // Flows come nearly in start order, so the splice moves few entries.
    this.sorted.splice(this.after(r), 0, e);
  }

  get(id: string): FlowRecord | undefined {
    return this.byId.get(id);
  }

  /** Evicts the oldest arrivals down to the bound, but none at or above `limit` (not yet written). */
  evict(limit: number): void {
    let n = Math.max(0, this.arrival.length - this.bound);
    let bytes = this.bytes;
    for (let i = 0; i < n; i++) bytes -= this.arrival[i]!.bytes;
    while (n < this.arrival.length && bytes > this.maxBytes) bytes -= this.arrival[n++]!.bytes;
    while (n > 0 && this.arrival[n - 1]!.ordinal >= limit) n--;
    if (n === 0) return;
    this.drop(this.arrival.splice(0, n));
  }

  /** Forgets flows whose segment retention deleted: [from, to) ordinals. */
  forget(from: number, to: number): void {
    if (to <= this.low || this.arrival.length === 0) return;
    const gone = this.arrival.filter((e) => e.ordinal >= from && e.ordinal < to);
    if (gone.length === 0) return;
    this.arrival = this.arrival.filter((e) => e.ordinal < from || e.ordinal >= to);
    this.drop(gone);
  }

  private drop(gone: Entry[]): void {
    const set = new Set(gone);
    for (const e of gone) {
      this.bytes -= e.bytes;
      if (this.byId.get(e.r.id) === e.r) this.byId.delete(e.r.id);
    }
    this.sorted = this.sorted.filter((e) => !set.has(e));
    if (this.arrival.length > 0) this.low = Math.max(this.low, this.arrival[0]!.ordinal);
    else this.low = Math.max(this.low, gone[gone.length - 1]!.ordinal + 1);
  }

  /** Flows in (start, id) order with key > after and start ≤ until, passing filter: at most max. */
  range(after: FlowKey, until: number, filter: ((r: FlowRecord) => boolean) | undefined, max: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    for (let i = this.after(after); i < this.sorted.length && out.length < max; i++) {
      const r = this.sorted[i]!.r;
      if (r.start > until) break;
      if (!filter || filter(r)) out.push(r);
    }
    return out;
  }

  /** Index of the first sorted entry whose key is greater than k. */
  private after(k: FlowKey): number {
    let lo = 0, hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(this.sorted[mid]!.r, k) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get oldestStart(): number | undefined {
    return this.sorted[0]?.r.start;
  }
}
