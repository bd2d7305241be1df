import { overlaps } from './blocks.js';
import type { Segment } from './segments.js';

/** A snapshot's window; an open snapshot's `until` is Infinity (it pins everything from since on). */
export interface Pin { since: number; until: number }

export type Kind = 'flows' | 'packets';

export interface RetentionInput {
  flows: Segment[];
  packets: Segment[];
  maxBytes: number;
  /** The packets' share of maxBytes: the ring never grows past it at the flows' expense. */
  packetBytes: number;
  /** Segments whose newest frame is older than this (epoch seconds) have expired. */
  cutoff: number;
  pins: Pin[];
}

export interface Removal { kind: Kind; seg: Segment; reason: 'age' | 'size' }

export interface RetentionPlan {
  remove: Removal[];
  pinnedBytes: number;
  /** Set when what retention may not delete (pinned, or still being written) exceeds maxBytes. */
  overBudget?: string;
}

/**
 * Which segments to delete, oldest first: expired ones, then packets down to their share, then
 * flows (and, when flows cannot shrink further, packets) until both fit in maxBytes. A segment
 * overlapping a snapshot's window is never deleted, nor is one still being written; when those
 * alone exceed the budget the plan says so instead of deleting pinned data.
 */
export function planRetention(i: RetentionInput): RetentionPlan {
  const pinned = pinnedSegments([...i.flows, ...i.packets], i.pins);
  const removable = (s: Segment) => s.sealed && !pinned.has(s);
  const keep = { flows: [...i.flows], packets: [...i.packets] };
  const bytes = { flows: sum(i.flows), packets: sum(i.packets) };
  const remove: Removal[] = [];
  const take = (kind: Kind, seg: Segment, reason: Removal['reason']) => {
    remove.push({ kind, seg, reason });
    keep[kind].splice(keep[kind].indexOf(seg), 1);
    bytes[kind] -= seg.bytes;
  };
  const oldest = (kind: Kind) => keep[kind].find(removable);

  for (const kind of ['flows', 'packets'] as const) {
    for (const s of keep[kind].filter((s) => removable(s) && s.blocks.maxTime < i.cutoff)) take(kind, s, 'age');
  }
  for (let s = oldest('packets'); s && bytes.packets > i.packetBytes; s = oldest('packets')) take('packets', s, 'size');
  while (bytes.flows + bytes.packets > i.maxBytes) {
    const kind: Kind = oldest('flows') ? 'flows' : 'packets';
    const s = oldest(kind);
    if (!s) break;
    take(kind, s, 'size');
  }

  const pinnedBytes = sum([...pinned]);
  const total = bytes.flows + bytes.packets;
  if (total <= i.maxBytes) return { remove, pinnedBytes };
  const writing = sum([...keep.flows, ...keep.packets].filter((s) => !s.sealed));
  return {
    remove,
    pinnedBytes,
    overBudget: `${total} bytes on disk exceed maxBytes ${i.maxBytes}: ${pinnedBytes} are pinned by snapshots and ${writing} are segments still being written, which retention does not delete`,
  };
}

function pinnedSegments(segs: Segment[], pins: Pin[]): Set<Segment> {
  return new Set(segs.filter((s) => pins.some((p) => overlaps(s.blocks.minTime, s.blocks.maxTime, p.since, p.until))));
}

/** Bytes of the segments that overlap a pin. */
export function pinnedBytes(segs: Segment[], pins: Pin[]): number {
  return sum([...pinnedSegments(segs, pins)]);
}

function sum(segs: Segment[]): number {
  return segs.reduce((n, s) => n + s.bytes, 0);
}
