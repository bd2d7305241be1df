// npm run bench:live — the live agent under load (issue 6). On loopback, with the load generator
// (wrk), the HTTP server and the agent on this machine's two cores:
//   1. a steady run at --rate requests/s (default 5000) for --seconds (default 60): transactions
//      made (wrk's count) against transactions the agent captured (its API), and the agent's RSS
//      sampled every 5 s from its own /metrics;
//   2. a ramp of 10 s steps at rising rates to find the drop point: the first rate at which the
//      agent captures fewer transactions than were made.
//   node bench/live.mjs [--rate 5000] [--seconds 60] [--no-ramp]
// With --tls (issue 17) the server speaks HTTPS and the agent runs --tls uprobe: the transactions
// counted are those decrypted through the uprobes (wrk's libssl and the server's node are both
// probed; each exchange is given once), so the drop point is decrypted requests/s before loss,
// and the probes' own loss counter (tapwire_tls_lost_events_total) is reported beside it.
//   node bench/live.mjs --tls [--rate 2000] [--seconds 30]
// Needs root (libpcap on lo) and wrk; --tls also needs the addon (npm run build:native).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, sleep } from '../scripts/record/lib.mjs';

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const TLS = process.argv.includes('--tls');
const RATE = arg('--rate', TLS ? 2000 : 5000), SECONDS = arg('--seconds', TLS ? 30 : 60);
const PORT = 18930, API_PORT = 18931;
const API = `http://127.0.0.1:${API_PORT}`;
if (process.getuid?.() !== 0) { console.error('bench:live: needs root (libpcap on lo)'); process.exit(2); }
if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) { console.error('bench:live: needs wrk (apt-get install wrk)'); process.exit(2); }

/**
 * Connections and per-connection delay that offer `rate` requests/s. Each cycle is the delay plus
 * about 2.5 ms of request time and wrk scheduling on this machine, measured: without that
 * allowance, 5000 offered gave 4050 made.
 */
function pacing(rate) {
  const connections = Math.max(10, Math.min(400, Math.ceil(rate / 50)));
  return { connections, delayMs: Math.max(1, Math.round((connections * 1000) / rate - 2.5)) };
}

/** wrk in the background (the RSS sampler keeps running), resolving with the requests it made. */
function load(rate, seconds) {
  const { connections, delayMs } = pacing(rate);
  const wrk = spawn('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '-s', 'bench/paced.lua', `${TLS ? 'https' : 'http'}://127.0.0.1:${PORT}/`, '--', String(delayMs)]);
  let out = '';
  wrk.stdout.on('data', (d) => (out += d));
  wrk.stderr.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => wrk.on('exit', () => {
    const made = Number(/(\d+) requests in/.exec(out)?.[1]);
    if (made) resolve(made);
    else reject(new Error(`wrk failed: ${out}`));
  }));
}

async function count(since) {
  let n = 0, cursor = null;
  do {
    const u = new URL('/api/flows', API);
    u.searchParams.set('since', String(since));
    u.searchParams.set('limit', '1000');
    u.searchParams.set('filter', TLS ? 'http && !incomplete && record.tls.via == "uprobe"' : 'http && !incomplete');
    if (cursor) u.searchParams.set('cursor', cursor);
    const page = await (await fetch(u)).json();
    n += page.flows.length;
    cursor = page.next;
  } while (cursor);
  return n;
}

/** A counter from the agent's /metrics (0 when absent). */
async function metric(name) {
  const text = await (await fetch(`${API}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
}

async function rss() {
  const text = await (await fetch(`${API}/metrics`)).text();
  return Number(/^tapwire_process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? NaN) / 1e6;
}

async function run(rate, seconds, samples) {
  const since = Date.now() / 1000;
  const lost0 = TLS ? await metric('tapwire_tls_lost_events_total') : 0;
  const sampler = samples && setInterval(async () => samples.push({ t: Math.round(Date.now() / 1000 - since), rssMB: await rss() }), 5000);
  const made = await load(rate, seconds);
  if (sampler) clearInterval(sampler);
  await sleep(1500); // the agent promises 1 s; give it that, and then some
  const captured = await count(since - 1);
  const probeLost = TLS ? { probeEventsLost: (await metric('tapwire_tls_lost_events_total')) - lost0 } : {};
  return { rate, seconds, made, captured, lost: made - captured, madePerSec: Math.round(made / seconds), ...probeLost };
}

const dir = mkdtempSync(join(tmpdir(), 'tapwire-live-bench-'));
if (TLS) {
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'),
    '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  if (r.status !== 0) { console.error('bench:live --tls: openssl could not make a certificate'); process.exit(2); }
}
const server = startChild(process.execPath, ['bench/servers/http1.mjs', '--port', String(PORT), ...(TLS ? ['--tls', dir] : [])], { ready: 'listening on' });
const agent = startChild(process.execPath, ['dist/cli/main.js', 'agent', '--interface', 'lo', '--filter', `tcp port ${PORT}`, '--tls', TLS ? 'uprobe' : 'off',
  '--listen', `127.0.0.1:${API_PORT}`, '--data-dir', join(dir, 'data'), '--retention', '4GiB/1h', '--body-limit', '1024'], { ready: 'API on' });
try {
  await Promise.all([server.ready, agent.ready]);
  const samples = [];
  const steady = await run(RATE, SECONDS, samples);
  console.log(JSON.stringify({ mode: TLS ? 'https, decrypted through uprobes' : 'http', steady, rssMB: samples.map((x) => `${x.t}s ${x.rssMB.toFixed(0)}`).join(', ') }));
  if (!process.argv.includes('--no-ramp')) {
    const ramp = [];
    for (const rate of TLS ? [1000, 2000, 4000, 6000, 8000, 10000, 12000] : [5000, 6000, 7000, 8000, 10000, 15000]) {
      const r = await run(rate, 10);
      ramp.push(r);
      console.error(`bench:live: ${rate} rps offered, ${r.madePerSec} made/s, ${r.made} made, ${r.captured} captured`);
      if (r.lost > 0) break;
    }
    const drop = ramp.find((r) => r.lost > 0);
    console.log(JSON.stringify({ ramp, dropPoint: drop ? `${drop.madePerSec} requests/s (${drop.lost} of ${drop.made} lost)` : `none up to ${ramp.at(-1).madePerSec} requests/s` }));
  }
} finally {
  await agent.stop('SIGTERM');
  await server.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
