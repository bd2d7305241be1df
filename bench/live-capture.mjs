// How many packets/s LiveCapture (cap, libpcap) delivers without loss on lo under wrk load, and
// where it starts to lose packets. cap has no pcap_stats, so loss is counted against tcpdump
// capturing the same traffic with the same filter at the same time (and its own kernel drops are
// reported, so a lossy oracle shows), with lo's /sys counters beside it.
//
//   node bench/live-capture.mjs                              steps 5k, 10k, 20k req/s and unlimited, 10 s each, both modes
//   node bench/live-capture.mjs --rates 5000 --duration 60   the figure: 5k requests/s for 60 s
//   node bench/live-capture.mjs --mode pipeline --json       one mode, JSON out
//   node bench/live-capture.mjs --dist /tmp/build            compiled tapwire elsewhere than dist/
//   node bench/live-capture.mjs --buffer-mb 256 --nice -10   a larger kernel ring; the capture process at a higher priority
//
// Modes: `count` delivers packets to a sink that only counts them (what cap itself can do);
// `pipeline` feeds a real Pipeline (frames: false, ticked every 100 ms), the agent's case, and
// counts records against wrk's completed requests. wrk loads bench/servers/http1.mjs with every
// response /small (~300 B), the packet-rate-bound case; a rate is held with wrk's per-request
// delay() over enough connections. Needs root, wrk and tcpdump. Everything runs on this machine's
// two cores: wrk, the server, tcpdump and the capture process compete for them.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { requireTools, sleep, startChild } from '../scripts/record/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const PORT = Number(opt('--port', 18930));
const duration = Number(opt('--duration', 10));
const rates = opt('--rates', '5000,10000,20000,0').split(',').map(Number); // 0: as fast as wrk goes
const modes = opt('--mode', 'count,pipeline').split(',');
const dist = resolve(opt('--dist', join(here, '..', 'dist')));
const json = args.includes('--json');
const bufferMb = opt('--buffer-mb');
const niceness = Number(opt('--nice', 0));
const wrkThreads = Number(opt('--wrk-threads', 1));

if (process.getuid?.() !== 0) {
  console.error('bench/live-capture: needs root (libpcap on lo)');
  process.exit(2);
}
requireTools('wrk', 'tcpdump');
if (niceness) os.setPriority(niceness);
const { LiveCapture, DEFAULT_LIVE_BUFFER_BYTES } = await import(pathToFileURL(join(dist, 'capture/live.js')).href);
const { Pipeline } = await import(pathToFileURL(join(dist, 'pipeline/pipeline.js')).href);

const tmp = mkdtempSync(join(tmpdir(), 'tapwire-live-bench-'));
// Every request /small; with a delay, each connection waits that long before its next request.
const lua = join(tmp, 'rate.lua');
writeFileSync(lua, `
local req = wrk.format("GET", "/small", { ["Host"] = "127.0.0.1", ["User-Agent"] = "wrk (tapwire live bench)" })
local ms = tonumber(os.getenv("TAPWIRE_DELAY_MS") or "0")
function request() return req end
if ms > 0 then function delay() return ms end end
`);

const loRx = () => Number(readFileSync('/sys/class/net/lo/statistics/rx_packets', 'utf8'));

/**
 * wrk settings for a target request rate: each of `conns` connections waits `delayMs` before its
 * next request, so rate ≈ conns × 1000 / (delay + latency). The latency is measured by a 2 s
 * calibration run (no capture), and the delay set from it.
 */
async function load(rate) {
  if (rate === 0) return { conns: 16, delayMs: 0 };
  const conns = rate <= 5000 ? 64 : rate <= 10000 ? 128 : 256;
  let delayMs = Math.max(1, Math.round((conns * 1000) / rate));
  const got = await wrkRun(conns, delayMs, 2);
  const latencyMs = Math.max(0, (conns * 1000) / got.reqPerSec - delayMs);
  delayMs = Math.max(1, Math.round((conns * 1000) / rate - latencyMs));
  return { conns, delayMs };
}

