// npm run fuzz: mutated captures through the whole decode, and generated / mutated protocol
// messages straight into each decoder, checking that no throw escapes, no case exceeds its time
// bound and memory stays bounded. Each case is reproducible from its name (decoder/mutation/seed).
//
//   npm run fuzz                               100 000 cases, seed 1
//   npm run fuzz -- --cases 5000 --seed 7      fewer cases, another seed
//   npm run fuzz -- --only postgres            one decoder (http1 http2 grpc postgres hpack capture)
//   npm run fuzz -- --only lie-len             or one mutation (direct or capture, e.g. lie-pglen)
//   npm run fuzz -- --repro http2/bitflip/0a1b2c3d   rerun one case and print what it did
//   npm run fuzz -- --workers 1 --no-fixtures  one thread; do not write regression fixtures
//   --capture-ms 2000 --direct-ms 200 --per-mb-ms 50 --hang-ms 20000 --rss-mb 1024   the bounds
//
// Failures are written as regression fixtures to test/fuzz/regressions/ (replayed by npm test)
// and the report to .tmp/fuzz-report.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { captureFamily, listCaptures } from './capture-cases.mjs';
import { parseId } from './cases.mjs';
import { CAPTURE_MUTATIONS } from './capture-mutations.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const cases = Number(opt('--cases', '100000'));
const seed = Number(opt('--seed', '1')) >>> 0;
const only = opt('--only');
const repro = opt('--repro');
const workers = Math.max(1, Number(opt('--workers', String(Math.min(2, availableParallelism())))));
const fixtures = !args.includes('--no-fixtures');
const bounds = { captureMs: Number(opt('--capture-ms', '2000')), directMs: Number(opt('--direct-ms', '200')), perMbMs: Number(opt('--per-mb-ms', '50')) };
/** A case still running after this long is a hang: its worker is stopped and replaced. */
const HANG_MS = Number(opt('--hang-ms', '20000'));
/**
 * The whole process (this thread and every worker): decoding an 18 MB generated connection adds
 * about 30 MB, but each worker also holds the inputs it generates (up to ~20 MB of messages, and
 * their copies), so two workers at their largest cases reach about 600 MB.
 */
const RSS_LIMIT = Number(opt('--rss-mb', '1024')) * 1024 * 1024;
const HEAP_MB = 1024;

if (!Number.isFinite(cases) || cases < 0) throw new Error('--cases N: N must be a number ≥ 0');
const captures = listCaptures(root);
const common = { root, seed, only, captures, bounds, captureShare: Number(opt('--capture-share', '0.15')) };

function spawn(data) {
  return new Worker(new URL('./worker.mjs', import.meta.url), { workerData: data, resourceLimits: { maxOldGenerationSizeMb: HEAP_MB } });
}

if (repro) {
  const c = parseId(repro);
  const shared = new SharedArrayBuffer(16);
  const wk = spawn({ ...common, repro: c, shared, slot: 0 });
  wk.on('message', (m) => {
    console.log(`${m.id}: ${m.failure ? `FAILS (${m.failure.kind}) in ${m.ms.toFixed(1)} ms\n${m.failure.stack ?? m.failure.message}` : `passes in ${m.ms.toFixed(1)} ms`}${m.meta?.base ? `\nbase ${relative(root, m.meta.base)}${m.meta.other ? ` + ${relative(root, m.meta.other)}` : ''}` : ''}`);
    process.exitCode = m.failure ? 1 : 0;
  });
  wk.on('error', (e) => { console.error(e); process.exitCode = 1; });
} else {
  await fuzz();
}

