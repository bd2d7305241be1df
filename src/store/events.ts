import { closeSync, fsync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ClusterEvent, EventQuery } from '../enrich/index.js';
import { overlaps } from './blocks.js';
import { fsyncDir } from './persist.js';
import type { Pin } from './retention.js';

const fsyncFd = promisify(fsync);

export interface EventLogOptions {
  /** Retention by size: the event segments on disk together. */
  maxBytes: number;
  /** Retention by age, on the newest event time a segment holds; an event older than this is not kept at all. */
  maxAgeSec: number;
  /** Roll a segment at this size (default maxBytes / 8, within 4 KiB … 256 KiB: what a narrow window's query parses)… */
  segmentBytes?: number;
  /** …or after this long (default an hour: events are few, and retention deletes whole segments). */
  segmentSec?: number;
  /** Read only: nothing is repaired, written or deleted; add throws. */
  readOnly?: boolean;
}

/** What a query found, and why some of its window may be missing. */
export interface EventRead {
  /** Oldest first (then by id). */
  events: ClusterEvent[];
  /** Damaged lines of the segments the window reaches (they hold events of unknown time): named, never thrown. */
  lost?: string;
}

export interface EventLogStats {
  events: number;
  bytes: number;
  segments: number;
  /** Segments deleted by retention since open. */
  evictions: number;
  /** Lines found damaged (cut short, not JSON, not an event) since open; each is named in `problems`. */
  damaged: number;
  problems: string[];
}

interface EventSegment {
  seq: number;
  file: string;
  bytes: number;
  minTime: number;
  maxTime: number;
  /** Events kept from it (the first of each id). */
  count: number;
  /** Damaged lines this segment holds, as named (kept: a query whose window it reaches says so). */
  damaged: string[];
}

const NAME = /^events-(\d{6,})\.jsonl$/;
const KiB = 1024;
/** The problems kept for stats (the count goes on). */
const MAX_PROBLEMS = 100;

/**
 * Cluster events kept beside the flows: one JSON line per event in numbered segment files
 * (`events-<seq>.jsonl`) in the store's directory. JSON lines rather than the flows' msgpack
 * frames: events are few (a handful a minute on a busy node), a person may read them with `jq`, and
 * a line is its own frame — a crash cuts at most the last one, which the next writer truncates.
 *
 * Each event is one write() to a file opened O_APPEND, so it is in the file (the page cache) as
 * soon as `add` returns, and durable after `sync`. Writing never reopens an old segment: each
 * process writes a fresh one, so a line a crash cut short is only ever at the end of a segment a
 * writer no longer appends to. Ids are deduplicated across every segment kept: the first event
 * with an id is kept, later ones are dropped (an agent that relists its pods, or sees an Event
 * count again, writes nothing new).
 *
 * Retention deletes whole segments, like the flows': older than maxAgeSec (by their newest event),
 * then oldest first while over maxBytes, never one a snapshot's window overlaps, never the one
 * being written. Queries read the segments whose time range overlaps their window (events may
 * arrive out of time order, e.g. a relist's pods started hours ago, so each segment keeps its range).
 */
export class EventLog {
  private readonly segments: EventSegment[] = [];
  private readonly ids = new Map<string, EventSegment>();
  private active?: { seg: EventSegment; fd: number; openedAt: number };
  private evictions = 0;
  private damagedLines = 0;
  private readonly problems: string[] = [];
  private nextSeq = 1;
  private dirDirty = false;

  private constructor(private readonly dir: string, private readonly o: EventLogOptions) {}

  static open(dir: string, o: EventLogOptions): EventLog {
    for (const k of ['maxBytes', 'maxAgeSec'] as const) {
      if (!(o[k] > 0)) throw new RangeError(`events: ${k} must be positive, not ${o[k]}`);
    }
    const log = new EventLog(dir, o);
    const files = readdirSync(dir).filter((f) => NAME.test(f)).sort();
    for (const f of files) log.recover(f, Number(NAME.exec(f)![1]));
    if (log.dirDirty) fsyncDir(dir);
    log.dirDirty = false;
    return log;
  }

  private get segmentBytes(): number {
    return this.o.segmentBytes ?? Math.min(256 * KiB, Math.max(4 * KiB, Math.floor(this.o.maxBytes / 8)));
  }

