import { Bloom } from './bloom.js';

/**
 * A segment is read in blocks: runs of whole frames of about `blockBytes`, each with the range of
 * its frame times and the tags it holds. Flows arrive roughly, not exactly, in start order, so a
 * time-window query cannot binary-search a segment; it reads only the blocks whose [minTime,
 * maxTime] can hold an answer, and stops once no remaining block can beat what it has. The writer
 * and the recovery scan build blocks with this same rule, so both give the same index.
 */
export interface BlockMeta {
  /** File offset of the first frame, and bytes of whole frames from there. */
  offset: number;
  bytes: number;
  /** Index within its segment of the block's first frame, and how many frames it holds. */
  first: number;
  count: number;
  minTime: number;
  maxTime: number;
  /** Distinct frame tags (packets: link types). */
  tags: number[];
  /** The frames' keys (flow ids); absent for keyless frames (packets). */
  keys?: Bloom;
}

/** A block as a sidecar holds it (JSON): the key filter in base64. */
export type StoredBlock = Omit<BlockMeta, 'keys'> & { keys?: string };

export function storeBlocks(list: BlockMeta[]): StoredBlock[] {
  return list.map((b) => ({ ...b, keys: b.keys && Buffer.from(b.keys.bits).toString('base64') }));
}

export function loadBlocks(list: StoredBlock[]): BlockMeta[] {
  return list.map((b) => ({ ...b, keys: b.keys === undefined ? undefined : new Bloom(Buffer.from(b.keys, 'base64')) }));
}

export class BlockList {
  readonly list: BlockMeta[];
  /** Over all blocks; kept as frames arrive because retention and stats ask often. */
  minTime = Infinity;
  maxTime = -Infinity;

  constructor(private readonly blockBytes: number, list: BlockMeta[] = []) {
    this.list = list;
    for (const b of list) this.widen(b.minTime, b.maxTime);
  }

  private widen(lo: number, hi: number): void {
    if (lo < this.minTime) this.minTime = lo;
    if (hi > this.maxTime) this.maxTime = hi;
  }

  add(offset: number, size: number, time: number, tag: number, key: string): void {
    let b = this.list[this.list.length - 1];
    if (!b || b.bytes >= this.blockBytes) {
      b = { offset, bytes: 0, first: this.count, count: 0, minTime: time, maxTime: time, tags: [] };
      this.list.push(b);
    }
    if (key) {
      // 8 bits per 512 bytes of block: ~9 bits a key for 600-byte records (PostgreSQL statements), more for larger.
      b.keys ??= Bloom.sized(Math.max(64, this.blockBytes >> 9));
      b.keys.add(key);
    }
    b.bytes += size;
    b.count++;
    if (time < b.minTime) b.minTime = time;
    if (time > b.maxTime) b.maxTime = time;
    if (!b.tags.includes(tag)) b.tags.push(tag);
    this.widen(time, time);
  }

  get count(): number {
    const b = this.list[this.list.length - 1];
    return b ? b.first + b.count : 0;
  }
}

/** Whether a block (or segment) with these times can hold a frame in [since, until]. */
export function overlaps(minTime: number, maxTime: number, since: number, until: number): boolean {
  return maxTime >= since && minTime <= until;
}
