import { spawn } from 'node:child_process';
import { rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { FlowStore } from '../../src/store/index.js';
import { pageAll, realFlows, tempDir, transpileForChild } from './helpers.js';

let flows: FlowRecord[];
let child: string;
const work = tempDir();

beforeAll(async () => {
  flows = await realFlows();
  writeFileSync(join(work.dir, 'flows.json'), JSON.stringify(flows));
  child = transpileForChild('test/store/crash-child.ts');
});
afterAll(() => {
  work.cleanup();
  rmSync('test/store/.tmp', { recursive: true, force: true });
});

interface Run { synced: number; syncedBytes: number; killed: boolean }

/** Runs the child until it starts its unsynced big writes, then SIGKILLs it after `delayMs`. */
function runAndKill(dir: string, delayMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, join(work.dir, 'flows.json')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let synced = 0, syncedBytes = 0, out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const m of out.matchAll(/^synced (\d+) (\d+)$/gm)) [synced, syncedBytes] = [Number(m[1]), Number(m[2])];
      if (out.includes('writing\n')) setTimeout(() => p.kill('SIGKILL'), delayMs);
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ synced, syncedBytes, killed: signal === 'SIGKILL' }));
  });
}

describe('flow store crash recovery', () => {
  it('reopens after a SIGKILL mid-write: the torn tail is reported and cut, every synced flow is there', async () => {
    const segment = 'flows-0000000001.seg';
    let run: Run | undefined, dir = '', store: FlowStore | undefined;
    // A kill tears a frame only when it lands inside write() (the kernel then stops the write short);
    // the child spends most of its time there, so a few tries suffice. Each try checks durability.
    for (let attempt = 0; attempt < 8; attempt++) {
      const t = tempDir();
      dir = t.dir;
      run = await runAndKill(dir, 15 + attempt * 5);
      expect(run.killed).toBe(true);
      expect(run.synced).toBe(flows.length);
      const size = statSync(join(dir, segment)).size;
      store = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 1e9 });
      const got = new Map((await pageAll(store, { limit: 1000 })).flows.map((f) => [f.id, f]));
      for (const r of flows) expect(got.get(r.id)).toEqual(r);
      if (store.recovery.torn.length) {
        console.log(`crash test: SIGKILL tore ${segment} (${size} bytes) on try ${attempt + 1}: ${JSON.stringify(store.recovery.torn)}`);
        break;
      }
      await store.close();
      store = undefined;
      // A power loss, unlike a kill, also drops what the page cache had not written: cut the file
      // inside its last (unsynced) frame, as such a loss can, when the kill left no torn frame.
      if (attempt === 7 && size > run.syncedBytes + 4096) {
        console.log(`crash test: no SIGKILL landed inside a write in 8 tries; cutting the unsynced tail of ${segment} as a power loss would`);
        truncateSync(join(dir, segment), statSync(join(dir, segment)).size - 1000);
        store = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 1e9 });
      } else {
        t.cleanup();
      }
    }
    expect(store).toBeDefined();
    const torn = store!.recovery.torn;
    expect(torn).toHaveLength(1);
    expect(torn[0]!.file).toBe(segment);
    expect(torn[0]!.offset).toBeGreaterThanOrEqual(run!.syncedBytes);
    expect(torn[0]!.reason).toMatch(/frame cut short|zero-filled tail|checksum mismatch/);
    expect(statSync(join(dir, segment)).size).toBe(torn[0]!.offset);
    expect(store!.recovery.flows).toBeGreaterThanOrEqual(flows.length);
    expect(store!.lost(0, Infinity).flows).toMatch(/cut short by a crash \(flows-0000000001\.seg/);

    // The torn segment is sealed: new flows go to a fresh one, and the next open finds nothing torn.
    const extra = { ...flows[0]!, id: 'after-crash-1', start: flows[0]!.start + 1e5 };
    store!.add(extra);
    await store!.close();
    const again = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 1e9 });
    expect(again.recovery.torn).toEqual([]);
    expect(again.recovery.flows).toBe(store!.recovery.flows + 1);
    expect(await again.get('after-crash-1')).toEqual(extra);
    expect(await again.get(flows[100]!.id)).toEqual(flows[100]);
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
