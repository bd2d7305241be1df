// npm run bench:live — the live agent under load (issues 6, 17, 18). On loopback, with the load
// generator (wrk), the HTTP server (bench/servers/http1.mjs, /small: ~300 B, the packet-rate-bound
// case) and the agent (`tapwire agent --interface lo --filter 'tcp port P'`) on this machine's two
// cores, for each packet source asked for, one after the other in one run, the agent restarted
// (and given a fresh data dir) per source:
//   1. idle: the agent's RSS (VmRSS) 3 s after it said "API on", before any load;
//   2. a steady run at --rate requests/s (default 5000) for --seconds (default 60): transactions
//      made (wrk's count) against transactions the agent captured (its API), the agent's RSS
//      sampled every second (max and every 5 s), and CPU (below);
//   3. a ramp of 10 s steps at rising rates to find the drop point: the first step at which the
//      agent captures fewer transactions than were made, or the source itself reports a drop. The
//      ramp stops there. Steps: 5k, 7.5k, 10k, 12.5k, 15k, 20k, 25k, max (wrk unpaced: one thread,
//      16 connections, no delay, its ceiling here). A paced step is offered through wrk's delay();
//      on 2 vCPUs wrk may not make what is offered, so each step reports made/s, and the rates
//      below are made/s, never offered.
//   node bench/live.mjs [--source pcap,ebpf] [--ring-size 8MiB] [--rate 5000] [--seconds 60] [--no-ramp]
//                       [--steps 5000,10000,max] [--step-seconds 10]
// --source: a comma list of pcap (libpcap through cap; the default, as before), ebpf (the TC
// source, lo ingress only: on loopback each packet passes egress then ingress), both, auto.
// --ring-size is passed to the agent (the eBPF ring; the agent's default is 8MiB).
// How to read it:
//   - loss-free rate: the highest made/s of a step with nothing lost; drop point: the made/s of
//     the first lossy step, or "none up to" the last step's. lost = made − captured, counting
//     transactions that are complete (`http && !incomplete`). A request in flight when wrk stops
//     is not in wrk's count but may be captured, so lost can read up to the connection count low
//     (negative); the eBPF source's own count (ring-full, copy-failed, from its kernel counters
//     through /metrics) is beside it and also makes a step lossy. libpcap through cap reports none.
//   - CPU, per 1,000 requests made, in CPU-milliseconds, from the start of wrk to 1.5 s after it
//     (the agent drains): the agent's user and kernel (/proc/<pid>/stat utime, stime, in
//     `getconf CLK_TCK` ticks); the whole machine's user and kernel (/proc/stat: user+nice;
//     system+irq+softirq), since the eBPF source's in-kernel copy is charged to the threads that
//     send and receive (wrk, the server), not to the agent; and wrk's and the server's own, so the
//     rest is visible. The machine is shared: the idle line gives the background busy share.
//   - RSS in MiB from /proc/<pid>/status VmRSS (not through /metrics, whose scrape costs the agent).
// Output: a progress line per step on stderr; at the end one JSON line per source and a markdown
// table side by side.
// With --tls (issue 17) the server speaks HTTPS and the agent runs --tls uprobe: the transactions
// counted are those decrypted through the uprobes (wrk's libssl and the server's node are both
// probed; each exchange is given once), so the drop point is decrypted requests/s before loss,
// and the probes' own loss counter (tapwire_tls_lost_events_total) is reported beside it.
//   node bench/live.mjs --tls [--rate 2000] [--seconds 30]
// Needs root (libpcap, TC on lo) and wrk; ebpf and --tls also need the addon (npm run build:native).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, sleep } from '../scripts/record/lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const fail = (why) => { console.error(`bench:live: ${why}`); process.exit(2); };
const opt = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt; };
const positive = (name, dflt) => {
  const v = opt(name);
  if (v === undefined) return dflt;
  if (!(Number(v) > 0)) fail(`${name} "${v}": expected a positive number`);
  return Number(v);
};
const TLS = argv.includes('--tls');
const RATE = positive('--rate', TLS ? 2000 : 5000), SECONDS = positive('--seconds', TLS ? 30 : 60);
const STEP_SECONDS = positive('--step-seconds', 10);
const RING = opt('--ring-size');
const SOURCES = opt('--source', 'pcap').split(',').map((s) => s.trim());
for (const s of SOURCES) if (!['pcap', 'ebpf', 'both', 'auto'].includes(s)) fail(`--source "${s}": expected a comma list of pcap, ebpf, both, auto`);
if (new Set(SOURCES).size !== SOURCES.length) fail(`--source "${SOURCES.join(',')}": a source is named twice`);
/** 0 is "max": wrk unpaced. */
const STEPS = (opt('--steps') ?? (TLS ? '1000,2000,4000,6000,8000,10000,12000,max' : '5000,7500,10000,12500,15000,20000,25000,max'))
  .split(',').map((s) => {
    const n = s.trim() === 'max' ? 0 : Number(s);
    if (!(n >= 0)) fail(`--steps "${s}": expected requests/s or max`);
    return n;
  });
