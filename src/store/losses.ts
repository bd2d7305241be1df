import { join } from 'node:path';
import { readJson, writeJsonAtomic } from './persist.js';
import type { Kind } from './retention.js';

/** A time range whose data the store once held (or was given) and no longer has. */
export interface Loss {
  kind: Kind;
  from: number;
  to: number;
  reason: string;
  /** Seq of the last segment merged in: the next one of the same reason extends this entry. */
  seq?: number;
  /** Packets the capture itself dropped in [from, to] (reason says where): never stored at all. */
  captured?: number;
}

/** Capture drops this close after the last (seconds) extend its entry rather than start another. */
const CAPTURE_JOIN_SEC = 5;

/** Entries beyond this are merged pairwise (oldest first): the file stays small however long the store runs. */
const MAX_ENTRIES = 1000;

/**
 * What retention, crashes and damage found on disk took, kept in `losses.json` so an export made later (after a restart
 * too) can still say why part of its window is missing. Retention deletes oldest segments first,
 * so consecutive deletions for one reason merge into one range.
 */
export class Losses {
  private entries: Loss[];
  private dirty = false;

  private constructor(private readonly file: string, private readonly readOnly: boolean) {
    const v = readJson(file);
    this.entries = Array.isArray(v) ? (v as Loss[]) : [];
  }

  /** With `readOnly`, losses found are kept in memory only (a reader writes nothing). */
  static load(dir: string, readOnly = false): Losses {
    return new Losses(join(dir, 'losses.json'), readOnly);
  }

  /** Whether this very loss is recorded already (damage found again after a restart is one loss). */
  has(l: Pick<Loss, 'kind' | 'reason'>): boolean {
    return this.entries.some((e) => e.kind === l.kind && e.reason === l.reason);
  }

  /**
   * Packets the capture dropped between two looks at its counters: consecutive drops for one
   * reason join into one entry with their count, so a long overload is one line, not thousands.
   */
  addCapture(kind: Kind, from: number, to: number, packets: number, reason: string): void {
    const prev = this.entries.findLast((e) => e.kind === kind && e.captured !== undefined);
    if (prev && prev.reason === reason && from - prev.to <= CAPTURE_JOIN_SEC) {
      prev.to = Math.max(prev.to, to);
      prev.captured! += packets;
      this.dirty = true;
      return;
    }
    this.add({ kind, from, to, reason, captured: packets });
  }

  add(l: Loss): void {
    const prev = this.entries.findLast((e) => e.kind === l.kind);
    if (prev && prev.reason === l.reason && l.seq !== undefined && prev.seq === l.seq - 1) {
      prev.from = Math.min(prev.from, l.from);
      prev.to = Math.max(prev.to, l.to);
      prev.seq = l.seq;
    } else {
      this.entries.push({ ...l });
    }
    if (this.entries.length > MAX_ENTRIES) {
      // The two oldest of one kind: a merged entry keeps both reasons and both counts.
      const a = this.entries[0]!;
      const j = this.entries.findIndex((e, i) => i > 0 && e.kind === a.kind);
      const b = this.entries[j > 0 ? j : 1]!;
      const captured = a.captured !== undefined || b.captured !== undefined ? (a.captured ?? 0) + (b.captured ?? 0) : undefined;
      const merged: Loss = { kind: a.kind, from: Math.min(a.from, b.from), to: Math.max(a.to, b.to), reason: a.reason === b.reason ? a.reason : `${a.reason} — ${b.reason}` };
      if (captured !== undefined) merged.captured = captured;
      this.entries.splice(j > 0 ? j : 1, 1);
      this.entries[0] = merged;
    }
    this.dirty = true;
  }

  save(): void {
    if (!this.dirty || this.readOnly) return;
    writeJsonAtomic(this.file, this.entries);
    this.dirty = false;
  }

  /** What the capture dropped in [since, until] (addCapture), or null. */
  describeCapture(since: number, until: number): string | null {
    const hit = this.entries.filter((e) => e.kind === 'packets' && e.captured !== undefined && e.to >= since && e.from <= until);
    return hit.length ? hit.map((e) => `from ${iso(e.from)} to ${iso(e.to)} the capture dropped ${e.captured} packet${e.captured === 1 ? '' : 's'} (${e.reason})`).join('; ') : null;
  }

  /**
   * Why data of `kind` in [since, until] is missing, or null when nothing is known to be. `oldest`
   * is the earliest time the store still holds (undefined: it holds none): a window reaching before
   * it, with no recorded loss there, is stated as before the first one kept.
   */
  describe(kind: Kind, since: number, until: number, oldest: number | undefined): string | null {
    const hit = this.entries.filter((e) => e.kind === kind && e.to >= since && e.from <= until);
    const parts = hit.map((e) => `${kind} from ${iso(e.from)} to ${iso(e.to)}: ${e.captured !== undefined ? `the capture dropped ${e.captured} packet${e.captured === 1 ? '' : 's'} (${e.reason})` : e.reason}`);
    if (oldest === undefined) parts.push(`the store holds no ${kind}`);
    else if (since < oldest && !hit.some((e) => e.from <= since)) parts.push(`no ${kind} kept before ${iso(oldest)}, the first one kept`);
    return parts.length ? parts.join('; ') : null;
  }
}

function iso(t: number): string {
  return new Date(t * 1000).toISOString();
}
