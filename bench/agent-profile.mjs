// node bench/agent-profile.mjs — where the live agent's CPU goes (issue 18). Runs the agent as a
// user would (dist/cli/main.js agent --interface lo) under `node --cpu-prof`, drives it with wrk at
// --rate requests/s for --seconds against bench/servers/http1.mjs, stops it with SIGINT (the
// profile is written at exit), and prints the agent's self time by pipeline stage and its
// hottest functions. Startup and shutdown are in the profile too: they are small beside the load.
//   node bench/agent-profile.mjs [--source ebpf|pcap] [--rate 4000] [--seconds 15] [--json]
// Needs root and wrk; --source ebpf needs the addon (npm run build:native).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, startChild } from '../scripts/record/lib.mjs';

const opt = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const SOURCE = opt('--source', 'ebpf'), RATE = Number(opt('--rate', '4000')), SECONDS = Number(opt('--seconds', '15'));
const PORT = 18960, API_PORT = 18961;
if (process.getuid?.() !== 0) { console.error('agent-profile: needs root (capture on lo)'); process.exit(2); }
if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) { console.error('agent-profile: needs wrk'); process.exit(2); }

/** Pipeline stages by module path (dist/… and node_modules/…), first match wins. */
const STAGES = [
  ['capture', /dist\/capture\/(tc|live|sources|live\.js)/],
  ['process attribution', /dist\/(capture\/owners|agent\/processes|enrich\/process)/],
  ['reassembly', /dist\/reassembly\//],
  ['HTTP decode', /http-parser-js|dist\/protocols\/http1\//],
  ['pairing and records', /dist\/(protocols\/pairing|flows\/)/],
  ['packet decode', /dist\/decode\//],
  ['store (encode, write, index)', /msgpackr|dist\/store\/|node:zlib|crc32|writeBuffers/],
  ['API and feed', /dist\/(api|service)\//],
  ['pipeline', /dist\/pipeline\//],
  ['Buffer', /node:(internal\/)?buffer|latin1Slice|utf8Slice|FastBuffer|createUnsafeBuffer/],
  ['garbage collector', /^\(garbage collector\)/],
  ['module loading (startup)', /node:internal\/modules|compileSourceTextModule/],
  ['idle', /^\(idle\)|^\(program\)/],
];

const dir = mkdtempSync(join(tmpdir(), 'tapwire-agent-profile-'));
const server = startChild(process.execPath, ['bench/servers/http1.mjs', '--port', String(PORT)], { ready: 'listening on' });
const agent = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, 'dist/cli/main.js', 'agent', '--source', SOURCE, '--interface', 'lo',
  '--filter', `tcp port ${PORT}`, '--listen', `127.0.0.1:${API_PORT}`, '--data-dir', join(dir, 'data'), '--retention', '4GiB/1h', '--body-limit', '1024', '--tls', 'off'],
{ stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
agent.stderr.on('data', (d) => (log += d));
try {
  await server.ready;
  for (let i = 0; i < 300 && !/API on/.test(log); i++) await sleep(100);
  if (!/API on/.test(log)) throw new Error(`the agent did not start:\n${log}`);
  const connections = Math.max(10, Math.ceil(RATE / 50));
  const delay = Math.max(1, Math.round((connections * 1000) / RATE - 2.5));
  const wrk = spawnSync('wrk', ['-t2', `-c${connections}`, `-d${SECONDS}s`, '-s', 'bench/paced.lua', `http://127.0.0.1:${PORT}/`, '--', String(delay)], { encoding: 'utf8' });
  const made = Number(/(\d+) requests in/.exec(wrk.stdout)?.[1]);
  await sleep(1500);
  const exited = new Promise((r) => agent.once('exit', r));
  agent.kill('SIGINT');
  await exited;
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const byNode = new Map();
  p.samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
  const stages = new Map(), fns = new Map();
  let busy = 0;
  for (const n of p.nodes) {
    const ms = byNode.get(n.id) ?? 0;
    if (!ms) continue;
    const where = n.callFrame.url.replace(/.*\/(dist|node_modules)\//, '$1/') || n.callFrame.functionName;
    const stage = STAGES.find(([, re]) => re.test(where))?.[0] ?? 'other';
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    if (stage !== 'idle') busy += ms;
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${where}:${n.callFrame.lineNumber + 1}`;
    fns.set(fn, (fns.get(fn) ?? 0) + ms);
  }
  const per1k = (ms) => Math.round((ms / made) * 1000 * 10) / 10;
  const rows = [...stages].filter(([s]) => s !== 'idle').sort((a, b) => b[1] - a[1]);
  const top = [...fns].filter(([f]) => !/^\((idle|program)\)/.test(f)).sort((a, b) => b[1] - a[1]).slice(0, 15);
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ source: SOURCE, rate: RATE, seconds: SECONDS, made, busyMs: Math.round(busy), stagesMsPer1k: Object.fromEntries(rows.map(([s, ms]) => [s, per1k(ms)])) }));
  } else {
    console.log(`agent (--source ${SOURCE}), ${made} requests in ${SECONDS} s at ${RATE} offered: ${Math.round(busy)} ms on its main thread, ${per1k(busy)} ms per 1,000 requests\n`);
    console.log('| stage | ms per 1,000 requests | share |\n|---|---|---|');
    for (const [s, ms] of rows) console.log(`| ${s} | ${per1k(ms)} | ${((ms / busy) * 100).toFixed(1)} % |`);
    console.log('\nhottest functions (self time, ms per 1,000 requests):');
    for (const [f, ms] of top) console.log(`  ${String(per1k(ms)).padStart(6)}  ${f}`);
  }
} finally {
  if (agent.exitCode === null) agent.kill('SIGKILL');
  await server.stop('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