const PORT = 18930, API_PORT = 18931;
const API = `http://127.0.0.1:${API_PORT}`;
const FILTER = TLS ? 'http && !incomplete && record.tls.via == "uprobe"' : 'http && !incomplete';
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
if (process.getuid?.() !== 0) fail('needs root (libpcap and TC on lo)');
if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) fail('needs wrk (apt-get install wrk)');

/**
 * Connections and per-connection delay that offer `rate` requests/s. Each cycle is the delay plus
 * about 2.5 ms of request time and wrk scheduling on this machine, measured: without that
 * allowance, 5000 offered gave 4050 made.
 */
function pacing(rate) {
  const connections = Math.max(10, Math.min(400, Math.ceil(rate / 50)));
  return { connections, delayMs: Math.max(1, Math.round((connections * 1000) / rate - 2.5)) };
}

const SECONDS_IN = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
/** wrk's "0m1.230000s 0m0.450000s" (the shell's `times`, children's line) in seconds. */
const clock = (m, s) => Number(m) * 60 + Number(s);

/**
 * wrk in the background (the RSS sampler keeps running), resolving with what it made, its own
 * duration, errors, and its CPU time: run under sh, whose `times` gives its children's user and
 * system time once wrk has exited (dash, POSIX `times`).
 */
function load(rate, seconds, maxLua) {
  const paced = rate > 0;
  const { connections, delayMs } = paced ? pacing(rate) : { connections: 16 };
  const url = `${TLS ? 'https' : 'http'}://127.0.0.1:${PORT}/`;
  const args = paced
    ? ['-t2', `-c${connections}`, `-d${seconds}s`, '-s', join(ROOT, 'bench/paced.lua'), url, '--', String(delayMs)]
    : ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', maxLua, url];
  const wrk = spawn('sh', ['-c', 'wrk "$@"; s=$?; times; exit $s', 'sh', ...args]);
  let out = '';
  wrk.stdout.on('data', (d) => (out += d));
  wrk.stderr.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => wrk.on('exit', () => {
    const m = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(out);
    if (!m || !Number(m[1])) return reject(new Error(`wrk failed: ${out}`));
    const times = [...out.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)].at(-1);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    resolve({
      made: Number(m[1]), wrkSeconds: Number(m[2]) * SECONDS_IN[m[3]], connections, delayMs,
      errors: (sock ? sock.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
      wrkCpu: times ? { user: clock(times[1], times[2]), sys: clock(times[3], times[4]) } : undefined,
    });
  }));
}

/** Transactions the agent holds that started since `since` (epoch s) and match `filter`. */
async function count(since, filter) {
  let n = 0, cursor = null;
  do {
    const u = new URL('/api/flows', API);
    u.searchParams.set('since', String(since));
    u.searchParams.set('limit', '1000');
    u.searchParams.set('filter', filter);
    if (cursor) u.searchParams.set('cursor', cursor);
    const page = await (await fetch(u)).json();
    n += page.flows.length;
    cursor = page.next;
  } while (cursor);
  return n;
}