  private recover(f: string, seq: number): void {
    const file = join(this.dir, f);
    this.nextSeq = Math.max(this.nextSeq, seq + 1);
    const text = readFileSync(file);
    const seg: EventSegment = { seq, file, bytes: text.length, minTime: Infinity, maxTime: -Infinity, count: 0, damaged: [] };
    const { events, damaged, cut } = parseSegment(f, text);
    // Named and counted; kept with the segment, so a query whose window reaches it says so.
    seg.damaged.push(...damaged);
    this.noteDamage(damaged);
    if (cut !== undefined && !this.o.readOnly) {
      // A crash's cut tail: the writer truncates it, so the file ends on a whole line again.
      ftruncate(file, cut);
      seg.bytes = cut;
      this.dirDirty = true;
    }
    for (const e of events) {
      if (this.ids.has(e.id)) continue;
      this.ids.set(e.id, seg);
      seg.count++;
      seg.minTime = Math.min(seg.minTime, e.time);
      seg.maxTime = Math.max(seg.maxTime, e.time);
    }
    if (seg.bytes === 0 && !this.o.readOnly) {
      unlinkSync(file);
      this.dirDirty = true;
      return;
    }
    this.segments.push(seg);
  }

  /**
   * Keeps `e` unless an event with its id is kept already, or it is older than maxAgeSec (it would
   * be deleted at once). Returns whether it was written. A RangeError for an event without id or time.
   */
  add(e: ClusterEvent, now = Date.now() / 1000): boolean {
    if (this.o.readOnly) throw new Error(`${this.dir}: the flow store is open read-only: events cannot be added`);
    if (typeof e.id !== 'string' || e.id === '') throw new RangeError(`event: id ${JSON.stringify(e.id)} is not an id`);
    if (!Number.isFinite(e.time)) throw new RangeError(`event ${e.id}: time ${e.time} is not a time`);
    if (this.ids.has(e.id) || e.time < now - this.o.maxAgeSec) return false;
    const line = Buffer.from(`${JSON.stringify(e)}\n`);
    const a = this.writable(line.length, now);
    writeSync(a.fd, line);
    const seg = a.seg;
    seg.bytes += line.length;
    seg.count++;
    seg.minTime = Math.min(seg.minTime, e.time);
    seg.maxTime = Math.max(seg.maxTime, e.time);
    this.ids.set(e.id, seg);
    return true;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Events of the window (on `time`), narrowed by namespace and pod, oldest first. */
  query(q: EventQuery): EventRead {
    const since = q.since ?? -Infinity, until = q.until ?? Infinity;
    const out: ClusterEvent[] = [];
    const lost: string[] = [];
    for (const seg of this.segments) {
      const reached = seg.count > 0 && overlaps(seg.minTime, seg.maxTime, since, until);
      if (reached) {
        const read = this.read(seg);
        if (read.vanished) lost.push(`${seg.file}: deleted while it was read`);
        for (const e of read.events) {
          if (e.time < since || e.time > until) continue;
          if (q.namespace !== undefined && e.namespace !== q.namespace) continue;
          if (q.pod !== undefined && e.pod !== q.pod) continue;
          out.push(e);
        }
      }
      // A damaged line's time is unknown: a window that reaches its segment's range (any window,
      // for a segment without one whole event) may be missing it.
      if (reached || seg.count === 0) lost.push(...seg.damaged);
    }
    out.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return lost.length ? { events: out, lost: `${lost.length} damaged event line${lost.length > 1 ? 's' : ''} skipped (${lost.slice(0, 3).join('; ')}${lost.length > 3 ? '; …' : ''})` } : { events: out };
  }

  /** A segment's events as kept: the first of each id, and only those this log holds (its ids). */
  private read(seg: EventSegment): { events: ClusterEvent[]; vanished?: boolean } {
    let text: Buffer;
    try {
      text = readFileSync(seg.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], vanished: true };
      throw e;
    }
    const { events, damaged } = parseSegment(seg.file, text.subarray(0, seg.bytes));
    // Damage that appeared after open (the disk, another hand) is counted when met.
    const fresh = damaged.filter((d) => !seg.damaged.includes(d));
    if (fresh.length) {
      seg.damaged.push(...fresh);
      this.noteDamage(fresh);
    }
    return { events: events.filter((e) => this.ids.get(e.id) === seg) };
  }

  /** Makes every event added so far durable. */
  async sync(): Promise<void> {
    if (this.o.readOnly) return;
    if (this.dirDirty) {
      fsyncDir(this.dir);
      this.dirDirty = false;
    }
    if (this.active) await fsyncFd(this.active.fd);
  }

