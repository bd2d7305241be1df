import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowStore } from '../../src/store/index.js';
import { FlowFeed, StoreSource } from '../../src/service/index.js';

/**
 * Issue 18: packets a live capture dropped (the eBPF ring was full) are a loss of the store, stated
 * by every export and snapshot of their window: they were never stored, so nothing else can say so.
 */
describe('capture drops as a store loss', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const open = (dir: string) => FlowStore.open({ dir, maxBytes: 2 ** 30, maxAgeSec: 1e9 });

  it('joins drops close together into one counted entry, keeps it across a restart, and states it where the window reaches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-capture-loss-'));
    dirs.push(dir);
    let store = await open(dir);
    store.captureLost(1000, 1001, 3, '--source ebpf: its kernel ring buffer was full');
    store.captureLost(1001, 1002, 4, '--source ebpf: its kernel ring buffer was full');
    // Ten seconds later: another overload, its own entry.
    store.captureLost(1012, 1013, 1, '--source ebpf: its kernel ring buffer was full');
    store.captureLost(1013, 1014, 0, 'nothing');
    expect(store.captureLoss(1000, 1002)).toBe('from 1970-01-01T00:16:40.000Z to 1970-01-01T00:16:42.000Z the capture dropped 7 packets (--source ebpf: its kernel ring buffer was full)');
    expect(store.captureLoss(1005, 1011)).toBeNull();
    expect(store.captureLoss(1012.5, 1020)).toMatch(/dropped 1 packet \(/);
    await store.close();

    store = await open(dir);
    expect(store.captureLoss(0, 2000)?.split('; ')).toHaveLength(2);
    const out = new PassThrough();
    out.resume();
    const r = await store.exportPcap(1000, 1002, out);
    expect(r.lost).toMatch(/packets from 1970-01-01T00:16:40.000Z to 1970-01-01T00:16:42.000Z: the capture dropped 7 packets \(--source ebpf/);
    expect(store.lost(1000, 1002).flows).toMatch(/the capture dropped 7 packets \(.*flows of these packets are missing or incomplete\)/);
    await store.close();
  });

  it('a snapshot states the drops of its window in captureLoss, and only then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-capture-loss-'));
    dirs.push(dir);
    const store = await open(dir);
    const source = new StoreSource(store, new FlowFeed(), { now: () => 3000 });
    const quiet = await source.snapshotWriter.create({ name: 'quiet', since: 100, until: 200 });
    const lossy = await source.snapshotWriter.create({ name: 'lossy', since: 900, until: 1100 });
    store.captureLost(1000, 1001, 5, '--source ebpf: its kernel ring buffer was full');
    expect((await source.snapshot(quiet.id))?.captureLoss).toBeUndefined();
    expect((await source.snapshot(lossy.id))?.captureLoss).toMatch(/dropped 5 packets/);
    const all = await source.snapshots();
    expect(all.find((s) => s.id === quiet.id)?.captureLoss).toBeUndefined();
    expect(all.find((s) => s.id === lossy.id)?.captureLoss).toMatch(/dropped 5 packets/);
    await store.close();
  });
});
