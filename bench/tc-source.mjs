// Packets/s into JS without loss: the TC packet source (native/tc.bpf.c, TcCapture) beside
// libpcap (cap, LiveCapture) on the same wrk load, one after the other in one run.
//
//   node bench/tc-source.mjs                                  steps 5k, 10k, 20k req/s and unlimited, 10 s each
//   node bench/tc-source.mjs --rates 10000 --duration 30 --json
//   node bench/tc-source.mjs --sources tc --mode pipeline     one source; feed a real Pipeline
//   node bench/tc-source.mjs --idle-rss [--tc-ring-mb 8]      RSS with each source open and idle
//
// wrk loads bench/servers/http1.mjs on lo with /small responses (~300 B: the packet-rate-bound
// case); a rate is held with wrk's per-request delay() over enough connections, calibrated first.
// Loss: the TC source counts its own (the program's `seen` and the ring's `lost`, exact); for
// libpcap, which has no drop counter in `cap`, it is counted against tcpdump capturing the same
// traffic with the same filter at the same time, as bench/live-capture.mjs does. tcpdump runs in
// both, so both compete with it alike. The TC source attaches on lo's ingress only: on loopback
// each packet passes egress and then ingress, and libpcap sees it once.
// Needs root, wrk, tcpdump and the addon (npm run build:native). Modes: `count` (a sink that
// counts) and `pipeline` (a Pipeline, frames: false, ticked every 100 ms: the agent's case).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { requireTools, sleep, startChild } from '../scripts/record/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const PORT = Number(opt('--port', 18931));
const duration = Number(opt('--duration', 10));
const rates = opt('--rates', '5000,10000,20000,0').split(',').map(Number); // 0: as fast as wrk goes
const modes = opt('--mode', 'count').split(',');
const sources = opt('--sources', 'tc,pcap').split(',');
const dist = resolve(opt('--dist', join(here, '..', 'dist')));
const json = args.includes('--json');
const tcRingMb = Number(opt('--tc-ring-mb', 32));
const pcapBufferMb = Number(opt('--pcap-buffer-mb', 256));

if (process.getuid?.() !== 0) {
  console.error('bench/tc-source: needs root (TC filters and libpcap on lo)');
  process.exit(2);
}
requireTools('wrk', 'tcpdump');
const { LiveCapture, TcCapture, tcCaptureUnavailable } = await import(pathToFileURL(join(dist, 'capture/index.js')).href);
const { Pipeline } = await import(pathToFileURL(join(dist, 'pipeline/pipeline.js')).href);
const why = tcCaptureUnavailable();
if (why.length && sources.includes('tc')) {
  console.error(`bench/tc-source: the TC source cannot run: ${why.join('; ')}`);
  process.exit(2);
}

// --idle-rss: this process's RSS with one source open on lo and idle (run once per source, in a
// child each: RSS only grows within a process).
if (args.includes('--idle-rss-child')) {
  const source = opt('--idle-rss-child');
  const rss = () => Math.round(process.memoryUsage.rss() / 2 ** 20);
  const before = rss();
  const c = source === 'tc'
    ? new TcCapture({ interfaces: ['lo'], directions: ['ingress'], ringBytes: tcRingMb << 20 }, () => {})
    : new LiveCapture({ interfaces: ['lo'], bufferBytes: pcapBufferMb << 20 }, () => {});
  if (source === 'pcap') c.start();
  await sleep(1500);
  console.log(JSON.stringify({ source, ringMb: source === 'tc' ? tcRingMb : pcapBufferMb, rssBeforeMb: before, rssIdleMb: rss() }));
  if (source === 'tc') c.close(); else c.stop();
  process.exit(0);
}
if (args.includes('--idle-rss')) {
  const { execFileSync } = await import('node:child_process');
  const passOn = ['--tc-ring-mb', String(tcRingMb), '--pcap-buffer-mb', String(pcapBufferMb), '--dist', dist];
  for (const source of sources) console.log(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--idle-rss-child', source, ...passOn], { encoding: 'utf8' }).trim());
  process.exit(0);
}

const tmp = mkdtempSync(join(tmpdir(), 'tapwire-tc-bench-'));
const lua = join(tmp, 'rate.lua');
writeFileSync(lua, `
local req = wrk.format("GET", "/small", { ["Host"] = "127.0.0.1", ["User-Agent"] = "wrk (tapwire tc bench)" })
local ms = tonumber(os.getenv("TAPWIRE_DELAY_MS") or "0")
function request() return req end
if ms > 0 then function delay() return ms end end
`);

async function wrkRun(conns, delayMs, seconds) {
  const wrk = startChild('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '-s', lua, `http://127.0.0.1:${PORT}/`], {
    spawn: { env: { ...process.env, TAPWIRE_DELAY_MS: String(delayMs) } },
  });
  await wrk.exited;
  const w = wrk.output();
  const num = (re) => Number(re.exec(w)?.[1] ?? NaN);
  const bad = num(/Non-2xx or 3xx responses: (\d+)/);
  if (bad > 0) throw new Error(`wrk got ${bad} non-2xx responses:\n${w}`);
  return { requests: num(/(\d+) requests in/), reqPerSec: num(/Requests\/sec:\s*([\d.]+)/) };
}