/** The sum of a metric's samples whose labels include `want` (0 when absent). */
function metricSum(text, name, want = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(want).every(([k, v]) => labels[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

/** The drop counters the sources keep themselves, cumulative. */
async function drops() {
  const text = await (await fetch(`${API}/metrics`)).text();
  return {
    ringFull: metricSum(text, 'tapwire_capture_lost_packets_total', { source: 'ebpf', reason: 'ring-full' }),
    copyFailed: metricSum(text, 'tapwire_capture_lost_packets_total', { source: 'ebpf', reason: 'copy-failed' }),
    tlsLost: metricSum(text, 'tapwire_tls_lost_events_total'),
    source: /^tapwire_capture_source\{source="(\w+)"\} 1/m.exec(text)?.[1],
  };
}

/** utime and stime of a process (all its threads), in ticks: fields 14 and 15 of proc(5)'s stat. */
function procTicks(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]), sys: Number(f[12]) };
}

/** The machine's busy and idle ticks from /proc/stat's first line (guest time is inside user). */
function machineTicks() {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { user: user + nice, sys: system + irq + softirq, steal, idle: idle + iowait };
}

const statusMiB = (pid, field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const rssMiB = (pid) => statusMiB(pid, 'VmRSS');
const snap = (pids) => ({ t: performance.now(), machine: machineTicks(), agent: procTicks(pids.agent), server: procTicks(pids.server) });
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Busy share of all cores between two snapshots (%). */
function busyPct(a, b) {
  const busy = b.machine.user - a.machine.user + b.machine.sys - a.machine.sys + b.machine.steal - a.machine.steal;
  return round((100 * busy) / (busy + b.machine.idle - a.machine.idle));
}

/** CPU-milliseconds per 1,000 requests between two snapshots. */
function cpuPer1k(a, b, made, wrkCpu) {
  const per1k = (ticks) => round((ticks * 1000 / TICK) / (made / 1000));
  const d = (k, f) => b[k][f] - a[k][f];
  const out = {
    agentUser: per1k(d('agent', 'user')), agentSys: per1k(d('agent', 'sys')),
    agentPct: round((100 * (d('agent', 'user') + d('agent', 'sys')) / TICK) / ((b.t - a.t) / 1000)),
    machineUser: per1k(d('machine', 'user')), machineSys: per1k(d('machine', 'sys')),
    machine: per1k(d('machine', 'user') + d('machine', 'sys') + d('machine', 'steal')),
    server: per1k(d('server', 'user') + d('server', 'sys')),
    wrk: wrkCpu ? per1k((wrkCpu.user + wrkCpu.sys) * TICK) : undefined,
  };
  // What no process of the benchmark was charged: softirq work not accounted to a task, and
  // anything else running on this shared machine.
  if (out.wrk !== undefined) out.unattributed = round(out.machine - out.agentUser - out.agentSys - out.server - out.wrk);
  return out;
}

/** One load step against the running agent: made, captured, lost, the source's own drops, CPU, RSS. */
async function step(pids, rate, seconds, { sampleRss, maxLua }) {
  const since = Date.now() / 1000;
  const d0 = await drops();
  const c0 = snap(pids);
  const rss = [];
  const sampler = sampleRss && setInterval(() => rss.push({ t: Math.round(Date.now() / 1000 - since), mib: rssMiB(pids.agent) }), 1000);
  const w = await load(rate, seconds, maxLua);
  const cWrk = snap(pids);
  if (sampler) clearInterval(sampler);
  await sleep(1500); // the agent promises 1 s; give it that, and then some
  const c1 = snap(pids);
  const d1 = await drops();
  const captured = await count(since - 1, FILTER);
  const incomplete = await count(since - 1, 'http && incomplete');
  const sourceDrops = { ringFull: d1.ringFull - d0.ringFull, copyFailed: d1.copyFailed - d0.copyFailed };
  const r = {
    rate: rate || 'max', seconds, connections: w.connections, delayMs: w.delayMs,
    made: w.made, madePerSec: Math.round(w.made / w.wrkSeconds), wrkErrors: w.errors,
    captured, lost: w.made - captured, incomplete, sourceDrops,
    ...(TLS ? { probeEventsLost: d1.tlsLost - d0.tlsLost } : {}),
    machineBusyPct: busyPct(c0, cWrk),
    cpuMsPer1k: cpuPer1k(c0, c1, w.made, w.wrkCpu),
  };
  r.lossy = r.lost > 0 || sourceDrops.ringFull + sourceDrops.copyFailed > 0;
  if (sampleRss && rss.length) {
    r.rssMaxMiB = round(Math.max(...rss.map((x) => x.mib)));
    r.rssMiB = rss.filter((x, i) => i % 5 === 4 || i === rss.length - 1).map((x) => `${x.t}s ${x.mib.toFixed(0)}`).join(', ');
  }
  return r;
}

function progress(source, r) {
  const c = r.cpuMsPer1k;
  console.error(`bench:live [${source}]: ${r.rate} rps offered, ${r.madePerSec} made/s, ${r.made} made, ${r.captured} captured (lost ${r.lost}, `
    + `${r.incomplete} incomplete), eBPF drops ${r.sourceDrops.ringFull + r.sourceDrops.copyFailed}; per 1k requests: agent ${c.agentUser}/${c.agentSys} ms user/sys, `
    + `machine ${c.machine} ms (busy ${r.machineBusyPct} %), server ${c.server} ms, wrk ${c.wrk ?? '?'} ms, unattributed ${c.unattributed ?? '?'} ms`);
}

/** All three phases with one agent on `source`; an agent that does not start gives { source, error }. */
async function benchSource(source, server, dir, maxLua) {
  const agent = startChild(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'agent', '--interface', 'lo', '--filter', `tcp port ${PORT}`,
    '--source', source, ...(RING ? ['--ring-size', RING] : []), '--tls', TLS ? 'uprobe' : 'off',
    '--listen', `127.0.0.1:${API_PORT}`, '--data-dir', join(dir, `data-${source}`), '--retention', '4GiB/1h', '--body-limit', '1024'],
  { ready: 'API on', timeoutMs: 30000 });
  try {
    try {
      await agent.ready;
    } catch (e) {
      return { source, error: `the agent did not start: ${e.message.split('\n').filter(Boolean).slice(-3).join(' | ')}` };
    }
    const pids = { agent: agent.child.pid, server: server.child.pid };
    const capturing = /capturing on .*? with (.*?); API on/.exec(agent.output())?.[1];
    const i0 = snap(pids);
    await sleep(3000);
    const i1 = snap(pids);
    const idle = {
      rssMiB: round(rssMiB(pids.agent)), seconds: 3,
      // VmRSS's parts: libpcap's packet ring (256 MiB by default) is a mapping of its socket and
      // shows in RssFile, not RssAnon (measured: ~565 MiB RssFile idle with pcap, ~69 with ebpf).
      rssAnonMiB: round(statusMiB(pids.agent, 'RssAnon')), rssFileMiB: round(statusMiB(pids.agent, 'RssFile')), rssShmemMiB: round(statusMiB(pids.agent, 'RssShmem')),
      agentCpuPct: round((100 * (i1.agent.user - i0.agent.user + i1.agent.sys - i0.agent.sys) / TICK) / ((i1.t - i0.t) / 1000)),
      machineBusyPct: busyPct(i0, i1),
    };
    console.error(`bench:live [${source}]: capturing with ${capturing}; idle RSS ${idle.rssMiB} MiB, machine busy ${idle.machineBusyPct} % before load`);
    const steady = await step(pids, RATE, SECONDS, { sampleRss: true, maxLua });
    progress(source, steady);
    const ramp = [];
    if (!argv.includes('--no-ramp')) {
      for (const rate of STEPS) {
        const r = await step(pids, rate, STEP_SECONDS, { maxLua });
        ramp.push(r);
        progress(source, r);
        if (r.lossy) break;
      }
    }
    // The steady step counts too: it is a step at --rate, and the ramp's first may already lose.
    const all = [steady, ...ramp];
    const drop = ramp.length ? ramp.find((r) => r.lossy) : (steady.lossy ? steady : undefined);
    const clean = all.filter((r) => !r.lossy);
    const last = ramp.at(-1) ?? steady;
    return {
      source, capturing, reportedSource: (await drops()).source, mode: TLS ? 'https, decrypted through uprobes' : 'http',
      ...(source !== 'pcap' ? { ringSize: RING ?? 'agent default (8MiB)' } : {}),
      idle, steady, ramp,
      lossFreeReqPerSec: clean.length ? Math.max(...clean.map((r) => r.madePerSec)) : null,
      // No step lost anything: the loss-free rate is only a lower bound (wrk's or the machine's).
      lossFreeIsLowerBound: !drop,
      dropPoint: drop
        ? `${drop.madePerSec} requests/s (${drop.rate} offered; made − captured ${drop.lost} of ${drop.made}, eBPF drops ${drop.sourceDrops.ringFull + drop.sourceDrops.copyFailed})`
        : `none up to ${last.madePerSec} requests/s${last.rate === 'max' ? " (wrk's ceiling, unpaced)" : ''}`,
      ebpfDrops: { ringFull: all.reduce((a, r) => a + r.sourceDrops.ringFull, 0), copyFailed: all.reduce((a, r) => a + r.sourceDrops.copyFailed, 0) },
      ...(TLS ? { probeEventsLost: all.reduce((a, r) => a + r.probeEventsLost, 0) } : {}),
    };
  } finally {
    await agent.stop('SIGTERM', 15000);
  }
}

