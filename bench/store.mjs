// node scripts/build-if-needed.mjs && node bench/store.mjs [--flows 200000] [--dir DIR]
//
// The flow store (src/store) on real records: the flows of the recorded demo, pgbench and HTTP mix
// captures, copied with later start times and new ids up to --flows, added in the order the
// pipeline emitted them (so starts arrive slightly out of order). Measures add+sync throughput
// (sync every 200 ms, as the agent does), query latency from memory and from disk, get by id,
// and a restart. Figures are medians over repeated runs of each query.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeFile } from '../dist/pipeline/analyze.js';
import { FlowStore } from '../dist/store/index.js';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const total = Number(arg('--flows', 200_000));
const dir = arg('--dir', undefined) ?? mkdtempSync(join(tmpdir(), 'tapwire-store-bench-'));
const opts = { dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 10 * 365 * 86400 };

const base = [];
for (const f of ['pcaps/demo/demo.pcap', 'pcaps/postgres/pgbench-extended.pcap', 'pcaps/http1/mix.pcap']) base.push(...(await analyzeFile(f)).records);
const first = Math.min(...base.map((r) => r.start));
const span = Math.max(...base.map((r) => r.start)) - first + 1;
const flows = [];
for (let k = 0; flows.length < total; k++) {
  for (const r of base) {
    if (flows.length === total) break;
    flows.push({ ...r, id: `${r.id}~${k}`, start: r.start + k * span, end: r.end + k * span });
  }
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function time(label, fn, runs = 15) {
  const xs = [];
  let out;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    out = await fn(i);
    xs.push(ms(t0));
  }
  console.log(`  ${label.padEnd(58)} ${median(xs).toFixed(2).padStart(8)} ms  (min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)})`);
  return out;
}

const mb = (b) => (b / 2 ** 20).toFixed(1);
console.log(`store bench: ${flows.length} flows (${base.length} real records copied), dir ${dir}`);

/** Adds all flows as the agent would and prints the rate; returns the open store. */
async function fill(label, o, list) {
  const store = await FlowStore.open(o);
  const t0 = process.hrtime.bigint();
  let lastSync = Date.now(), syncs = 0;
  for (let i = 0; i < list.length; i++) {
    store.add(list[i]);
    // The agent adds flows as packets decode and syncs from a 200 ms timer: yield to the event loop
    // every 500 flows so the fsyncs complete meanwhile, without waiting for them.
    if (i % 500 === 499) {
      if (Date.now() - lastSync >= 200) {
        void store.sync();
        syncs++;
        lastSync = Date.now();
      }
      await new Promise(setImmediate);
    }
  }
  await store.sync();
  const s = ms(t0) / 1000;
  const st = store.stats();
  console.log(`add+sync, ${label}: ${(list.length / s).toFixed(0)} flows/s, ${mb(st.bytesOnDisk / s)} MiB/s (${s.toFixed(2)} s, ${syncs + 1} syncs; ${mb(st.bytesOnDisk)} MiB in ${st.segments} segments, ${st.flowsInMemory} flows in memory)`);
  return store;
}

// Record size decides the rate (msgpackr encoding is most of add): PostgreSQL statements alone first.
const pg = flows.filter((r) => r.protocol === 'postgres');
const pgDir = mkdtempSync(join(tmpdir(), 'tapwire-store-bench-pg-'));
await (await fill(`${pg.length} PostgreSQL statements only`, { ...opts, dir: pgDir }, pg)).close();
rmSync(pgDir, { recursive: true, force: true });
let store = await fill('all three captures (HTTP bodies included)', opts, flows);
const st = store.stats();

const sorted = [...flows].sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
const at = (q) => sorted[Math.floor(q * (sorted.length - 1))];
const recent = at(0.99).start, mid = at(0.3).start;
const notFound = (r) => r.protocol === 'http' && r.response?.status === 599;

async function queries(where) {
  console.log(`queries (${where}):`);
  await time('newest page: since = 99th percentile start, limit 100', () => store.query({ since: recent, limit: 100 }));
  await time('oldest page: no window, limit 100', () => store.query({ limit: 100 }));
  await time('window in the middle (30%, 10 s), limit 100', () => store.query({ since: mid, until: mid + 10, limit: 100 }));
  let cursor;
  await time('paging from 30%: next page of 100 by cursor', async () => {
    const p = await store.query({ since: mid, limit: 100, cursor });
    cursor = p.next ?? undefined;
  });
  await time('filter matching nothing, whole store (reads all of it)', () => store.query({ filter: notFound, limit: 100 }), 3);
  await time('get(id) of a recent flow', (i) => store.get(flows[flows.length - 1 - i].id));
  await time('get(id) of the oldest flows (disk, blocks whose id filter matches)', (i) => store.get(flows[i].id), 3);
}

await queries(`${st.flowsInMemory} most recent in memory, the rest on disk`);
const tc = process.hrtime.bigint();
await store.close();
const closeMs = ms(tc);
const to = process.hrtime.bigint();
store = await FlowStore.open(opts);
console.log(`restart: close ${closeMs.toFixed(0)} ms, open ${ms(to).toFixed(0)} ms (${store.recovery.segments} segments, ${store.recovery.flows} flows, ${store.recovery.torn.length} torn)`);
await queries('after restart: all on disk');
await store.close();
if (!args.includes('--dir')) rmSync(dir, { recursive: true, force: true });