async function wrkRun(conns, delayMs, seconds) {
  const wrk = startChild('wrk', [`-t${wrkThreads}`, `-c${conns}`, `-d${seconds}s`, '-s', lua, `http://127.0.0.1:${PORT}/`], {
    spawn: { env: { ...process.env, TAPWIRE_DELAY_MS: String(delayMs) } },
  });
  await wrk.exited;
  const w = wrk.output();
  const num = (re) => Number(re.exec(w)?.[1] ?? NaN);
  const bad = num(/Non-2xx or 3xx responses: (\d+)/);
  if (bad > 0) throw new Error(`wrk got ${bad} non-2xx responses:\n${w}`);
  return { requests: num(/(\d+) requests in/), reqPerSec: num(/Requests\/sec:\s*([\d.]+)/) };
}

async function step(mode, rate) {
  const { conns, delayMs } = await load(rate);
  const filter = `tcp port ${PORT}`;
  const td = startChild('tcpdump', ['-i', 'lo', '-n', '--immediate-mode', '-B', '131072', '-s', '128', '-w', '/dev/null', filter], { ready: 'listening on' });
  await td.ready;
  let delivered = 0, records = 0, incomplete = 0, maxLagMs = 0;
  let pipeline;
  let cap;
  if (mode === 'pipeline') {
    pipeline = new Pipeline({
      frames: false,
      onRecord: (r) => { records++; if (r.incomplete) incomplete++; const lag = (cap.now() - r.end) * 1000; if (lag > maxLagMs) maxLagMs = lag; },
    });
  }
  const bufferBytes = bufferMb ? Number(bufferMb) * 1024 * 1024 : undefined;
  cap = new LiveCapture({ interfaces: ['lo'], filter, bufferBytes }, pipeline ? (p) => { delivered++; pipeline.packet(p); } : () => { delivered++; });
  const rx0 = loRx();
  const o0 = process.hrtime.bigint();
  cap.start();
  const openMs = Number(process.hrtime.bigint() - o0) / 1e6;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const ticker = pipeline ? setInterval(() => pipeline.tick(cap.now()), 100) : undefined;
  const { requests, reqPerSec } = await wrkRun(conns, delayMs, duration);
  await sleep(1000); // the last packets, and the connections wrk closes
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  cap.stop();
  if (ticker) clearInterval(ticker);
  pipeline?.finish();
  const counters = cap.counters();
  const rx = loRx() - rx0;
  await td.stop('SIGINT');
  const out = td.output();
  const tcpdump = Number(/(\d+) packets? captured/.exec(out)?.[1] ?? NaN);
  const tcpdumpDropped = Number(/(\d+) packets? dropped by kernel/.exec(out)?.[1] ?? NaN);
  const lost = tcpdump - delivered;
  return {
    mode, targetRate: rate || 'max', bufferMb: (bufferBytes ?? DEFAULT_LIVE_BUFFER_BYTES) / 2 ** 20, openMs: Math.round(openMs), conns, delayMs, reqPerSec, requests,
    tcpdumpPackets: tcpdump, tcpdumpDropped, loRxPackets: rx,
    seen: counters.interfaces[0].seen, delivered, lost, lossPct: (100 * lost) / tcpdump,
    packetsPerSec: Math.round(delivered / duration), truncated: counters.truncated,
    records: pipeline ? records : undefined, incompleteRecords: pipeline ? incomplete : undefined, maxRecordLagMs: pipeline ? Math.round(maxLagMs) : undefined,
    captureCpuPct: Math.round((100 * (cpu.user + cpu.system)) / 1e6 / seconds),
  };
}

const server = startChild(process.execPath, [join(here, 'servers/http1.mjs'), '--port', String(PORT)], { ready: 'listening on' });
const results = [];
try {
  await server.ready;
  for (const mode of modes) {
    for (const rate of rates) {
      const r = await step(mode, rate);
      results.push(r);
      if (!json) {
        console.log(`${r.mode.padEnd(8)} target ${String(r.targetRate).padStart(6)} req/s: ${r.reqPerSec.toFixed(0).padStart(6)} req/s, `
          + `${r.packetsPerSec} packets/s delivered, ${r.delivered} of ${r.tcpdumpPackets} (tcpdump dropped ${r.tcpdumpDropped}), `
          + `lost ${r.lost} (${r.lossPct.toFixed(3)} %)`
          + (r.records !== undefined ? `, ${r.records} records (${r.incompleteRecords} incomplete) for ${r.requests} requests, max record lag ${r.maxRecordLagMs} ms` : '')
          + `, capture process ${r.captureCpuPct} % CPU`);
      }
      await sleep(500);
    }
  }
} finally {
  await server.stop('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
if (json) console.log(JSON.stringify({ duration, port: PORT, results }, null, 2));
process.exit(0);
