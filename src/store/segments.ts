import { closeSync, fsync, openSync, readdirSync, statSync, truncateSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { BlockList, loadBlocks, storeBlocks, type BlockMeta, type StoredBlock } from './blocks.js';
import { badHeader, encodeFrame, findFrame, HEADER_BYTES, parseFrames, segmentHeader, type Frame } from './frames.js';
import { fsyncDir, readJson, writeJsonAtomic } from './persist.js';

const fsyncFd = promisify(fsync);
/** Pending frames are written once they reach this size, or at sync (so a query can read them). */
const FLUSH_BYTES = 1 << 20;
const SCAN_CHUNK = 1 << 20;

export interface Segment {
  seq: number;
  file: string;
  /** Ordinal of the segment's first frame in its log. Assigned in this process, never persisted. */
  first: number;
  blocks: BlockList;
  /** File bytes, header included; for the active segment, pending frames too. */
  bytes: number;
  /** Fsynced, closed and indexed by its sidecar: immutable, and retention may delete it. */
  sealed: boolean;
}

export interface Torn { file: string; offset: number; reason: string }

export interface LogOptions {
  segmentBytes: number;
  segmentSec: number;
  blockBytes: number;
}

interface Sidecar { version: 1; bytes: number; blocks: StoredBlock[] }

/**
 * An append-only log of frames in numbered segment files (`<name>-<seq>.seg`), one log for flows
 * and one for packets. Appends are synchronous (written in batches with writev), so a frame is in
 * the file as soon as it has been flushed and only fsync waits; that keeps add() synchronous and
 * leaves no write in flight for a reader to race with. A segment is sealed after its fsync: its
 * index goes to a sidecar (`.idx`), so a restart reads sidecars instead of whole files and scans
 * only the segments a crash left unsealed.
 */
export class SegmentLog {
  readonly segments: Segment[] = [];
  readonly torn: Torn[] = [];
  /** Ordinal of the next frame; frames below `written` are in their file (not necessarily fsynced). */
  next = 0;
  written = 0;
  private active?: { seg: Segment; fd: number; openedAt: number };
  private sealing: { seg: Segment; fd: number }[] = [];
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dirDirty = false;
  private syncing: Promise<void> = Promise.resolve();

  private constructor(private readonly dir: string, private readonly name: string, private readonly kind: number, private readonly opts: LogOptions, private readonly readOnly: boolean) {}

  /**
   * Reads what is on disk: sidecars where they match their file, a checked scan elsewhere. A writer
   * also repairs what a crash left (cuts torn tails, writes sidecars, deletes leftovers); with
   * `readOnly` nothing is written: a torn tail is only left out, a missing sidecar only scanned.
   */
  static async open(dir: string, name: string, kind: number, opts: LogOptions, readOnly = false): Promise<SegmentLog> {
    const log = new SegmentLog(dir, name, kind, opts, readOnly);
    const re = new RegExp(`^${name}-(\\d+)\\.(seg|idx)(\\.tmp)?$`);
    const names = readdirSync(dir).filter((f) => re.test(f)).sort();
    const segs = new Set(names.filter((f) => f.endsWith('.seg')));
    for (const f of names) {
      // Sidecars of deleted segments and half-written temporaries are leftovers of a crash.
      if (!readOnly && (f.endsWith('.tmp') || (f.endsWith('.idx') && !segs.has(f.replace(/\.idx$/, '.seg'))))) {
        unlinkSync(join(dir, f));
        log.dirDirty = true;
      }
    }
    for (const f of segs) await log.recover(f, Number(re.exec(f)![1]));
    if (log.dirDirty) fsyncDir(dir);
    log.dirDirty = false;
    return log;
  }

  private async recover(f: string, seq: number): Promise<void> {
    const file = join(this.dir, f);
    const size = statSync(file).size;
    const side = readJson(sidecarOf(file)) as Sidecar | undefined;
    let blocks: BlockList;
    let bytes = size;
    if (side?.version === 1 && side.bytes === size && Array.isArray(side.blocks)) {
      blocks = new BlockList(this.opts.blockBytes, loadBlocks(side.blocks));
    } else {
      const scan = await scanSegment(file, this.kind, this.opts.blockBytes);
      blocks = scan.blocks;
      bytes = scan.good;
      if (scan.torn) this.torn.push({ file: f, ...scan.torn });
      // A reader leaves the file as it is: its index covers the whole frames only.
      if (this.readOnly) {
        if (blocks.count === 0) return;
      } else {
        // Cut the tail off so the file ends on a whole frame; new frames go to a fresh segment.
        if (scan.torn) truncateSync(file, scan.good);
        if (blocks.count === 0) {
          unlinkSync(file);
          this.dirDirty = true;
          return;
        }
        writeJsonAtomic(sidecarOf(file), { version: 1, bytes: scan.good, blocks: storeBlocks(blocks.list) } satisfies Sidecar);
        this.dirDirty = true;
      }
    }
    // Sealed: immutable from here on (for a reader, as far as its index reaches).
    this.segments.push({ seq, file, first: this.next, blocks, bytes, sealed: true });
    this.next += blocks.count;
    this.written = this.next;
  }

  /** Appends one frame and returns its ordinal. */
  append(time: number, tag: number, key: string, body: Uint8Array[]): number {
    if (this.readOnly) throw new Error(`${this.dir}: the store is open read-only`);
    const frame = encodeFrame(time, tag, key, body);
    const a = this.active ?? this.create();
    a.seg.blocks.add(a.seg.bytes, frame.length, time, tag, key);
    a.seg.bytes += frame.length;
    this.pending.push(frame);
    this.pendingBytes += frame.length;
    const ordinal = this.next++;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    if (a.seg.bytes >= this.opts.segmentBytes || Date.now() - a.openedAt >= this.opts.segmentSec * 1000) this.roll();
    return ordinal;
  }

  private create(): { seg: Segment; fd: number; openedAt: number } {
    const seq = (this.segments[this.segments.length - 1]?.seq ?? 0) + 1;
    const file = join(this.dir, `${this.name}-${String(seq).padStart(10, '0')}.seg`);
    const fd = openSync(file, 'wx');
    writeSync(fd, segmentHeader(this.kind));
    const seg: Segment = { seq, file, first: this.next, blocks: new BlockList(this.opts.blockBytes), bytes: HEADER_BYTES, sealed: false };
    this.segments.push(seg);
    this.dirDirty = true;
    this.active = { seg, fd, openedAt: Date.now() };
    return this.active;
  }

  /** Writes pending frames to the file (no fsync): readers of the file see them from here on. */
  flush(): void {
    if (!this.active || this.pendingBytes === 0) return;
    const n = writevSync(this.active.fd, this.pending);
    if (n !== this.pendingBytes) throw new Error(`${this.active.seg.file}: short write (${n} of ${this.pendingBytes} bytes)`);
    this.pending = [];
    this.pendingBytes = 0;
    this.written = this.next;
  }

  /** Ends the active segment; the next append starts a new one. It is sealed at the next sync. */
  roll(): void {
    if (!this.active) return;
    this.flush();
    this.sealing.push(this.active);
    this.active = undefined;
  }

  /** Makes every frame appended so far durable. Calls run one after another (fds close in them). */
  sync(): Promise<void> {
    if (this.active && Date.now() - this.active.openedAt >= this.opts.segmentSec * 1000) this.roll();
    this.flush();
    const sealing = this.sealing.splice(0);
    const activeFd = this.active?.fd;
    // A failed fsync rejects its own caller; the next sync still runs.
    this.syncing = this.syncing.catch(() => undefined).then(async () => {
      await Promise.all([...sealing.map((s) => fsyncFd(s.fd)), activeFd === undefined ? undefined : fsyncFd(activeFd)]);
      for (const s of sealing) {
        closeSync(s.fd);
        writeJsonAtomic(sidecarOf(s.seg.file), { version: 1, bytes: s.seg.bytes, blocks: storeBlocks(s.seg.blocks.list) } satisfies Sidecar);
        s.seg.sealed = true;
        this.dirDirty = true;
      }
      if (this.dirDirty) {
        this.dirDirty = false;
        fsyncDir(this.dir);
      }
    });
    return this.syncing;
  }

  /** Deletes a sealed segment (retention). */
  remove(seg: Segment): void {
    if (!seg.sealed) throw new Error(`${seg.file}: not sealed, cannot be removed`);
    unlinkSync(seg.file);
    try {
      unlinkSync(sidecarOf(seg.file));
    } catch { /* a sidecar lost in a crash is rebuilt by a scan, never needed to delete */ }
    this.segments.splice(this.segments.indexOf(seg), 1);
    this.dirDirty = true;
  }

  /** Seals the active segment too, so the next open reads only sidecars. */
  async close(): Promise<void> {
    this.roll();
    await this.sync();
  }

  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  get count(): number {
    return this.segments.reduce((n, s) => n + s.blocks.count, 0);
  }

  /** Earliest and latest frame time held, undefined when the log is empty. */
  get minTime(): number | undefined {
    return this.segments.length ? this.segments.reduce((t, s) => Math.min(t, s.blocks.minTime), Infinity) : undefined;
  }

  get maxTime(): number | undefined {
    return this.segments.length ? this.segments.reduce((t, s) => Math.max(t, s.blocks.maxTime), -Infinity) : undefined;
  }
}

function sidecarOf(file: string): string {
  return file.replace(/\.seg$/, '.idx');
}

/**
 * Reads a segment from the start, checking every frame, and indexes it in blocks. `good` is the
 * length of the valid prefix; `torn` says where and why the rest is not frames.
 */
async function scanSegment(file: string, kind: number, blockBytes: number): Promise<{ blocks: BlockList; good: number; torn?: Omit<Torn, 'file'> }> {
  const blocks = new BlockList(blockBytes);
  const fh = await open(file, 'r');
  try {
    const bad = badHeader(await readAt(fh, 0, HEADER_BYTES), kind);
    if (bad) return { blocks, good: 0, torn: { offset: 0, reason: bad } };
    let buf: Buffer = Buffer.alloc(0);
    let base = HEADER_BYTES;
    for (;;) {
      const chunk = await readAt(fh, base + buf.length, SCAN_CHUNK);
      if (chunk.length === 0) break;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const end = parseFrames(buf, 0, (f, at, size) => blocks.add(base + at, size, f.time, f.tag, f.key));
      if (end.error) return { blocks, good: base + end.pos, torn: { offset: base + end.pos, reason: end.error } };
      buf = buf.subarray(end.pos);
      base += end.pos;
    }
    if (buf.length === 0) return { blocks, good: base };
    const want = buf.length >= 4 ? ` of ${buf.readUInt32LE(0) + 8}` : '';
    return { blocks, good: base, torn: { offset: base, reason: `frame cut short (${buf.length}${want} bytes)` } };
  } finally {
    await fh.close();
  }
}

async function readAt(fh: FileHandle, pos: number, n: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(n);
  const { bytesRead } = await fh.read(buf, 0, n, pos);
  return buf.subarray(0, bytesRead);
}

/** A scan of the whole store touches every segment: this many stay open at once, the least recent closing. */
const MAX_OPEN = 16;

/** A frame as a read returns it: with its file offset, which names it when its record is bad. */
export interface ReadFrame extends Frame { offset: number }

/** The blocks of one read: whole when every frame the index counts was read. */
export interface BlockFrames { frames: ReadFrame[]; whole: boolean }

/** Frames of a sealed segment that failed their check when read (the index had promised them). */
export interface Damage {
  /** The segment file's name, the file offset of the first bad spot, and what was wrong there. */
  file: string;
  offset: number;
  reason: string;
  /** The block: its file offset, its time range, and how many of its frames were lost, of how many. */
  block: number;
  minTime: number;
  maxTime: number;
  lost: number;
  of: number;
}

type BlockRef = Pick<BlockMeta, 'offset' | 'bytes' | 'count' | 'minTime' | 'maxTime'>;

/**
 * Reads blocks for one query or export, keeping recently used segment files open until close(): a
 * segment that retention deletes meanwhile stays readable through an open handle. A segment gone
 * when (re)opened gives undefined: retention took it.
 *
 * A sealed segment is trusted by its index at open, so damage that came later (a flipped bit, a
 * file cut short) is found here: the block's frames before the bad spot are kept, the read resyncs
 * at the next valid frame within the block (findFrame), and `onDamage` is told where and what, with
 * the frames lost. The active segment's last block grows while it is read, so a short read there is
 * frames not yet written (answered from memory), not damage: it ends the block as before.
 */
export class BlockReader {
  private handles = new Map<Segment, Promise<FileHandle | undefined>>();

  constructor(private readonly onDamage?: (d: Damage) => void) {}

  async read(seg: Segment, b: BlockRef): Promise<BlockFrames | undefined> {
    let h = this.handles.get(seg);
    if (h) {
      this.handles.delete(seg);
    } else {
      h = open(seg.file, 'r').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (this.handles.size >= MAX_OPEN) {
        const [oldest, fh] = this.handles.entries().next().value!;
        this.handles.delete(oldest);
        await (await fh)?.close();
      }
    }
    this.handles.set(seg, h);
    const fh = await h;
    if (!fh) return undefined;
    const buf = await readAt(fh, b.offset, b.bytes);
    const frames: ReadFrame[] = [];
    const bad: { offset: number; reason: string }[] = [];
    let pos = 0;
    for (;;) {
      const end = parseFrames(buf, pos, (f, at) => frames.push({ ...f, offset: b.offset + at }));
      if (end.pos >= b.bytes || !seg.sealed) break;
      bad.push({
        offset: b.offset + end.pos,
        reason: end.error ?? (buf.length < b.bytes
          ? `the file ends at byte ${b.offset + buf.length}, inside a block its index says runs to byte ${b.offset + b.bytes}`
          : 'a frame runs past the end of its block'),
      });
      const next = findFrame(buf, end.pos + 1, (t) => t >= b.minTime && t <= b.maxTime);
      if (next === undefined) break;
      pos = next;
    }
    if (bad.length === 0) return { frames, whole: true };
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more bad spot${bad.length > 2 ? 's' : ''} in the block)` : '';
    this.onDamage?.({
      file: basename(seg.file), offset: bad[0]!.offset, reason: bad[0]!.reason + more,
      block: b.offset, minTime: b.minTime, maxTime: b.maxTime, lost: Math.max(0, b.count - frames.length), of: b.count,
    });
    return { frames, whole: false };
  }

  async close(): Promise<void> {
    for (const h of this.handles.values()) await (await h)?.close();
    this.handles.clear();
  }
}
