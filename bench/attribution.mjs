// Process attribution's cost (issue 18): the live agent's CPU per 1,000 connections with
// attribution on (src.process / dst.process on every record: the connect and accept tracepoints of
// native/conn.bpf.c through the addon, the owner map, cgroup → container) and off, same load.
//
//   npm run build && node bench/attribution.mjs [--connections 5000] [--rounds 2] [--concurrency 16] [--json]
//
// Each round starts one agent per mode (Agent.start from dist, in a child: `--interface lo`, a
// filter on the server's port) and one Node http client that makes `--connections` requests, each
// on a new connection (agent: false), to a Node http server on loopback. The agent's CPU (user +
// system, /proc/<pid>/stat) from just before the load until its records are all stored is divided by
// the connections. The tracepoint programs run in the connecting and accepting processes' context,
// not the agent's: their kernel time is reported apart (run_time_ns, with kernel.bpf_stats_enabled).
// Needs root and `npm run build && npm run build:native`.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };

if (args[0] === '--agent') {
  // The child: one agent, attribution on or off, until SIGTERM.
  const { Agent } = await import(pathToFileURL(join(root, 'dist', 'agent', 'index.js')).href);
  const dataDir = mkdtempSync(join(tmpdir(), 'tapwire-attr-bench-'));
  const agent = await Agent.start({
    interfaces: ['lo'], filter: `tcp port ${args[2]}`, listen: { host: '127.0.0.1', port: 0 }, dataDir,
    retention: { maxBytes: 1 << 30, maxAgeSec: 3600 }, bodyLimit: 4096, redactKey: Buffer.from('bench'),
    processes: args[1] === 'on', onProcesses: (l) => process.stderr.write(`agent: ${l}\n`),
  });
  process.stdout.write(`ready ${agent.address}\n`);
  process.once('SIGTERM', () => { void agent.stop().then(() => { rmSync(dataDir, { recursive: true, force: true }); process.exit(0); }); });
} else {
  await main();
}

async function main() {
  const connections = Number(opt('--connections', 5000));
  const rounds = Number(opt('--rounds', 2));
  const concurrency = Number(opt('--concurrency', 16));
  const json = args.includes('--json');
  if (process.getuid?.() !== 0) throw new Error('bench/attribution.mjs needs root (capture, tracepoints)');
  const tck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const server = spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = Number(await line(server));
  const statsWas = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
  writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
  const results = { on: [], off: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 ? ['on', 'off'] : ['off', 'on']) results[mode].push(await round(mode, port, connections, concurrency, tck));
    }
  } finally {
    writeFileSync('/proc/sys/kernel/bpf_stats_enabled', statsWas);
    server.kill('SIGKILL');
  }
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  const summary = Object.fromEntries(['off', 'on'].map((m) => [m, {
    cpuMsPer1k: med(results[m].map((x) => x.cpuMsPer1k)), userMsPer1k: med(results[m].map((x) => x.userMsPer1k)), sysMsPer1k: med(results[m].map((x) => x.sysMsPer1k)),
    flows: results[m].map((x) => x.flows), withProcess: results[m].map((x) => x.withProcess), kernelUsPer1k: med(results[m].map((x) => x.kernelUsPer1k)),
  }]));
  const out = { date: new Date().toISOString(), connections, rounds, concurrency, summary, rounds_: results };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log(`${connections} connections per round (one HTTP request each), ${rounds} rounds, ${concurrency} at once; agent CPU per 1,000 connections (median):`);
    for (const m of ['off', 'on']) {
      const s = summary[m];
      console.log(`  attribution ${m.padEnd(3)}: ${s.cpuMsPer1k.toFixed(0)} ms (user ${s.userMsPer1k.toFixed(0)}, system ${s.sysMsPer1k.toFixed(0)}); records ${s.flows.join(', ')}, with both ends' process ${s.withProcess.join(', ')}; conn.bpf.o kernel time ${s.kernelUsPer1k.toFixed(0)} µs`);
    }
  }
}

async function round(mode, port, connections, concurrency, tck) {
  const agent = spawn(process.execPath, [fileURLToPath(import.meta.url), '--agent', mode, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const base = (await line(agent)).replace(/^ready /, '');
  await sleep(1000);
  const cpu0 = cpuOf(agent.pid);
  const k0 = connKernelNs();
  const client = spawn(process.execPath, ['-e', `
    const http = require('node:http');
    const [port, n, c] = process.argv.slice(1).map(Number);
    let started = 0, done = 0;
    const one = () => { if (started >= n) return; started++;
      http.get({ host: '127.0.0.1', port, path: '/x', agent: false }, (r) => { r.resume(); r.on('end', () => { if (++done === n) console.log(done); else one(); }); }); };
    for (let i = 0; i < c; i++) one();`, String(port), String(connections), String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await line(client);
  // Until the agent has stored them all (or stops getting more).
  let flows = 0;
  for (let i = 0, last = -1; i < 60 && flows < connections; i++) {
    await sleep(500);
    last = flows;
    flows = (await all(base, 'http')).length;
    if (flows === last && i > 4) break;
  }
  const cpu1 = cpuOf(agent.pid);
  const k1 = connKernelNs();
  const withProcess = (await all(base, 'http')).filter((f) => f.src.process && f.dst.process).length;
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  const per1k = (ticks) => (ticks * 1000 / tck) * 1000 / connections;
  return {
    mode, flows, withProcess, userMsPer1k: per1k(cpu1.user - cpu0.user), sysMsPer1k: per1k(cpu1.sys - cpu0.sys),
    cpuMsPer1k: per1k(cpu1.user + cpu1.sys - cpu0.user - cpu0.sys), kernelUsPer1k: (k1 - k0) / 1000 * 1000 / connections,
  };
}

/** The conn.bpf.o programs' run_time_ns summed over the host (bpftool), 0 when it cannot say. */
function connKernelNs() {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout).filter((p) => /^tp_(sock_state|accept4?_exit|owner_exec)$/.test(p.name ?? '')).reduce((s, p) => s + (p.run_time_ns ?? 0), 0);
  } catch {
    return 0;
  }
}

async function all(base, filter) {
  const flows = new Map();
  let cursor;
  do {
    const res = await fetch(`${base}/api/flows?since=0&limit=1000&filter=${encodeURIComponent(filter)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    const page = await res.json();
    for (const f of page.flows) flows.set(f.id, f);
    cursor = page.next;
  } while (cursor);
  return [...flows.values()];
}

function cpuOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]), sys: Number(rest[12]) };
}

function line(child) {
  return new Promise((res, rej) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const i = out.indexOf('\n'); if (i >= 0) res(out.slice(0, i).trim()); });
    child.once('exit', (c) => rej(new Error(`exited ${c} before a line: ${out}`)));
  });
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