const n0 = (x) => Math.round(x).toLocaleString('en-US');
function table(results) {
  const at = RATE % 1000 ? n0(RATE) : `${RATE / 1000}k`;
  const lines = [
    `| source | idle RSS | RSS at ${at} (max) | loss-free rate | drop point | agent CPU user/sys per 1k req at ${at} | machine CPU per 1k at ${at} | eBPF ring drops |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.source} | ${r.error.replaceAll('|', '/')} | | | | | | |`);
      continue;
    }
    const s = r.steady, c = s.cpuMsPer1k;
    const free = r.lossFreeReqPerSec === null ? 'none' : `${r.lossFreeIsLowerBound ? '≥ ' : ''}${n0(r.lossFreeReqPerSec)} req/s`;
    const drop = r.ramp.length ? r.ramp.find((x) => x.lossy) : (s.lossy ? s : undefined);
    const dropText = drop ? `${n0(drop.madePerSec)} req/s (lost ${n0(drop.lost)})` : `none up to ${n0((r.ramp.at(-1) ?? s).madePerSec)} req/s`;
    const ring = r.source === 'pcap' ? 'n/a (cap counts none)' : `${n0(r.ebpfDrops.ringFull)}${r.ebpfDrops.copyFailed ? ` (+${n0(r.ebpfDrops.copyFailed)} copy-failed)` : ''}`;
    const probes = TLS ? `; TLS probe events lost ${n0(r.probeEventsLost)}` : '';
    lines.push(`| ${r.source} | ${n0(r.idle.rssMiB)} MiB | ${n0(s.rssMaxMiB)} MiB (${n0(s.madePerSec)} made/s) | ${free} | ${dropText} | ${c.agentUser} / ${c.agentSys} ms | ${c.machine} ms (${c.machineUser} user, ${c.machineSys} sys) | ${ring}${probes} |`);
  }
  const noise = results.filter((r) => !r.error).map((r) => `${r.source} ${r.idle.machineBusyPct} %`).join(', ');
  lines.push('', `CPU in CPU-ms per 1,000 requests made (${TICK} ticks/s); steady step ${SECONDS} s at ${n0(RATE)} offered, ramp steps ${STEP_SECONDS} s. `
    + `Machine = all cores from /proc/stat, including wrk and the server; machine busy with the agent idle, before load: ${noise || 'n/a'}.`);
  return lines.join('\n');
}

const dir = mkdtempSync(join(tmpdir(), 'tapwire-live-bench-'));
if (TLS) {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'),
    '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  if (r.status !== 0) fail('--tls: openssl could not make a certificate');
}
// The unpaced step: a static request (no request() or delay()), wrk's fastest path.
const maxLua = join(dir, 'max.lua');
writeFileSync(maxLua, 'wrk.path = "/small"\n');
const server = startChild(process.execPath, [join(ROOT, 'bench/servers/http1.mjs'), '--port', String(PORT), ...(TLS ? ['--tls', dir] : [])], { ready: 'listening on' });
const results = [];
try {
  await server.ready;
  for (const source of SOURCES) {
    const r = await benchSource(source, server, dir, maxLua);
    if (r.error) console.error(`bench:live [${source}]: ${r.error}`);
    results.push(r);
    await sleep(1000);
  }
  for (const r of results) console.log(JSON.stringify(r));
  console.log(`\n${table(results)}`);
} finally {
  await server.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
if (results.some((r) => r.error)) process.exitCode = 1;
