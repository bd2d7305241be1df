/**
 * store/: flows and packets on disk: records in msgpack (codec.ts), append-only segments with a block index and bloom filters,
 * recent flows in memory, retention by size and age, snapshots (a window and a filter, kept with
 * their packets and pcap export), the run log, crash recovery that names what a torn tail lost,
 * damage met on read named as a loss too, and one writer per directory (lock.ts; readers open
 * read-only). FlowStore, below, is its public face.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { basename } from 'node:path';
import { encodeMark, type PlaintextMark } from '../capture/index.js';
import type { ClusterEvent, EventQuery } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import { encodeRecord } from './codec.js';
import { EventLog, type EventLogStats, type EventRead } from './events.js';
import { StoreLock } from './lock.js';
import { Losses } from './losses.js';
import { RecentFlows } from './memory.js';
import { exportPackets, packetBody } from './packets.js';
import { damageKey, findOnDisk, queryFlows, type DamageSink, type StorePage, type StoreQuery } from './query.js';
import { pinnedBytes, planRetention, type Kind, type Removal } from './retention.js';
import { SegmentLog, type Damage, type Torn } from './segments.js';
import { Snapshots } from './snapshots.js';

export type { Snapshot, SnapshotRequest } from './snapshots.js';
export type { StorePage, StoreQuery } from './query.js';
export type { Damage } from './segments.js';
export type { EventLogStats, EventRead } from './events.js';
export { CursorError } from './keys.js';
export { pcapngPacketBlock, pcapRecord } from './pcap-writer.js';
export { StoreLockedError, type LockHolder } from './lock.js';

export interface StoreOptions {
  /** Created if missing. */
  dir: string;
  /** Retention by size: flow and packet segments on disk together. */
  maxBytes: number;
  /** Retention by age, on the newest time a segment holds (flow start, packet capture time). */
  maxAgeSec: number;
  /** In-memory index bound: the most recent flows by arrival (default 100 000)… */
  memoryFlows?: number;
  /** …and their encoded bytes (default unbounded; the agent sets one, see RecentFlows). */
  memoryBytes?: number;
  /** Roll a segment at this size (default 16 MiB, at most maxBytes / 16 so retention frees in small steps)… */
  segmentBytes?: number;
  /** …or after this long (default 60 s). */
  segmentSec?: number;
  /** Fraction of maxBytes the raw packets may use (default 0.5); flows use the rest. */
  packetShare?: number;
  /**
   * The clock snapshots open and close on, epoch seconds (default the wall clock). A live source
   * passes its capture clock, so a snapshot's window and the records it selects share one clock.
   */
  now?: () => number;
  /**
   * Open to read only: no writer lock is taken and nothing is written (no crash repair, no
   * retention, no sidecars, no losses file), so it works beside a live writer or on a store that
   * is not this process's to change. add, addPacket and snapshot changes throw.
   */
  readOnly?: boolean;
  /**
   * Retention by size of the cluster events (events.ts), beside maxBytes: default maxBytes / 64, at
   * most 16 MiB (tens of thousands of events). Their age limit is maxAgeSec, and snapshots pin them.
   */
  eventBytes?: number;
}

export interface StoreStats {
  flows: number;
  flowsInMemory: number;
  /** Their encoded bytes (the memoryBytes bound). */
  flowsInMemoryBytes: number;
  bytesOnDisk: number;
  segments: number;
  /** Segments (flows and packets) deleted by retention since open. */
  evictions: number;
  /** Bytes of segments overlapping a snapshot's window. */
  pinnedBytes: number;
  /** Earliest and latest flow start held. */
  oldest?: number;
  newest?: number;
  /** Set when pinned (or still written) segments alone keep the disk above maxBytes. */
  overBudget?: string;
  /**
   * Frames of sealed segments found damaged when read since open (checksum, length, a file cut
   * short, a record that does not decode), flows and packets together; each is also a named loss.
   */
  corruptFrames: number;
}

export interface Recovery {
  segments: number;
  flows: number;
  packets: number;
  torn: Torn[];
  /** Set when the writer lock was left by a process that is gone (a crash): whose, and why it was taken over. */
  staleLock?: string;
}

const FLOWS = 1, PACKETS = 2;
const MiB = 1 << 20;

const REASONS: Record<Kind, Record<Removal['reason'], string>> = {
  flows: { size: 'deleted by retention (the store was over maxBytes)', age: 'deleted by retention (older than maxAgeSec)' },
  packets: { size: 'deleted by retention (the packet ring was over its share of maxBytes)', age: 'deleted by retention (older than maxAgeSec)' },
};