async function fuzz() {
  const t0 = Date.now();
  const shared = new SharedArrayBuffer(16 * workers);
  const watch = new Float64Array(shared);
  const failures = [];
  const finals = [];
  const live = new Map();
  let peakRss = process.memoryUsage().rss;
  const memFailures = [];
  const progress = new Array(workers).fill(null);
  let lastLine = Date.now();

  const seen = new Set();
  const record = (m) => {
    const f = { id: m.id, index: m.index, kind: m.failure.kind, message: m.failure.message, signature: m.failure.signature, protocol: m.failure.protocol, ms: Math.round(m.ms), stack: m.failure.stack?.split('\n').slice(0, 8).join('\n') };
    if (m.meta?.base) f.capture = relative(root, m.meta.base) + (m.meta.other ? ` + ${relative(root, m.meta.other)}` : '');
    failures.push(f);
    console.log(`\n✗ ${f.kind} ${f.id}: ${f.message}${f.capture ? ` [${f.capture}]` : ''}`);
    if (fixtures && m.fixture && !seen.has(f.signature)) {
      seen.add(f.signature);
      f.fixture = writeFixture(m, f);
    }
  };

  const start = (slot, from) => {
    const wk = spawn({ ...common, start: from, stride: workers, end: cases, shared, slot, minimize: fixtures });
    live.set(slot, wk);
    return new Promise((resolve) => {
      wk.on('message', (m) => {
        if (m.type === 'failure') record(m);
        else if (m.type === 'progress') progress[slot] = m.stats;
        else if (m.type === 'done') { finals.push(m.stats); progress[slot] = null; }
      });
      wk.on('error', (err) => {
        // Out of memory, or an error outside any case: the case it was on failed; go on after it.
        const index = watch[slot * 2];
        if (progress[slot]) finals.push(progress[slot]);
        progress[slot] = null;
        failures.push({ id: `index ${index}`, index, kind: err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'worker', message: String(err.message ?? err) });
        console.log(`\n✗ worker ${slot} died on case index ${index}: ${err.message}`);
        resolve(start(slot, index + workers));
      });
      wk.on('exit', (code) => {
        if (wk.hung !== undefined) {
          if (progress[slot]) finals.push(progress[slot]);
          progress[slot] = null;
          resolve(start(slot, wk.hung + workers));
        } else if (code === 0) resolve();
      });
    });
  };

  const timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    if (rss > peakRss) peakRss = rss;
    if (rss > RSS_LIMIT && memFailures.length < 10) memFailures.push({ rss, running: [...live.keys()].map((s) => watch[s * 2]) });
    for (const [slot, wk] of live) {
      const began = watch[slot * 2 + 1];
      if (began && Date.now() - began > HANG_MS && wk.hung === undefined) {
        wk.hung = watch[slot * 2];
        failures.push({ id: `index ${wk.hung}`, index: wk.hung, kind: 'hang', message: `still running after ${HANG_MS} ms; rerun with --repro after finding its id (--seed ${seed}${only ? ` --only ${only}` : ''})` });
        console.log(`\n✗ hang at case index ${wk.hung}`);
        wk.terminate();
      }
    }
    const done = [...finals, ...progress.filter(Boolean)].reduce((a, s) => a + s.cases, 0);
    const line = `${done}/${cases} cases, ${failures.length} failures, ${Math.round((Date.now() - t0) / 1000)} s, RSS ${(peakRss / 2 ** 20).toFixed(0)} MB`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
    else if (Date.now() - lastLine > 30_000) { lastLine = Date.now(); console.log(line); }
  }, 200);

  await Promise.all(Array.from({ length: Math.min(workers, Math.max(1, cases)) }, (_, s) => start(s, s)));
  clearInterval(timer);
  const seconds = (Date.now() - t0) / 1000;
  const sum = (key) => {
    const out = {};
    for (const s of finals) for (const [k, v] of Object.entries(s[key])) out[k] = (out[k] ?? 0) + v;
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  };
  const total = finals.reduce((a, s) => a + s.cases, 0);
  const byDecoder = sum('byDecoder');
  const msBy = sum('msByDecoder');
  const maxMs = {};
  for (const s of finals) for (const [k, v] of Object.entries(s.maxMsByDecoder)) if (!maxMs[k] || v.ms > maxMs[k].ms) maxMs[k] = v;
  for (const m of memFailures) failures.push({ kind: 'memory', id: `indices ${m.running.join(', ')}`, message: `RSS ${(m.rss / 2 ** 20).toFixed(0)} MB over the ${RSS_LIMIT / 2 ** 20} MB bound` });
  const report = {
    command: args.length ? `npm run fuzz -- ${args.join(' ')}` : 'npm run fuzz', date: new Date().toISOString(), node: process.version, seed, only, workers,
    cases: total, seconds: Math.round(seconds * 10) / 10, casesPerSec: Math.round(total / seconds),
    byDecoder, byMutation: sum('byMutation'),
    meanMsByDecoder: Object.fromEntries(Object.entries(msBy).map(([k, v]) => [k, Math.round((v / byDecoder[k]) * 1000) / 1000])),
    maxMsByDecoder: maxMs, bounds: { ...bounds, hangMs: HANG_MS, rssMb: RSS_LIMIT / 2 ** 20 },
    peakRssMb: Math.round(peakRss / 2 ** 20), peakWorkerHeapMb: Math.round(Math.max(0, ...finals.map((s) => s.peakHeap)) / 2 ** 20),
    captures: { files: captures.length, families: [...new Set(captures.map((f) => captureFamily(root, f)))].length },
    failures,
  };
  mkdirSync(join(root, '.tmp'), { recursive: true });
  writeFileSync(join(root, '.tmp', 'fuzz-report.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nfuzz: ${total} cases in ${report.seconds} s (${report.casesPerSec}/s), seed ${seed}${only ? `, only ${only}` : ''}, ${workers} workers`);
  console.log(`  by decoder:  ${Object.entries(byDecoder).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  by mutation: ${Object.entries(report.byMutation).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  slowest:     ${Object.entries(maxMs).map(([k, v]) => `${k} ${v.ms} ms (${v.id})`).join(', ')}`);
  console.log(`  peak RSS ${report.peakRssMb} MB (bound ${RSS_LIMIT / 2 ** 20}), peak worker heap ${report.peakWorkerHeapMb} MB; ${captures.length} capture files`);
  console.log(`  failures: ${failures.length}${failures.length ? '' : ' (none)'}`);
  for (const f of failures) console.log(`    ${f.kind} ${f.id}: ${f.message}${f.fixture ? ` → ${f.fixture}` : ''}`);
  console.log(`  report: ${relative(process.cwd(), join(root, '.tmp', 'fuzz-report.json'))}`);
  process.exitCode = failures.length ? 1 : 0;
}

/** Stores a failure's minimal input under test/fuzz/regressions/, named by decoder and seed. */
function writeFixture(m, f) {
  const dir = join(root, 'test', 'fuzz', 'regressions');
  mkdirSync(dir, { recursive: true });
  const seedHex = f.id.split('/')[2];
  const name = `${m.decoder === 'capture' ? `capture-${m.mutation}` : m.decoder}-${seedHex}`;
  const meta = { id: f.id, kind: f.kind, found: new Date().toISOString().slice(0, 10), message: f.message, signature: f.signature, ...(f.capture ? { capture: f.capture } : {}) };
  if (m.decoder === 'capture') {
    writeFileSync(join(dir, `${name}.pcap`), m.fixture.pcap);
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ ...meta, input: { kind: 'capture', pcap: `${name}.pcap`, bodyLimit: m.fixture.bodyLimit, protos: m.fixture.protos, redact: m.fixture.redact } }, null, 1)}\n`);
  } else {
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ ...meta, input: m.fixture }, null, 1)}\n`);
  }
  return relative(root, join(dir, `${name}.json`));
}

export { CAPTURE_MUTATIONS };
