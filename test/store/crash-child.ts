/**
 * Run by crash.test.ts in a child process: opens a store, adds real flows in rounds with a sync
 * after each (printing what is durable), then adds large flows without syncing until it is killed.
 *   node crash-child.js <dir> <flows.json>
 */
import { readFileSync } from 'node:fs';
import { isHttpLike, type FlowRecord } from '../../src/flows/record.js';
import { FlowStore } from '../../src/store/index.js';

const [dir, input] = process.argv.slice(2) as [string, string];
const flows = JSON.parse(readFileSync(input, 'utf8')) as FlowRecord[];
// One segment for everything (so the kill lands in the file being written); little held in memory.
const store = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 1e9, segmentBytes: 4 * 2 ** 30, memoryFlows: 10 });
const round = 100;
for (let i = 0; i < flows.length; i += round) {
  for (const r of flows.slice(i, i + round)) store.add(r);
  await store.sync();
  process.stdout.write(`synced ${Math.min(i + round, flows.length)} ${store.stats().bytesOnDisk}\n`);
}
// Big records keep the process inside write() most of the time, where SIGKILL cuts a write short.
const body = 'x'.repeat(4 << 20);
const base = flows[flows.length - 1]!;
if (!isHttpLike(base)) throw new Error(`the last flow is ${base.protocol}: the big flows are copies of an HTTP one`);
process.stdout.write('writing\n');
for (let n = 0; n < 200; n++) {
  store.add({ ...base, id: `big-${n}`, start: base.start + n, request: { method: 'POST', path: '/big', version: '1.1', start: base.start, end: base.start, size: body.length, bodySize: body.length, headers: {}, body } });
}
process.stdout.write('done\n');