/** Connections and per-request delay for a target rate (rate ≈ conns × 1000 / (delay + latency)). */
async function load(rate) {
  if (rate === 0) return { conns: 16, delayMs: 0 };
  const conns = rate <= 5000 ? 64 : rate <= 10000 ? 128 : 256;
  let delayMs = Math.max(1, Math.round((conns * 1000) / rate));
  const got = await wrkRun(conns, delayMs, 2);
  const latencyMs = Math.max(0, (conns * 1000) / got.reqPerSec - delayMs);
  delayMs = Math.max(1, Math.round((conns * 1000) / rate - latencyMs));
  return { conns, delayMs };
}

async function step(source, mode, rate, { conns, delayMs }) {
  const filter = `tcp port ${PORT}`;
  const td = startChild('tcpdump', ['-i', 'lo', '-n', '--immediate-mode', '-B', '131072', '-s', '128', '-w', '/dev/null', filter], { ready: 'listening on' });
  await td.ready;
  let delivered = 0, records = 0, incomplete = 0;
  const pipeline = mode === 'pipeline' ? new Pipeline({ frames: false, onRecord: (r) => { records++; if (r.incomplete) incomplete++; } }) : undefined;
  const sink = pipeline ? (p) => { delivered++; pipeline.packet(p); } : () => { delivered++; };
  const cap = source === 'tc'
    ? new TcCapture({ interfaces: ['lo'], directions: ['ingress'], filter: { ports: [PORT] }, ringBytes: tcRingMb << 20 }, sink)
    : new LiveCapture({ interfaces: ['lo'], filter, bufferBytes: pcapBufferMb << 20 }, sink);
  if (source === 'pcap') cap.start();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const ticker = pipeline ? setInterval(() => pipeline.tick(cap.now()), 100) : undefined;
  const { requests, reqPerSec } = await wrkRun(conns, delayMs, duration);
  await sleep(1000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const k = source === 'tc' ? cap.counters() : undefined;
  if (ticker) clearInterval(ticker);
  if (source === 'tc') cap.close(); else cap.stop();
  pipeline?.finish();
  await td.stop('SIGINT');
  const out = td.output();
  const tcpdump = Number(/(\d+) packets? captured/.exec(out)?.[1] ?? NaN);
  const tcpdumpDropped = Number(/(\d+) packets? dropped by kernel/.exec(out)?.[1] ?? NaN);
  const lost = k ? k.lost + k.readFail : tcpdump - delivered;
  return {
    source, mode, targetRate: rate || 'max', conns, delayMs, reqPerSec, requests, tcpdumpPackets: tcpdump, tcpdumpDropped,
    kernelSeen: k ? k.seen - k.filtered : undefined, delivered, lost, lossPct: (100 * lost) / (k ? k.seen - k.filtered : tcpdump),
    packetsPerSec: Math.round(delivered / duration),
    records: pipeline ? records : undefined, incompleteRecords: pipeline ? incomplete : undefined,
    captureCpuPct: Math.round((100 * (cpu.user + cpu.system)) / 1e6 / seconds),
    rssMb: Math.round(process.memoryUsage.rss() / 2 ** 20),
  };
}

const server = startChild(process.execPath, [join(here, 'servers/http1.mjs'), '--port', String(PORT)], { ready: 'listening on' });
const results = [];
try {
  await server.ready;
  for (const mode of modes) {
    for (const rate of rates) {
      const l = await load(rate);
      for (const source of sources) {
        const r = await step(source, mode, rate, l);
        results.push(r);
        if (!json) {
          console.log(`${r.source.padEnd(4)} ${r.mode.padEnd(8)} target ${String(r.targetRate).padStart(6)} req/s: ${r.reqPerSec.toFixed(0).padStart(6)} req/s, `
            + `${r.packetsPerSec} packets/s delivered, ${r.delivered} delivered, tcpdump ${r.tcpdumpPackets} (dropped ${r.tcpdumpDropped}), `
            + (r.kernelSeen !== undefined ? `kernel saw ${r.kernelSeen}, ` : '')
            + `lost ${r.lost} (${r.lossPct.toFixed(3)} %)`
            + (r.records !== undefined ? `, ${r.records} records (${r.incompleteRecords} incomplete) for ${r.requests} requests` : '')
            + `, capture process ${r.captureCpuPct} % CPU, RSS ${r.rssMb} MB`);
        }
        await sleep(500);
      }
    }
  }
} finally {
  await server.stop('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
if (json) console.log(JSON.stringify({ date: new Date().toISOString(), duration, port: PORT, tcRingMb, pcapBufferMb, results }, null, 2));
process.exit(0);
