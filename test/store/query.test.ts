import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { CursorError, FlowStore } from '../../src/store/index.js';
import { byKey, crashed, pageAll, realFlows, shifted, tempDirs } from './helpers.js';

const ids = (fs: FlowRecord[]) => fs.map((f) => f.id);

let base: FlowRecord[];
/** The three captures, plus a copy at the same starts (ties broken by id) and one shifted by 0.37 s. */
let flows: FlowRecord[];

beforeAll(async () => {
  base = await realFlows();
  flows = [...base, ...base.map((r) => shifted(r, 0, 'tie')), ...base.map((r) => shifted(r, 0.37, 'later'))];
});

const newDir = tempDirs();

/** A store with little memory and small segments, so most flows are read back from many segments. */
async function filled(opts: { memoryFlows?: number } = {}): Promise<{ store: FlowStore; dir: string }> {
  const dir = newDir();
  const store = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9, segmentBytes: 32 * 1024, memoryFlows: opts.memoryFlows ?? 200 });
  for (const r of flows) store.add(r);
  await store.sync();
  return { store, dir };
}

describe('flow store queries', () => {
  it('uses real records that arrive out of start order, with unique ids', () => {
    expect(flows.length).toBeGreaterThan(2500);
    expect(new Set(ids(flows)).size).toBe(flows.length);
    const late = base.filter((r, i) => i > 0 && r.start < base[i - 1]!.start).length;
    expect(late).toBeGreaterThan(10);
  });

  it('returns every flow once, by (start, id), across memory and many disk segments, page after page', async () => {
    const { store, dir } = await filled();
    const st = store.stats();
    expect(st.flows).toBe(flows.length);
    expect(st.flowsInMemory).toBeLessThanOrEqual(200 + 13);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(20);
    const want = ids(byKey(flows));
    for (const limit of [1000, 97, 7]) {
      const got = await pageAll(store, { limit });
      expect(ids(got.flows)).toEqual(want);
      expect(got.pages).toBe(Math.ceil(flows.length / limit));
    }
    expect(st.oldest).toBe(byKey(flows)[0]!.start);
    expect(st.newest).toBe(byKey(flows)[flows.length - 1]!.start);
    await store.close();
  });

  it('returns records exactly as added, whether from memory or disk', async () => {
    const { store } = await filled();
    const all = (await pageAll(store, { limit: 500 })).flows;
    expect(all).toEqual(byKey(flows));
    await store.close();
  });

  it('makes a flow queryable the moment it is added, before any sync', async () => {
    const dir = newDir();
    const store = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9, memoryFlows: 5 });
    for (const r of base.slice(0, 40)) store.add(r);
    expect(ids((await store.query({ limit: 100 })).flows)).toEqual(ids(byKey(base.slice(0, 40))));
    expect(await store.get(base[0]!.id)).toEqual(base[0]);
    await store.close();
  });

  it('bounds the window by start (since and until inclusive) and applies the filter predicate', async () => {
    const { store } = await filled();
    const sorted = byKey(flows);
    const since = sorted[300]!.start, until = sorted[2000]!.start;
    const filter = (r: FlowRecord) => r.protocol === 'postgres' && !!(r.request as { query?: string } | undefined)?.query?.startsWith('UPDATE');
    const want = sorted.filter((r) => r.start >= since && r.start <= until && filter(r));
    expect(want.length).toBeGreaterThan(50);
    expect(ids((await pageAll(store, { since, until, filter, limit: 13 })).flows)).toEqual(ids(want));
    expect(ids((await pageAll(store, { since, until, limit: 250 })).flows)).toEqual(ids(sorted.filter((r) => r.start >= since && r.start <= until)));
    expect((await store.query({ since: until + 1e6, limit: 5 })).flows).toEqual([]);
    await store.close();
  });

  it('keeps its cursor stable while flows keep arriving: no repeats, no gaps', async () => {
    const { store } = await filled();
    const before = ids(byKey(flows));
    const last = byKey(flows)[flows.length - 1]!.start;
    const seen: string[] = [];
    let cursor: string | undefined;
    let n = 0;
    do {
      const p = await store.query({ limit: 50, cursor });
      seen.push(...ids(p.flows));
      // New flows keep coming, each later than all before (a live capture), evicting memory meanwhile.
      for (let i = 0; i < 40; i++) {
        const r = base[(n * 40 + i) % base.length]!;
        store.add(shifted(r, last + 1 + n + i / 100 - r.start, `live${n}-${i}`));
      }
      n++;
      cursor = p.next ?? undefined;
    } while (cursor && n < 1000);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.slice(0, before.length)).toEqual(before);
    expect(seen.length).toBe(flows.length + 40 * n - 40);
    await expect(store.query({ limit: 5, cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(CursorError);
    await expect(store.query({ limit: 0 })).rejects.toBeInstanceOf(RangeError);
    await store.close();
  });

  it('finds a flow by id on disk once memory has evicted it', async () => {
    const { store } = await filled({ memoryFlows: 10 });
    expect(store.stats().flowsInMemory).toBeLessThanOrEqual(11);
    for (const r of [flows[0]!, flows[1234]!, flows[flows.length - 1]!]) expect(await store.get(r.id)).toEqual(r);
    expect(await store.get('nope-1')).toBeUndefined();
    await store.close();
  });

  it('gives everything back after a restart, from sidecars after close and from a scan after a sync only', async () => {
    const { store, dir } = await filled();
    await store.close();
    const again = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
    expect(again.recovery).toMatchObject({ flows: flows.length, packets: 0, torn: [] });
    expect(again.recovery.segments).toBeGreaterThan(20);
    expect(again.stats()).toMatchObject({ flows: flows.length, flowsInMemory: 0 });
    expect(ids((await pageAll(again, { limit: 400 })).flows)).toEqual(ids(byKey(flows)));
    expect(await again.get(flows[500]!.id)).toEqual(flows[500]);
    // Add more, sync but do not close: the active segment has no sidecar and is scanned at the next open.
    for (const r of base) again.add(shifted(r, 7200, 'after-restart'));
    await again.sync();
    crashed(dir);
    const third = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
    expect(third.recovery.torn).toEqual([]);
    expect(third.recovery.flows).toBe(flows.length + base.length);
    expect((await pageAll(third, { limit: 1000 })).flows.length).toBe(flows.length + base.length);
    await third.close();
  });
});