/**
 * Flows and raw packets of a running agent: the most recent flows in memory, all of them in
 * checksummed segment files that survive a restart or crash, retained by size and age except where
 * a snapshot pins them. Writes are synchronous into the page cache; `sync()` makes them durable.
 */
export class FlowStore {
  private evictions = 0;
  private overBudget?: string;
  private closed = false;
  private corruptFrames = 0;
  /** Damage already recorded (damageKey): a block read again is not counted again. */
  private readonly damage = new Set<string>();

  private constructor(
    private readonly opts: StoreOptions,
    private readonly flows: SegmentLog,
    private readonly packets: SegmentLog,
    private readonly memory: RecentFlows,
    private readonly losses: Losses,
    readonly snapshots: Snapshots,
    readonly recovery: Recovery,
    private readonly eventLog: EventLog,
    private readonly lock?: StoreLock,
  ) {}

  /** Opened with readOnly: nothing is written, no lock is held. */
  get readOnly(): boolean {
    return this.opts.readOnly === true;
  }

  static async open(opts: StoreOptions): Promise<FlowStore> {
    for (const k of ['maxBytes', 'maxAgeSec'] as const) {
      if (!(opts[k] > 0)) throw new RangeError(`${k} must be positive, not ${opts[k]}`);
    }
    const share = opts.packetShare ?? 0.5;
    if (!(share >= 0 && share <= 1)) throw new RangeError(`packetShare must be within 0 and 1, not ${share}`);
    const readOnly = opts.readOnly === true;
    if (readOnly && !existsSync(opts.dir)) throw new Error(`${opts.dir}: no flow store there (the directory does not exist)`);
    if (!readOnly) {
      try {
        mkdirSync(opts.dir, { recursive: true });
      } catch (e) {
        throw new Error(`data dir ${opts.dir} cannot be created: ${(e as Error).message}`);
      }
    }
    // Before anything on disk is touched: opening also repairs what a crash left, which is a write.
    const lock = readOnly ? undefined : StoreLock.acquire(opts.dir);
    try {
      return await FlowStore.openLocked(opts, lock);
    } catch (e) {
      lock?.release();
      throw e;
    }
  }

  private static async openLocked(opts: StoreOptions, lock: StoreLock | undefined): Promise<FlowStore> {
    const readOnly = lock === undefined;
    const segmentBytes = opts.segmentBytes ?? Math.min(16 * MiB, Math.max(64 * 1024, Math.floor(opts.maxBytes / 16)));
    // Blocks are what a query reads: small enough to skip most of a segment, few enough to index.
    const logOpts = { segmentBytes, segmentSec: opts.segmentSec ?? 60, blockBytes: Math.min(256 * 1024, Math.max(4096, Math.floor(segmentBytes / 4))) };
    const flows = await SegmentLog.open(opts.dir, 'flows', FLOWS, logOpts, readOnly);
    const packets = await SegmentLog.open(opts.dir, 'packets', PACKETS, logOpts, readOnly);
    const losses = Losses.load(opts.dir, readOnly);
    const now = Date.now() / 1000;
    // Beside a live writer, a segment's cut tail is frames being written, not a crash's loss.
    const writing = readOnly && StoreLock.holder(opts.dir) !== undefined;
    for (const [kind, log] of [['flows', flows], ['packets', packets]] as const) {
      for (const t of writing ? [] : log.torn) {
        // What the cut tail held is unknown; it came after the segment's last whole frame.
        const seg = log.segments.find((s) => basename(s.file) === t.file);
        losses.add({ kind, from: seg?.blocks.maxTime ?? now, to: now, reason: `cut short by a crash (${t.file} at byte ${t.offset}: ${t.reason})` });
      }
    }
    const memory = new RecentFlows(opts.memoryFlows ?? 100_000, opts.memoryBytes);
    memory.low = flows.next;
    const recovery: Recovery = { segments: flows.segments.length + packets.segments.length, flows: flows.count, packets: packets.count, torn: [...flows.torn, ...packets.torn] };
    if (lock?.tookOver) recovery.staleLock = lock.tookOver;
    const snapshots = Snapshots.load(opts.dir, opts.now ?? (() => Date.now() / 1000), readOnly);
    const eventLog = EventLog.open(opts.dir, { maxBytes: opts.eventBytes ?? Math.min(16 * MiB, Math.max(64 * 1024, Math.floor(opts.maxBytes / 64))), maxAgeSec: opts.maxAgeSec, readOnly });
    const store = new FlowStore(opts, flows, packets, memory, losses, snapshots, recovery, eventLog, lock);
    if (!readOnly) store.retain();
    return store;
  }

