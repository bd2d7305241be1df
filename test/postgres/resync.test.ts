import { describe, expect, it } from 'vitest';
import { findMessageStart, SCAN_WINDOW } from '../../src/protocols/postgres/messages.js';
import { Resync } from '../../src/protocols/postgres/resync.js';

/**
 * Resync must find the start the rescan it replaced found (findMessageStart on the last 64 KiB
 * held plus each new segment), segment for segment: the loss harness's table depends on it.
 */
function rescan(segments: Buffer[], frontend: boolean): { at: number; segment: number } {
  let held: Buffer | undefined;
  let base = 0;
  let off = 0;
  for (let i = 0; i < segments.length; i++) {
    const buf = held ? Buffer.concat([held, segments[i]!]) : segments[i]!;
    if (!held) base = off;
    off += segments[i]!.length;
    const p = findMessageStart(buf, frontend);
    if (p >= 0) return { at: base + p, segment: i };
    const keep = buf.subarray(Math.max(0, buf.length - SCAN_WINDOW));
    base += buf.length - keep.length;
    held = Buffer.from(keep);
  }
  return { at: -1, segment: segments.length };
}

function incremental(segments: Buffer[], frontend: boolean): { at: number; segment: number; rest?: Buffer } {
  const r = new Resync(0, { time: 0, frame: 0 }, -1, frontend);
  for (let i = 0; i < segments.length; i++) {
    const p = r.push(segments[i]!);
    if (p >= 0) return { at: p, segment: i, rest: r.bytesFrom(p) };
  }
  return { at: -1, segment: segments.length };
}

/** A small deterministic PRNG (xorshift32), so a failure names its seed. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const TYPES = { fe: 'BCdcDEFHPpQSX', be: 'RK23CdcGHWDIEVvnNAt1sZT' };
const FIXED: Record<string, number> = { S: 0, H: 0, X: 0, c: 0, '1': 0, '2': 0, '3': 0, n: 0, s: 0, I: 0, Z: 1, K: 8 };

function message(rand: () => number, frontend: boolean): Buffer {
  const types = frontend ? TYPES.fe : TYPES.be;
  const t = types[Math.floor(rand() * types.length)]!;
  const fixed = FIXED[t];
  const n = fixed ?? Math.floor(rand() < 0.9 ? rand() * 40 : rand() * 3000);
  const b = Buffer.alloc(5 + n, rand() < 0.5 ? 0 : t.charCodeAt(0));
  b[0] = t.charCodeAt(0);
  b.writeInt32BE(n + 4, 1);
  if (t === 'Z' && !frontend) b[5] = 'ITE!'.charCodeAt(Math.floor(rand() * 4));
  return b;
}

/** Messages, garbage, lying lengths and long stretches that never tile, cut at random points. */
function stream(seed: number, frontend: boolean): Buffer[] {
  const rand = rng(seed);
  const parts: Buffer[] = [];
  const pieces = 1 + Math.floor(rand() * 40);
  for (let i = 0; i < pieces; i++) {
    const k = rand();
    if (k < 0.5) parts.push(message(rand, frontend));
    else if (k < 0.65) parts.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 30) }, () => Math.floor(rand() * 256))));
    else if (k < 0.75) parts.push(message(rand, frontend).subarray(0, 1 + Math.floor(rand() * 6)));
    else if (k < 0.85) {
      const m = message(rand, frontend);
      m.writeInt32BE(Math.floor(rand() * 200_000), 1);
      parts.push(m);
    } else if (k < 0.9) parts.push(Buffer.alloc(Math.floor(rand() * 150_000), frontend ? 'd' : 'D'));
    else parts.push(Buffer.from(Array.from({ length: 6 }, (_, j) => (j % 3 === 0 ? 0x44 : 0))));
  }
  const all = Buffer.concat(parts);
  const segments: Buffer[] = [];
  const big = rand() < 0.2;
  for (let p = 0; p < all.length;) {
    const n = Math.max(1, Math.floor(rand() * (big ? 100_000 : rand() < 0.5 || all.length > 30_000 ? 1460 : 40)));
    segments.push(all.subarray(p, p + n));
    p += n;
  }
  return segments;
}

describe('Resync finds the start findMessageStart on the held bytes found, without rescanning them', () => {
  it('agrees on random streams of messages, garbage and lying lengths, in random segments', () => {
    const stats = { none: 0, first: 0, later: 0 };
    for (let seed = 1; seed <= 600; seed++) {
      for (const frontend of [true, false]) {
        const segments = stream(seed, frontend);
        const want = rescan(segments, frontend);
        const got = incremental(segments, frontend);
        stats[got.at < 0 ? 'none' : got.segment > 0 ? 'later' : 'first']++;
        expect({ seed, frontend, at: got.at, segment: got.segment }).toEqual({ seed, frontend, ...want });
        if (got.rest) expect(got.rest.equals(Buffer.concat(segments.slice(0, got.segment + 1)).subarray(got.at))).toBe(true);
      }
    }
    // Each way it can end is exercised: no start, one in the first segment, one in bytes held from before.
    expect(Math.min(stats.none, stats.first, stats.later)).toBeGreaterThan(100);
  });

  it('reads 4 MiB that never tiles in time linear in it', () => {
    const r = new Resync(0, { time: 0, frame: 0 }, -1, true);
    const seg = Buffer.alloc(1460, 'd');
    const t0 = performance.now();
    for (let i = 0; i < 2900; i++) expect(r.push(seg)).toBe(-1);
    // The rescan took about 9 s for this; a linear read takes tens of ms (the bound leaves room for a loaded machine).
    expect(performance.now() - t0).toBeLessThan(1500);
  });
});
