import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { FlowStore, type StoreOptions } from '../../src/store/index.js';
import { byKey, pageAll, realFlows, shifted, tempDirs } from './helpers.js';

const ids = (fs: FlowRecord[]) => fs.map((f) => f.id);
const now = () => Date.now() / 1000;

let base: FlowRecord[];
let span: number;
beforeAll(async () => {
  base = await realFlows();
  const s = byKey(base);
  span = s[s.length - 1]!.start - s[0]!.start;
});

/** `copies` runs of the real flows, one after another in time, the last ending `endAgo` seconds ago. */
function runs(copies: number, endAgo: number): FlowRecord[][] {
  const first = Math.min(...base.map((r) => r.start));
  const out: FlowRecord[][] = [];
  for (let k = 0; k < copies; k++) {
    const dt = now() - endAgo - (copies - k) * (span + 10) - first;
    out.push(base.map((r) => shifted(r, dt, `run${k}-${endAgo}`)));
  }
  return out;
}

const window = (fs: FlowRecord[]) => ({ since: Math.min(...fs.map((r) => r.start)), until: Math.max(...fs.map((r) => r.start)) });

const newDir = tempDirs();

async function open(o: Partial<StoreOptions> = {}, dir?: string): Promise<FlowStore> {
  return FlowStore.open({ dir: dir ?? newDir(), maxBytes: 1 << 30, maxAgeSec: 1e9, segmentBytes: 16 * 1024, ...o });
}

async function addAll(store: FlowStore, fs: FlowRecord[]): Promise<void> {
  for (let i = 0; i < fs.length; i++) {
    store.add(fs[i]!);
    // The agent syncs every ~200 ms; retention runs at each sync.
    if (i % 200 === 199) await store.sync();
  }
  await store.sync();
}

describe('flow store retention', () => {
  it('deletes the oldest segments to stay within maxBytes, except those a snapshot pins', async () => {
    const r = runs(6, 60);
    // A run is about 2.2 MB of records; six of them do not fit in 8 MiB.
    const store = await open({ maxBytes: 8 << 20, packetShare: 0.25 });
    const pinned = window(r[1]!);
    const snap = store.snapshots.create({ name: 'second run', ...pinned });
    await addAll(store, r.flat());
    const st = store.stats();
    expect(st.evictions).toBeGreaterThan(10);
    expect(st.bytesOnDisk).toBeLessThanOrEqual(8 << 20);
    expect(st.pinnedBytes).toBeGreaterThan(0);
    expect(st.overBudget).toBeUndefined();
    // The pinned run is whole; the run before it is gone but for its last arrivals, which share a
    // segment with the pinned run's first (a pin holds whole segments); the newest run is whole.
    const all = (await pageAll(store, { limit: 1000 })).flows;
    const have = new Set(ids(all));
    expect(r[1]!.every((f) => have.has(f.id))).toBe(true);
    expect(r[5]!.every((f) => have.has(f.id))).toBe(true);
    expect(r[0]!.slice(0, -40).some((f) => have.has(f.id))).toBe(false);
    expect(ids((await pageAll(store, { ...pinned, limit: 100 })).flows)).toEqual(ids(byKey(r[1]!)));
    expect(store.lost(window(r[0]!).since, window(r[0]!).until).flows).toMatch(/deleted by retention \(the store was over maxBytes\)/);
    expect(store.lost(pinned.since, pinned.until).flows).toBeNull();
    expect(store.snapshots.get(snap.id)).toMatchObject({ name: 'second run', ...pinned, open: false });
    await store.close();
  });

  it('keeps pinned data over maxBytes and says so in stats, until the snapshot is removed', async () => {
    const r = runs(3, 60);
    const store = await open({ maxBytes: 256 * 1024 });
    const snap = store.snapshots.create({ since: 0 });
    await addAll(store, r.flat());
    let st = store.stats();
    expect(st.evictions).toBe(0);
    expect(st.flows).toBe(3 * base.length);
    expect(st.bytesOnDisk).toBeGreaterThan(256 * 1024);
    expect(st.pinnedBytes).toBeGreaterThan(256 * 1024);
    expect(st.overBudget).toMatch(/exceed maxBytes 262144: \d+ are pinned by snapshots/);
    // Stopping closes the window at now: everything before stays pinned.
    expect(store.snapshots.stop(snap.id)).toMatchObject({ open: false, since: 0 });
    await store.sync();
    expect(store.stats().evictions).toBe(0);
    expect(store.snapshots.remove(snap.id)).toBe(true);
    await store.sync();
    st = store.stats();
    expect(st.evictions).toBeGreaterThan(0);
    expect(st.overBudget).toBeUndefined();
    expect(st.bytesOnDisk).toBeLessThanOrEqual(256 * 1024);
    await store.close();
  });

  it('deletes segments older than maxAgeSec, except those an open snapshot pins', async () => {
    // Two runs two and three hours ago, one a minute ago; the open snapshot starts inside the oldest.
    const [old, older, recent] = [...runs(2, 7200), ...runs(1, 60)];
    const store = await open({ maxAgeSec: 3600 });
    const since = byKey(older!)[Math.floor(base.length / 2)]!.start;
    const snap = store.snapshots.create({ name: 'open', since });
    expect(store.snapshots.get(snap.id)).toMatchObject({ open: true, since });
    await addAll(store, [...old!, ...older!, ...recent!]);
    const have = new Set(ids((await pageAll(store, { limit: 1000 })).flows));
    expect(store.stats().evictions).toBeGreaterThan(0);
    expect(old!.slice(0, -40).some((f) => have.has(f.id))).toBe(false);
    expect(older!.filter((f) => f.start >= since).every((f) => have.has(f.id))).toBe(true);
    expect(recent!.every((f) => have.has(f.id))).toBe(true);
    expect(store.lost(window(old!).since, window(old!).until).flows).toMatch(/older than maxAgeSec/);
    await store.close();
  });

  it('keeps snapshots, open or stopped, and their pins across a restart', async () => {
    const dir = newDir();
    const store = await open({}, dir);
    const a = store.snapshots.create({ name: 'incident', since: 100, filter: 'protocol == "postgres"' });
    const b = store.snapshots.create({ since: 200 });
    const c = store.snapshots.create({ since: 300, until: 400 });
    const stopped = store.snapshots.stop(b.id)!;
    expect(stopped.open).toBe(false);
    expect(stopped.until).toBeGreaterThanOrEqual(now() - 5);
    expect(() => store.snapshots.create({ since: 500, until: 400 })).toThrow(RangeError);
    expect(store.snapshots.stop('snap-nope')).toBeUndefined();
    const list = store.snapshots.list();
    await store.close();

    const again = await open({ maxBytes: 64 * 1024 }, dir);
    expect(again.snapshots.list()).toEqual(list);
    expect(again.snapshots.get(a.id)).toMatchObject({ name: 'incident', since: 100, open: true, filter: 'protocol == "postgres"' });
    expect(again.snapshots.get(c.id)).toMatchObject({ since: 300, until: 400, open: false });
    expect(again.snapshots.get(a.id)!.until).toBeUndefined();
    // The open snapshot still pins after the restart: nothing is deleted though maxBytes is small.
    await addAll(again, runs(2, 60).flat());
    expect(again.stats().evictions).toBe(0);
    expect(again.stats().overBudget).toBeDefined();
    await again.close();
  });
});
