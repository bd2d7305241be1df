import { basename } from 'node:path';
import type { FlowRecord } from '../flows/index.js';
import { decodeRecord } from './codec.js';
import { overlaps, type BlockMeta } from './blocks.js';
import { compareKeys, decodeCursor, encodeCursor, type FlowKey } from './keys.js';
import type { RecentFlows } from './memory.js';
import { BlockReader, type Damage, type ReadFrame, type Segment, type SegmentLog } from './segments.js';

export interface StoreQuery {
  filter?: (r: FlowRecord) => boolean;
  /** Epoch seconds, inclusive, on the flow's start. */
  since?: number;
  until?: number;
  limit: number;
  cursor?: string;
}

export interface StorePage {
  flows: FlowRecord[];
  next: string | null;
  /**
   * Set when a block this page read was damaged on disk: which segment, where, what was wrong and
   * how many flows it lost (each also a named loss of the store). Absent when nothing was.
   */
  lost?: string;
}

/** A block to read, with its fields copied: the active segment's last block grows meanwhile. */
type Candidate = Pick<BlockMeta, 'offset' | 'bytes' | 'first' | 'count' | 'minTime' | 'maxTime' | 'keys'> & { seg: Segment };

/** Where the reads of a query report damage: the store records it (once) and says how to name it. */
export interface DamageSink {
  damaged(d: Damage): void;
  describe(d: Damage): string;
}

/**
 * One page of flows in (start, id) order, from memory and disk together. Memory answers ordinals
 * from `memory.low` up; the disk the ones below, read block by block in order of their earliest
 * start, keeping only the best limit+1 flows seen. Once a block's earliest start is past the
 * worst of a full page, no later block can contribute and reading stops, so a page reads the
 * blocks around its window, not the store.
 */
export async function queryFlows(q: StoreQuery, memory: RecentFlows, log: SegmentLog, sink?: DamageSink): Promise<StorePage> {
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
  const seen: string[] = [];
  const reader = damageReader(sink, seen);
  try {
    for (const c of cands) {
      const bound = best.bound();
      if (bound && c.minTime > bound.start) break;
      await eachFrame(reader, c, memLow, memory, (f) => {
        if (f.time > until) return;
        const key = { start: f.time, id: f.key };
        if (compareKeys(key, after) <= 0 || (bound && compareKeys(key, bound) >= 0)) return;
        const r = decode(f, c, reader.report);
        if (r && (!q.filter || q.filter(r))) best.push(r);
      });
    }
  } finally {
    await reader.close();
  }
  const rows = best.sorted();
  const flows = rows.slice(0, q.limit);
  return { flows, next: rows.length > q.limit ? encodeCursor(flows[flows.length - 1]!) : null, ...(seen.length ? { lost: seen.join('; ') } : {}) };
}

/** A flow that is no longer in memory: the disk, newest segments first (ids are looked up recent). */
export async function findOnDisk(id: string, memory: RecentFlows, log: SegmentLog, sink?: DamageSink): Promise<FlowRecord | undefined> {
  const reader = damageReader(sink, []);
  const memLow = memory.low;
  try {
    for (const c of diskBlocks(log, memLow).reverse()) {
      if (c.keys && !c.keys.has(id)) continue;
      let found: FlowRecord | undefined;
      await eachFrame(reader, c, memLow, memory, (f) => {
        if (!found && f.key === id) found = decode(f, c, reader.report);
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
      out.push({ seg, offset: b.offset, bytes: b.bytes, first: b.first, count: b.count, minTime: b.minTime, maxTime: b.maxTime, keys: b.keys });
    }
  }
  return out;
}

/**
 * The block's frames below memLow (the rest are answered from memory). A damaged block lost frames
 * somewhere, so a frame's place no longer gives its ordinal: there memory is asked by id instead.
 */
async function eachFrame(reader: BlockReader, c: Candidate, memLow: number, memory: RecentFlows, fn: (f: ReadFrame) => void): Promise<void> {
  const read = await reader.read(c.seg, c);
  if (!read) return;
  const base = c.seg.first + c.first;
  if (!read.whole) {
    for (const f of read.frames) if (!memory.get(f.key)) fn(f);
    return;
  }
  for (let i = 0; i < read.frames.length && base + i < memLow; i++) fn(read.frames[i]!);
}

/** A reader whose damage goes to the sink and, described, to `seen` (each damage once) for the page. */
function damageReader(sink: DamageSink | undefined, seen: string[]): BlockReader & { report: (d: Damage) => void } {
  const blocks = new Set<string>();
  const report = (d: Damage) => {
    sink?.damaged(d);
    const k = damageKey(d);
    if (blocks.has(k)) return;
    blocks.add(k);
    seen.push(sink ? sink.describe(d) : `${d.file} at byte ${d.offset}: ${d.reason}`);
  };
  return Object.assign(new BlockReader(report), { report });
}

/** One damage, found again by every read of its block: recorded and said once. */
export function damageKey(d: Damage): string {
  return `${d.file}@${d.block}:${d.offset}`;
}

/**
 * A frame's record. Its checksum held, so a record that does not decode was written that way (or
 * the checksum matched by chance): damage all the same, named and counted, never a failed query.
 */
function decode(f: ReadFrame, c: Candidate, report: (d: Damage) => void): FlowRecord | undefined {
  try {
    return decodeRecord(f.body);
  } catch (e) {
    report({
      file: basename(c.seg.file), offset: f.offset, reason: `the flow record does not decode (${(e as Error).message})`,
      block: c.offset, minTime: c.minTime, maxTime: c.maxTime, lost: 1, of: c.count,
    });
    return undefined;
  }
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