  /**
   * Deletes expired segments (newest event before `cutoff`), then the oldest while over maxBytes;
   * a segment a pin overlaps, and the one being written, stay. Returns what it deleted, for the
   * caller's losses.
   */
  retain(cutoff: number, pins: Pin[]): { from: number; to: number; reason: 'age' | 'size' }[] {
    if (this.o.readOnly) return [];
    const removable = (s: EventSegment) => s !== this.active?.seg && !pins.some((p) => overlaps(s.minTime, s.maxTime, p.since, p.until));
    const removed: { from: number; to: number; reason: 'age' | 'size' }[] = [];
    const take = (s: EventSegment, reason: 'age' | 'size') => {
      this.segments.splice(this.segments.indexOf(s), 1);
      // A walk over every id, once per deleted segment (rare): cheaper than a list of ids per segment.
      for (const [id, of] of this.ids) if (of === s) this.ids.delete(id);
      try {
        unlinkSync(s.file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      this.dirDirty = true;
      this.evictions++;
      removed.push({ from: s.minTime, to: s.maxTime, reason });
    };
    for (const s of this.segments.filter((s) => removable(s) && s.maxTime < cutoff)) take(s, 'age');
    for (let s = this.segments.find(removable); s && this.bytes > this.o.maxBytes; s = this.segments.find(removable)) take(s, 'size');
    return removed;
  }

  stats(): EventLogStats {
    return { events: this.ids.size, bytes: this.bytes, segments: this.segments.length, evictions: this.evictions, damaged: this.damagedLines, problems: [...this.problems] };
  }

  async close(): Promise<void> {
    if (!this.active) return;
    await this.sync();
    closeSync(this.active.fd);
    this.active = undefined;
  }

  private get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  /** The segment to append `len` bytes to: the one being written, or a fresh one when that is full or old. */
  private writable(len: number, now: number): { seg: EventSegment; fd: number } {
    const a = this.active;
    if (a && a.seg.bytes + len <= this.segmentBytes && now - a.openedAt < (this.o.segmentSec ?? 3600)) return a;
    if (a) {
      // Sealed from here on, synced now (rare: every segmentBytes or segmentSec of events), so add() stays synchronous.
      fsyncSync(a.fd);
      closeSync(a.fd);
    }
    const seq = this.nextSeq++;
    const file = join(this.dir, `events-${String(seq).padStart(6, '0')}.jsonl`);
    const fd = openSync(file, 'ax');
    const seg: EventSegment = { seq, file, bytes: 0, minTime: Infinity, maxTime: -Infinity, count: 0, damaged: [] };
    this.segments.push(seg);
    this.dirDirty = true;
    this.active = { seg, fd, openedAt: now };
    return this.active;
  }

  private noteDamage(found: string[]): void {
    this.damagedLines += found.length;
    for (const p of found) if (this.problems.length < MAX_PROBLEMS) this.problems.push(p);
  }
}

/**
 * A segment's lines as events. `damaged` names each line that is not one (file and line number,
 * what was wrong); `cut` is the byte offset of a last line without its newline (a crash mid-write),
 * whose problem is the last of `damaged`.
 */
function parseSegment(name: string, text: Buffer): { events: ClusterEvent[]; damaged: string[]; cut?: number } {
  const events: ClusterEvent[] = [];
  const damaged: string[] = [];
  const file = name.replace(/^.*\//, '');
  let start = 0, line = 0, cut: number | undefined;
  while (start < text.length) {
    line++;
    const nl = text.indexOf(0x0a, start);
    const end = nl < 0 ? text.length : nl;
    const raw = text.subarray(start, end).toString('utf8');
    const where = `${file} line ${line}`;
    if (nl < 0) {
      cut = start;
      damaged.push(`${where}: cut short (the writer stopped mid-line)`);
    } else if (raw.trim() !== '') {
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch (e) {
        damaged.push(`${where}: not JSON (${(e as Error).message})`);
        v = undefined;
      }
      if (v !== undefined) {
        const why = notAnEvent(v);
        if (why) damaged.push(`${where}: ${why}`);
        else events.push(v as ClusterEvent);
      }
    }
    start = end + 1;
  }
  return cut === undefined ? { events, damaged } : { events, damaged, cut };
}

function notAnEvent(v: unknown): string | undefined {
  const e = v as Partial<ClusterEvent> | null;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) return 'not an event (not a JSON object)';
  if (typeof e.id !== 'string' || e.id === '') return 'not an event (no id)';
  if (typeof e.time !== 'number' || !Number.isFinite(e.time)) return 'not an event (no time)';
  if (typeof e.kind !== 'string' || typeof e.namespace !== 'string') return 'not an event (no kind or namespace)';
  return undefined;
}

function ftruncate(file: string, size: number): void {
  const fd = openSync(file, 'r+');
  try {
    if (fstatSync(fd).size > size) ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}