  /** Queryable at once (from memory, which keeps `r` itself: do not change it after); durable after the next sync(). */
  add(r: FlowRecord): void {
    this.assertWritable();
    // The start orders everything (queries, blocks, retention): a flow without one cannot be placed.
    if (!Number.isFinite(r.start)) throw new RangeError(`flow ${r.id}: start ${r.start} is not a time`);
    const encoded = encodeRecord(r);
    this.memory.add(r, this.flows.append(r.start, 0, r.id, [encoded]), encoded.length);
    if (this.memory.overBound) {
      // Only flows already in their file may leave memory: the disk answers for them from then on.
      this.flows.flush();
      this.memory.evict(this.flows.written);
    }
  }

  /**
   * A raw packet for pcap export; `data` is copied. With `mark`, it is decrypted TLS plaintext
   * synthesized as TCP (pipeline/plaintext-packets.ts): the mark is the frame's key, so it is kept,
   * retained and pinned with the wire's packets, and exported on its own pcapng interface.
   */
  addPacket(time: number, linkType: number, data: Buffer, wireLen: number, mark?: PlaintextMark): void {
    this.assertWritable();
    if (!Number.isFinite(time)) throw new RangeError(`packet time ${time} is not a time`);
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) throw new RangeError(`link type ${linkType} out of range`);
    this.packets.append(time, linkType, mark ? encodeMark(mark) : '', packetBody(data, wireLen));
  }

  /**
   * A cluster event (issue 16) on the flows' timeline, written at once (durable after the next
   * sync). False when one with its id is kept already (the first is kept) or it is older than
   * maxAgeSec.
   */
  addEvent(e: ClusterEvent): boolean {
    this.assertWritable();
    return this.eventLog.add(e);
  }

  /** Cluster events of a window, narrowed by namespace and pod, oldest first; `lost` names damaged lines. */
  events(q: EventQuery): EventRead {
    return this.eventLog.query(q);
  }

  eventStats(): EventLogStats {
    return this.eventLog.stats();
  }

  /** Makes everything added so far durable, then applies retention. */
  async sync(): Promise<void> {
    if (this.readOnly) return;
    await Promise.all([this.flows.sync(), this.packets.sync(), this.eventLog.sync()]);
    if (!this.closed) this.retain();
  }

  async get(id: string): Promise<FlowRecord | undefined> {
    return this.memory.get(id) ?? findOnDisk(id, this.memory, this.flows, this.sinkOf('flows'));
  }

  /** One page of flows by (start, id), memory and disk together; `since`/`until` bound the start. */
  query(q: StoreQuery): Promise<StorePage> {
    return queryFlows(q, this.memory, this.flows, this.sinkOf('flows'));
  }

  /**
   * Packets of [since, until] as pcap (pcapng for mixed link types, or when decrypted TLS plaintext
   * is among them: `plaintext` counts those, absent when none); `lost` says why any are missing.
   */
  async exportPcap(since: number, until: number, out: NodeJS.WritableStream, linkType?: number): Promise<{ packets: number; plaintext?: number; lost: string | null }> {
    const r = await exportPackets(this.packets, since, until, out, linkType, (d) => this.damaged(d, 'packets'));
    // After the export: damage it found on the way is among the losses it states.
    const lost = this.lost(since, until).packets;
    const during = r.vanished ? 'some were deleted by retention while the export ran' : null;
    return { packets: r.packets, ...(r.plaintext ? { plaintext: r.plaintext } : {}), lost: [lost, during].filter(Boolean).join('; ') || null };
  }

  /**
   * Packets a live capture dropped in [from, to] (its kernel ring was full): stated by every later
   * export and snapshot of that window, since no packet of them was ever stored. Flows of the window
   * may be missing or incomplete for the same reason, and say so too.
   */
  captureLost(from: number, to: number, packets: number, reason: string): void {
    if (this.readOnly || packets <= 0) return;
    this.losses.addCapture('packets', from, to, packets, reason);
    this.losses.addCapture('flows', from, to, packets, `${reason} — flows of these packets are missing or incomplete`);
    // Kept in memory at once (lost() reads it), written at most every 10 s: an overload, when this
    // is called every second, is when a synchronous fsync hurts most. close() writes the rest.
    if (to - this.lossesSavedAt >= 10) {
      this.losses.save();
      this.lossesSavedAt = to;
    }
  }

  private lossesSavedAt = -Infinity;

  /** What the capture dropped in [since, until], in words, or null. */
  captureLoss(since: number, until: number): string | null {
    return this.losses.describeCapture(since, until);
  }

  /** Why flows or packets of [since, until] are missing (retention, a crash, before the first kept), or null. */
  lost(since: number, until: number): { flows: string | null; packets: string | null } {
    return {
      flows: this.losses.describe('flows', since, until, this.flows.minTime),
      packets: this.losses.describe('packets', since, until, this.packets.minTime),
    };
  }

  stats(): StoreStats {
    const segs = this.flows.segments;
    const s: StoreStats = {
      flows: this.flows.count,
      flowsInMemory: this.memory.size,
      flowsInMemoryBytes: this.memory.bytes,
      bytesOnDisk: this.flows.bytes + this.packets.bytes,
      segments: segs.length + this.packets.segments.length,
      evictions: this.evictions,
      pinnedBytes: pinnedBytes([...segs, ...this.packets.segments], this.snapshots.pins()),
      corruptFrames: this.corruptFrames,
    };
    if (segs.length) {
      s.oldest = this.flows.minTime;
      s.newest = this.flows.maxTime;
    }
    if (this.overBudget) s.overBudget = this.overBudget;
    return s;
  }

  /** Syncs and seals the open segments, so the next open reads sidecars only. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.readOnly) return;
    try {
      await Promise.all([this.flows.close(), this.packets.close(), this.eventLog.close()]);
      this.losses.save();
    } finally {
      this.lock?.release();
    }
  }

  /**
   * Records damage a read found in a sealed segment: counted once, kept as a loss of its block's
   * time range (so lost() and an export name it), and written to losses.json by a writer.
   */
  private damaged(d: Damage, kind: Kind): void {
    const key = `${kind}:${damageKey(d)}`;
    if (this.damage.has(key)) return;
    this.damage.add(key);
    this.corruptFrames += d.lost;
    const loss = { kind, from: d.minTime, to: d.maxTime, reason: this.describe(d, kind) };
    if (this.losses.has(loss)) return;
    this.losses.add(loss);
    this.losses.save();
  }

  /** How damage is named wherever it is said: the segment file, the byte, what was wrong, what it cost. */
  private describe(d: Damage, kind: Kind): string {
    // No "; " inside: lost() and an export join their parts with it.
    return `damaged on disk: ${d.lost} of the ${d.of} ${kind} of the block at byte ${d.block} of ${d.file} unreadable (at byte ${d.offset}: ${d.reason})`;
  }

  private sinkOf(kind: Kind): DamageSink {
    return { damaged: (d) => this.damaged(d, kind), describe: (d) => this.describe(d, kind) };
  }

  private retain(): void {
    const share = this.opts.packetShare ?? 0.5;
    const plan = planRetention({
      flows: this.flows.segments,
      packets: this.packets.segments,
      maxBytes: this.opts.maxBytes,
      packetBytes: this.opts.maxBytes * share,
      cutoff: Date.now() / 1000 - this.opts.maxAgeSec,
      pins: this.snapshots.pins(),
    });
    for (const { kind, seg, reason } of plan.remove) {
      (kind === 'flows' ? this.flows : this.packets).remove(seg);
      this.evictions++;
      this.losses.add({ kind, from: seg.blocks.minTime, to: seg.blocks.maxTime, reason: REASONS[kind][reason], seq: seg.seq });
      if (kind === 'flows') this.memory.forget(seg.first, seg.first + seg.blocks.count);
    }
    this.overBudget = plan.overBudget;
    this.eventLog.retain(Date.now() / 1000 - this.opts.maxAgeSec, this.snapshots.pins());
    this.losses.save();
  }

  private assertWritable(): void {
    if (this.closed) throw new Error('the flow store is closed');
    if (this.readOnly) throw new Error(`${this.opts.dir}: the flow store is open read-only`);
  }
}
export { compareKeys, decodeCursor, encodeCursor, type FlowKey } from './keys.js';
export { readJson } from './persist.js';
export { DEFAULT_MAX_RUNS, RunLog } from './runs.js';
