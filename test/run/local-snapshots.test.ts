import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../src/run/backend-local.js';
import { applyRetention, claim, listSnapshots, liveOwner, readSnapshot, snapshotsDir } from '../../src/run/local-snapshots.js';
import { FlowStore } from '../../src/store/index.js';

/** A local snapshot store as a run leaves it: one snapshot in snapshots.json, some bytes. */
function fakeSnapshot(dataDir: string, n: number, o: { bytes?: number; open?: boolean } = {}): string {
  const id = `snap-${n.toString(16).padStart(12, '0')}`;
  const dir = join(snapshotsDir(dataDir), id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'snapshots.json'), JSON.stringify([{ id: 'snap-inner', since: 1000 + n, createdAt: 1000 + n, open: o.open ?? false, ...(o.open ? {} : { until: 1001 + n }) }]));
  writeFileSync(join(dir, 'flows-0000000001.seg'), Buffer.alloc(o.bytes ?? 10));
  return id;
}

describe('local snapshot stores', () => {
  it('retention keeps the newest (room for one more), then drops the oldest while over the byte budget', () => {
    const d = mkdtempSync(join(tmpdir(), 'tapwire-local-'));
    const ids = Array.from({ length: 6 }, (_, i) => fakeSnapshot(d, i + 1, { bytes: 100 }));
    expect(applyRetention(d, { snapshots: 4, bytes: 1e9 })).toEqual(ids.slice(0, 3));
    expect(listSnapshots(d).map((s) => s.id)).toEqual(ids.slice(3));
    // Each store is about 210 bytes (100 of segment, the rest snapshots.json): 3 are over 450, 2 are not.
    expect(applyRetention(d, { snapshots: 10, bytes: 450 })).toEqual([ids[3]]);
    expect(listSnapshots(d).map((s) => s.id)).toEqual(ids.slice(4));
  });

  it('retention never deletes a store that a live process is recording into', () => {
    const d = mkdtempSync(join(tmpdir(), 'tapwire-local-'));
    const [a, b] = [fakeSnapshot(d, 1, { open: true }), fakeSnapshot(d, 2)];
    claim(join(snapshotsDir(d), a));
    expect(liveOwner(join(snapshotsDir(d), a))).toBe(process.pid);
    expect(applyRetention(d, { snapshots: 1, bytes: 1e9 })).toEqual([b]);
    expect(readdirSync(snapshotsDir(d))).toEqual([a]);
  });

  it('ids are checked before they touch the file system', () => {
    const d = mkdtempSync(join(tmpdir(), 'tapwire-local-'));
    fakeSnapshot(d, 1);
    expect(readSnapshot(d, '../../etc')).toBeUndefined();
    expect(readSnapshot(d, 'snap-000000000001')).toMatchObject({ id: 'snap-000000000001', since: 1001, open: false });
  });

  it('a snapshot whose recording process died is closed when next read (unproven); one still recorded elsewhere is refused', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tapwire-local-'));
    const id = 'snap-00000000dead';
    const dir = join(snapshotsDir(d), id);
    const store = await FlowStore.open({ dir, maxBytes: 1e8, maxAgeSec: 1e8, now: () => 2000 });
    store.snapshots.create({ name: 'run: crashed' });
    await store.close();
    writeFileSync(join(dir, 'owner.json'), JSON.stringify({ pid: 2 ** 22 + 1, start: '1' }));
    const b = new LocalBackend({ dataDir: d, redactKey: Buffer.from('k') });
    expect(await b.getSnapshot(id)).toMatchObject({ open: true });
    expect(await b.snapshotFlows(id)).toEqual([]);
    expect(await b.getSnapshot(id)).toMatchObject({ open: false, name: 'run: crashed' });

    const busy = 'snap-0000000b0b0b';
    const store2 = await FlowStore.open({ dir: join(snapshotsDir(d), busy), maxBytes: 1e8, maxAgeSec: 1e8, now: () => 2000 });
    store2.snapshots.create({});
    await store2.close();
    claim(join(snapshotsDir(d), busy));
    await expect(b.snapshotFlows(busy)).rejects.toThrow(`snapshot ${busy} is still being recorded by process ${process.pid}: stop it there first`);
    await expect(b.stopSnapshot(busy)).rejects.toThrow(/still being recorded/);
    await expect(b.query({})).rejects.toThrow(/^snapshot: a local capture keeps flows per snapshot/);
    await expect(b.snapshotFlows('snap-000000000404')).rejects.toThrow(`snapshot: no local snapshot "snap-000000000404" in ${snapshotsDir(d)}`);
    expect(existsSync(join(dir, 'owner.json'))).toBe(true);
  });
});
