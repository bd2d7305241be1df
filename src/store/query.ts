import type { FlowRecord } from '../flows/index.js';
import { decodeRecord } from './codec.js';
import { overlaps, type BlockMeta } from './blocks.js';
import { compareKeys, decodeCursor, encodeCursor, type FlowKey } from './keys.js';
import type { RecentFlows } from './memory.js';
import { BlockReader, type Segment, type SegmentLog } from './segments.js';
import type { Frame } from './frames.js';

export interface StoreQuery {
  filter?: (r: FlowRecord) => boolean;
  /** Epoch seconds, inclusive, on the flow's start. */
  since?: number;
  until?: number;
  limit: number;
  cursor?: string;
}

export interface StorePage { flows: FlowRecord[]; next: string | null }

/** A block to read, with its fields copied: the active segment's last block grows meanwhile. */
type Candidate = Pick<BlockMeta, 'offset' | 'bytes' | 'first' | 'minTime' | 'maxTime' | 'keys'> & { seg: Segment };

/**
 * One page of flows in (start, id) order, from memory and disk together. Memory answers ordinals
 * from `memory.low` up; the disk the ones below, read block by block in order of their earliest
 * start, keeping only the best limit+1 flows seen. Once a block's earliest start is past the
 * worst of a full page, no later block can contribute and reading stops, so a page reads the
 * blocks around its window, not the store.
 */
export async function queryFlows(q: StoreQuery, memory: RecentFlows, log: SegmentLog): Promise<StorePage> {
  if (!Number.isInteger(q.limit) || q.limit < 1) throw new RangeError(`limit ${q.limit} is not a positive integer`);
  const floor: FlowKey = { start: q.since ?? -Infinity, id: '' };
  const cursor = q.cursor === undefined ? floor : decodeCursor(q.cursor);
  const after = compareKeys(cursor, floor) > 0 ? cursor : floor;
  const until = q.until ?? Infinity;
  const best = new Smallest(q.limit + 1);
  const memLow = memory.low;
  for (const r of memory.range(after, until, q.filter, q.limit + 1)) best.push(r);

  const cands = diskBlocks(log, memLow).filter((c) => overlaps(c.minTime, c.maxTime, after.start, until));
  cands.sort((a, b) => a.minTime - b.minTime);
  const reader = new BlockReader();
  try {
    for (const c of cands) {
      const bound = best.bound();
      if (bound && c.minTime > bound.start) break;
      await eachFrame(reader, c, memLow, (f) => {
        if (f.time > until) return;
        const key = { start: f.time, id: f.key };
        if (compareKeys(key, after) <= 0 || (bound && compareKeys(key, bound) >= 0)) return;
        const r = decodeRecord(f.body);
        if (!q.filter || q.filter(r)) best.push(r);
      });
    }
  } finally {
    await reader.close();
  }
  const rows = best.sorted();
  const flows = rows.slice(0, q.limit);
  return { flows, next: rows.length > q.limit ? encodeCursor(flows[flows.length - 1]!) : null };
}

/** A flow that is no longer in memory: the disk, newest segments first (ids are looked up recent). */
export async function findOnDisk(id: string, memLow: number, log: SegmentLog): Promise<FlowRecord | undefined> {
  const reader = new BlockReader();
  try {
    for (const c of diskBlocks(log, memLow).reverse()) {
      if (c.keys && !c.keys.has(id)) continue;
      let found: FlowRecord | undefined;
      await eachFrame(reader, c, memLow, (f) => {
        if (!found && f.key === id) found = decodeRecord(f.body);
      });
      if (found) return found;
    }
    return undefined;
  } finally {
    await reader.close();
  }
}

/** Blocks holding at least one ordinal below memLow, in log order. */
function diskBlocks(log: SegmentLog, memLow: number): Candidate[] {
  const out: Candidate[] = [];
  for (const seg of log.segments) {
    for (const b of seg.blocks.list) {
      if (seg.first + b.first >= memLow) break;
      out.push({ seg, offset: b.offset, bytes: b.bytes, first: b.first, minTime: b.minTime, maxTime: b.maxTime, keys: b.keys });
    }
  }
  return out;
}

/** The block's frames below memLow (the rest are answered from memory). */
async function eachFrame(reader: BlockReader, c: Candidate, memLow: number, fn: (f: Frame) => void): Promise<void> {
  const frames = await reader.read(c.seg, c);
  if (!frames) return;
  const base = c.seg.first + c.first;
  for (let i = 0; i < frames.length && base + i < memLow; i++) fn(frames[i]!);
}

/** The k smallest flows by key among those pushed. */
class Smallest {
  private items: FlowRecord[] = [];
  private trimmed = true;

  constructor(private readonly k: number) {}

  push(r: FlowRecord): void {
    this.items.push(r);
    this.trimmed = false;
    // Sorting in batches of k keeps this O(n log k) without a heap.
    if (this.items.length >= 2 * this.k) this.trim();
  }

  private trim(): void {
    if (this.trimmed) return;
    this.items.sort(compareKeys);
    if (this.items.length > this.k) this.items.length = this.k;
    this.trimmed = true;
  }

  /** With k flows held, the largest of them: no flow at or above it can make the page. */
  bound(): FlowKey | undefined {
    if (this.items.length < this.k) return undefined;
    this.trim();
    return this.items[this.k - 1];
  }

  sorted(): FlowRecord[] {
    this.trim();
    return this.items;
  }
}
