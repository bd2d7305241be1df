import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from './persist.js';
import type { Pin } from './retention.js';

export interface Snapshot {
  id: string;
  name?: string;
  /** Epoch seconds: the window of flows and packets the snapshot covers and pins. */
  since: number;
  /** Absent while open. */
  until?: number;
  /** Flow filter as the API was given it; the API compiles it, the store only keeps it. */
  filter?: string;
  createdAt: number;
  open: boolean;
  /**
   * Packets the live capture dropped in the window (its kernel ring was full), in words; absent
   * when none. Added by the service when answering, never kept in snapshots.json.
   */
  captureLoss?: string;
}

export interface SnapshotRequest { name?: string; since?: number; until?: number; filter?: string }

/**
 * Snapshots and the pins they hold, in `snapshots.json`. Every change is written (atomically)
 * before the call returns: a snapshot, and so its pin, survives a crash right after it was made.
 */
export class Snapshots {
  private byId = new Map<string, Snapshot>();

  private constructor(private readonly file: string, private readonly now: () => number, private readonly readOnly: boolean) {
    const v = readJson(file);
    for (const s of Array.isArray(v) ? (v as Snapshot[]) : []) this.byId.set(s.id, s);
  }

  /** With `readOnly`, snapshots can be read but not created, stopped or removed. */
  static load(dir: string, now: () => number, readOnly = false): Snapshots {
    return new Snapshots(join(dir, 'snapshots.json'), now, readOnly);
  }

  /** Pins [since ?? now, until]; without until it stays open (pinning everything after since) until stopped. */
  create(s: SnapshotRequest): { id: string } {
    this.assertWritable();
    const now = this.now();
    const since = s.since ?? now;
    for (const [k, v] of [['since', since], ['until', s.until]] as const) {
      if (v !== undefined && !Number.isFinite(v)) throw new RangeError(`${k} ${v} is not a time in epoch seconds`);
    }
    if (s.until !== undefined && s.until < since) throw new RangeError(`until ${s.until} is before since ${since}`);
    const snap: Snapshot = { id: `snap-${randomBytes(6).toString('hex')}`, since, createdAt: now, open: s.until === undefined };
    if (s.name !== undefined) snap.name = s.name;
    if (s.until !== undefined) snap.until = s.until;
    if (s.filter !== undefined) snap.filter = s.filter;
    this.byId.set(snap.id, snap);
    this.save();
    return { id: snap.id };
  }

  /** Closes an open snapshot at now (a closed one is returned as it is). */
  stop(id: string): Snapshot | undefined {
    const s = this.byId.get(id);
    if (!s?.open) return s && { ...s };
    this.assertWritable();
    s.until = Math.max(this.now(), s.since);
    s.open = false;
    this.save();
    return { ...s };
  }

  /** Deletes a snapshot and releases its pin (retention may then take its data). */
  remove(id: string): boolean {
    this.assertWritable();
    const had = this.byId.delete(id);
    if (had) this.save();
    return had;
  }

  list(): Snapshot[] {
    return [...this.byId.values()].sort((a, b) => a.createdAt - b.createdAt).map((s) => ({ ...s }));
  }

  get(id: string): Snapshot | undefined {
    const s = this.byId.get(id);
    return s && { ...s };
  }

  pins(): Pin[] {
    return [...this.byId.values()].map((s) => ({ since: s.since, until: s.until ?? Infinity }));
  }

  private assertWritable(): void {
    if (this.readOnly) throw new Error(`${this.file}: the flow store is open read-only: snapshots cannot be changed`);
  }

  private save(): void {
    writeJsonAtomic(this.file, [...this.byId.values()]);
  }
}
