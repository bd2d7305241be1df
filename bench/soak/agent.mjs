// The agent under soak (bench/soak/run.mjs): started from a private copy of dist/ (so a concurrent
// `npm run build` cannot change it mid-run), sampled every few seconds, and asked afterwards what it
// captured.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, startChild } from '../../scripts/record/lib.mjs';
import { PORTS } from './load.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const API = `http://127.0.0.1:${PORTS.api}`;
const CLK_TCK = 100;
const CORES = availableParallelism(); // Linux USER_HZ: /proc/<pid>/stat's utime and stime are in these

/**
 * A copy of dist/ (and schema/, package.json for "type": "module") in a temp dir, resolving
 * node_modules (cap included) through a symlink to this checkout's. A copy taken while someone's tsc
 * is writing dist/ can mix two builds, so it is checked by loading the agent's module graph, and taken
 * again (every 5 s, up to a minute) until it loads. Returns { dir, main, built, remove() }.
 */
export async function copyDist() {
  for (let attempt = 1; ; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-soak-dist-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const built = statSync(join(root, 'dist', 'cli', 'main.js')).mtime.toISOString();
    cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
    cpSync(join(root, 'schema'), join(dir, 'schema'), { recursive: true });
    cpSync(join(root, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    const check = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(join(dir, 'dist', 'cli', 'agent.js'))})`], { encoding: 'utf8' });
    if (check.status === 0) return { dir, built, main: join(dir, 'dist', 'cli', 'main.js'), remove: () => rmSync(dir, { recursive: true, force: true }) };
    rmSync(dir, { recursive: true, force: true });
    if (attempt >= 12) throw new Error(`dist/ does not load (a build in progress, or a broken one):\n${check.stderr}`);
    process.stderr.write('soak: dist/ is being rebuilt (its copy does not load); copying again in 5 s\n');
    await sleep(5000);
  }
}

/** Start `tapwire agent` on lo for the three server ports, with its own temp data dir. */
export async function startAgent(main, { nodeArgs = [], logFile, nice = 0 } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tapwire-soak-data-'));
  mkdirSync(dataDir, { recursive: true });
  process.on('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const filter = `tcp and (port ${PORTS.http} or port ${PORTS.grpc} or port ${PORTS.postgres})`;
  const args = [...nodeArgs, main, 'agent', '--interface', 'lo', '--filter', filter, '--listen', `127.0.0.1:${PORTS.api}`,
    '--data-dir', dataDir, '--retention', '40GiB/6h', '--body-limit', '1024'];
  const child = startChild(process.execPath, args, { ready: 'API on', timeoutMs: 20000 });
  await child.ready;
  if (nice) execFileSync('renice', ['-n', String(nice), '-p', String(child.child.pid)], { stdio: 'ignore' });
  await sleep(5000); // let it settle (module loading, first compilations) before the load starts
  return {
    child, pid: child.child.pid, dataDir, filter, args,
    async stop() {
      const r = await child.stop('SIGTERM', 30000);
      if (logFile) writeFileSync(logFile, child.output());
      rmSync(dataDir, { recursive: true, force: true });
      return r;
    },
  };
}

/** Prometheus text → Map of `name{labels}` → number (comments skipped). */
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

export async function metrics() {
  return parseMetrics(await (await fetch(`${API}/metrics`)).text());
}

/** The agent's counters of interest out of /metrics. */
export function metricFacts(m) {
  const sum = (prefix) => [...m].filter(([k]) => k === prefix || k.startsWith(`${prefix}{`)).reduce((s, [, v]) => s + v, 0);
  const labelled = (prefix) => Object.fromEntries([...m].filter(([k]) => k.startsWith(`${prefix}{`))
    .map(([k, v]) => [/="([^"]*)"/.exec(k)?.[1] ?? k, v]));
  return {
    rssBytes: m.get('tapwire_process_resident_memory_bytes'),
    heapUsedBytes: m.get('tapwire_nodejs_heap_size_used_bytes'),
    heapTotalBytes: m.get('tapwire_nodejs_heap_size_total_bytes'),
    eventLoopLagMaxSeconds: m.get('tapwire_nodejs_eventloop_lag_max_seconds'),
    externalBytes: m.get('tapwire_nodejs_external_memory_bytes'),
    capturePackets: sum('tapwire_capture_packets'),
    pipelinePackets: m.get('tapwire_pipeline_packets'),
    interfaceDropped: sum('tapwire_interface_dropped'),
    violations: labelled('tapwire_violations'),
    openConnections: m.get('tapwire_open_connections'),
    storeFlows: m.get('tapwire_store_flows'),
    storeBytes: m.get('tapwire_store_bytes'),
    evictions: m.get('tapwire_store_evictions'),
    flowsTotal: labelled('tapwire_flows_total'),
  };
}

/** VmRSS (bytes), utime+stime (seconds) and time spent waiting for a CPU (seconds) of a process, from /proc. */
export function procSample(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const vmRss = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  // schedstat: ns on the CPU, ns runnable but waiting for a CPU, timeslices
  const [, waitNs] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return { vmRssBytes: vmRss, cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK, runqueueWaitSeconds: waitNs / 1e9 };
}

/**
 * Resident bytes of the process's packet-socket mappings (/proc/<pid>/smaps, mappings named
 * socket:[…]): libpcap's capture ring, mapped from the kernel and counted in RSS.
 */
export function ringSample(pid) {
  let inSocket = false, rss = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inSocket = / socket:\[\d+\]$/.test(line);
    else if (inSocket && line.startsWith('Rss:')) rss += Number(/(\d+) kB/.exec(line)?.[1] ?? 0) * 1024;
  }
  return rss;
}

/** Busy and total jiffies of the whole machine (/proc/stat's cpu line). */
export function machineSample() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** utime+stime (s) of every live descendant of this process except `exceptPid`: servers, generators, postgres. */
export function treeSample(exceptPid) {
  const parent = new Map(), cpu = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) / CLK_TCK);
    } catch { /* gone */ }
  }
  const mine = new Map();
  for (const [pid, t] of cpu) {
    if (pid === exceptPid) continue;
    for (let p = parent.get(pid), hops = 0; p && hops < 10; p = parent.get(p), hops++) {
      if (p === exceptPid) break;
      if (p === process.pid) { mine.set(pid, t); break; }
    }
  }
  return mine;
}

/** CPU cores used by the processes of `b` between two treeSample()s `dt` seconds apart (those alive in both). */
function treeCores(a, b, dt) {
  let s = 0;
  for (const [pid, t] of b) if (a.has(pid)) s += t - a.get(pid);
  return s / dt;
}

/**
 * Sample the agent every `everyMs`: VmRSS and CPU from /proc, RSS and heap from its /metrics, the
 * machine's busy share. Returns { samples, stop() }; each sample has t (s since start).
 */
export function sampler(pid, everyMs = 5000) {
  const samples = [];
  const t0 = Date.now();
  let prev = { ...procSample(pid), ...machineSample(), tree: treeSample(pid), t: 0 };
  const take = async () => {
    const t = (Date.now() - t0) / 1000;
    const p = procSample(pid), mach = machineSample(), tree = treeSample(pid);
    let facts = {};
    try { facts = metricFacts(await metrics()); } catch (e) { facts = { error: e.message }; }
    const sample = {
      t: Math.round(t * 10) / 10, vmRssBytes: p.vmRssBytes, ringRssBytes: ringSample(pid), cpuSeconds: p.cpuSeconds,
      agentCores: (p.cpuSeconds - prev.cpuSeconds) / (t - prev.t),
      // seconds per second the agent was runnable but had no CPU: how much other processes held it back
      agentRunqueueWait: (p.runqueueWaitSeconds - prev.runqueueWaitSeconds) / (t - prev.t),
      machineBusy: (mach.busy - prev.busy) / Math.max(1, mach.total - prev.total),
      loadCores: treeCores(prev.tree, tree, t - prev.t), // servers, generators and postgres
      ...facts,
    };
    // RSS that is neither the capture ring nor V8's heap: code, native buffers, malloc
    sample.restRssBytes = sample.vmRssBytes - sample.ringRssBytes - (sample.heapTotalBytes ?? NaN);
    // whatever else ran on the machine (other users' builds and tests): busy cores less ours
    sample.othersCores = Math.max(0, sample.machineBusy * CORES - sample.agentCores - sample.loadCores);
    samples.push(sample);
    prev = { ...p, ...mach, tree, t };
  };
  let pending = Promise.resolve();
  const timer = setInterval(() => { pending = pending.then(take).catch(() => {}); }, everyMs);
  return {
    samples,
    async stop() { clearInterval(timer); await pending; return samples; },
  };
}

/**
 * Count the flows the agent keeps that started in [since, until] (epoch seconds), by protocol:
 * complete and incomplete, and for PostgreSQL the pgbench -S statement apart from its set-up queries.
 * Pages through GET /api/flows, 1000 at a time, as bench/live.mjs does.
 */
export async function countFlows(since, until) {
  const c = { http: 0, grpc: 0, postgres: 0, other: 0, incomplete: {}, incompleteReasons: {}, postgresOther: 0, otherProtocols: {}, pages: 0, examples: [] };
  // per 10 s of flow start: complete records of the three kinds, and everything else (incomplete, http2, unpaired)
  const buckets = new Map();
  const bucket = (f, ok) => {
    const k = Math.floor((f.start - since) / 10) * 10;
    const b = buckets.get(k) ?? buckets.set(k, { t: k, complete: 0, other: 0 }).get(k);
    if (ok) b.complete++; else b.other++;
  };
  const example = (kind, f) => {
    if (c.examples.filter((e) => e.kind === kind).length < 3) c.examples.push({ kind, record: JSON.stringify(f).slice(0, 1500) });
  };
  let cursor = null;
  const t0 = Date.now();
  do {
    const u = new URL('/api/flows', API);
    u.searchParams.set('since', String(since));
    u.searchParams.set('until', String(until));
    u.searchParams.set('limit', '1000');
    if (cursor) u.searchParams.set('cursor', cursor);
    const res = await fetch(u);
    if (!res.ok) throw new Error(`GET ${u}: ${res.status} ${await res.text()}`);
    const page = await res.json();
    c.pages++;
    for (const f of page.flows) {
      if (f.incomplete) {
        c.incomplete[f.protocol] = (c.incomplete[f.protocol] ?? 0) + 1;
        const why = `${f.protocol}: ${f.incompleteReason}`;
        c.incompleteReasons[why] = (c.incompleteReasons[why] ?? 0) + 1;
        example(`incomplete ${f.protocol}`, f);
        bucket(f, false);
        continue;
      }
      if (f.protocol === 'postgres' && !/pgbench_accounts/.test(f.request?.query ?? '')) { c.postgresOther++; example('postgres other', f); bucket(f, false); }
      else if (f.protocol === 'http' || f.protocol === 'grpc' || f.protocol === 'postgres') { c[f.protocol]++; bucket(f, true); }
      else { c.other++; c.otherProtocols[f.protocol] = (c.otherProtocols[f.protocol] ?? 0) + 1; example(`other ${f.protocol}`, f); bucket(f, false); }
    }
    cursor = page.next;
  } while (cursor);
  c.countSeconds = (Date.now() - t0) / 1000;
  c.timeline = [...buckets.values()].sort((a, b) => a.t - b.t);
  return c;
}
