// npm run bench:loop — the run-and-verify loop and the MCP server (issue 7). Needs root (libpcap
// on lo) and wrk; the demo part also needs PostgreSQL 15 (examples/demo/test.mjs).
//   1. drain: how long Recorder.drain() takes to prove every packet sent before it was decoded
//      (a marker datagram, src/live/barrier.ts): on an idle lo, and while wrk offers load;
//   2. tapwire run on the demo's test suite: the command's own time, and what the loop adds after
//      the command exits (drain, verify, record the run) — the figure a fixed sleep would replace;
//   3. tapwire mcp over stdio: tool-call latency and result size (tokens ≈ JSON chars / 4) on
//      the demo and on the largest recorded captures.
//   node bench/loop.mjs [--only drain|run|mcp] [--runs N]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Recorder } from '../dist/live/recorder.js';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 5;
if (process.getuid?.() !== 0) { console.error('bench:loop: needs root (libpcap on lo)'); process.exit(2); }

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const ms = (x) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
const median = (xs) => pct(xs, 50);

async function benchDrain() {
  // The server in its own process, as a service under test would be: the recorder's thread only captures.
  const server = spawn(process.execPath, ['-e', "require('http').createServer((q,s)=>s.end('ok')).listen(18940,'127.0.0.1',()=>console.log('ready'))"]);
  await new Promise((r) => server.stdout.once('data', r));
  let records = 0;
  const rec = Recorder.start({ interfaces: ['lo'], filter: 'tcp port 18940', bodyLimit: 4096, onRecord: () => records++ });
  const sample = async (n, gapMs = 0) => {
    const t = [];
    for (let i = 0; i < n; i++) {
      if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      const t0 = performance.now();
      const d = await rec.drain();
      if (!d.proven) throw new Error('drain not proven on lo');
      t.push(performance.now() - t0);
    }
    return t;
  };
  try {
    const idle = await sample(200);
    console.log(`drain, idle lo:           p50 ${ms(median(idle))}, p99 ${ms(pct(idle, 99))}, max ${ms(Math.max(...idle))} (200 drains)`);
    if (spawnSync('sh', ['-c', 'command -v wrk']).status === 0) {
      const wrk = spawn('wrk', ['-t1', '-c20', '-d8s', 'http://127.0.0.1:18940/']);
      let out = '';
      wrk.stdout.on('data', (d) => (out += d));
      await new Promise((r) => setTimeout(r, 1000));
      const before = records;
      const t0 = performance.now();
      const busy = await sample(100, 50);
      const rate = ((records - before) / ((performance.now() - t0) / 1000)).toFixed(0);
      await new Promise((r) => wrk.on('exit', r));
      const made = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0).toFixed(0);
      console.log(`drain, lo under wrk load: p50 ${ms(median(busy))}, p99 ${ms(pct(busy, 99))}, max ${ms(Math.max(...busy))} (100 drains, 50 ms apart, while ${rate} exchanges/s were decoded; wrk made ${made}/s)`);
    }
  } finally {
    rec.stop();
    server.kill();
  }
}

/** `tapwire run` on the demo's test suite: what the loop adds after the command exits. */
async function benchRun() {
  const alone = [], wall = [], after = [], phases = [];
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now();
    const a = spawnSync(process.execPath, ['examples/demo/test.mjs'], { encoding: 'utf8' });
    if (a.status !== 0) throw new Error(`demo test failed: ${a.stdout}${a.stderr}`);
    alone.push(performance.now() - t0);
    t0 = performance.now();
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'run', '--quiet', '--format', 'json', '--spec', 'examples/specs/demo.yaml',
      '--filter', 'tcp and (port 8080 or port 8081 or host 127.0.0.4)', '--', process.execPath, 'examples/demo/test.mjs'],
    { encoding: 'utf8', env: { ...process.env, TAPWIRE_DATA_DIR: '/tmp/tapwire-bench-loop' } });
    wall.push(performance.now() - t0);
    if (r.status !== 1) throw new Error(`tapwire run exited ${r.status} (expected 1: the demo's verdict fails): ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    if (out.snapshot?.drained !== 'proven') throw new Error('drain not proven');
    const t = out.timings;
    phases.push(t);
    after.push(t.stop + t.read + t.verify + t.keep);
  }
  const m = (k) => median(phases.map((t) => t[k]));
  console.log(`tapwire run, demo test suite (${RUNS} runs, medians): the test alone ${ms(median(alone))}; under tapwire run ${ms(median(wall))} in all`);
  console.log(`  before the command: capture open ${ms(m('start'))}; the command ${ms(m('command'))}`);
  console.log(`  after it exits, to the verdict: ${ms(median(after))} (drain and stop ${ms(m('stop'))}, read ${ms(m('read'))}, verify ${ms(m('verify'))}, keep ${ms(m('keep'))})`);
}

/** `tapwire mcp` over stdio: tool latency and result size. */
async function benchMcp() {
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StdioClientTransport } = await import('@modelcontextprotocol/sdk/client/stdio.js');
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: ['dist/cli/main.js', 'mcp'], stderr: 'ignore' }));
  const big = 'bench/.cache/http1-small-100m.pcap';
  const calls = [
    ['verify', { capture: 'pcaps/demo/demo.pcap' }, 'demo, first call (decodes)'],
    ['verify', { capture: 'pcaps/demo/demo.pcap', spec: 'examples/specs/demo.yaml' }, 'demo with its spec (cached capture)'],
    ['list_flows', { capture: 'pcaps/http1/mix.pcap', limit: 1000 }, 'mix.pcap, 1000 rows asked'],
    ['get_flow', { capture: 'pcaps/http1/mix.pcap', id: null, include_bodies: true }, 'one mix flow with bodies'],
    ...(existsSync(big) ? [
      ['analyze_capture', { capture: big, limit: 50 }, '100 MB, 103 788 flows (decodes)'],
      ['list_flows', { capture: big, limit: 1000, filter: 'response.status == 200' }, '100 MB, filtered page (cached)'],
      ['verify', { capture: big }, '100 MB, all detectors (cached)'],
    ] : []),
  ];
  let firstId;
  let maxTokens = 0;
  for (const [name, a, what] of calls) {
    if (a.id === null) a.id = firstId;
    const t0 = performance.now();
    const r = await client.callTool({ name, arguments: a }, undefined, { timeout: 600_000 });
    const t = performance.now() - t0;
    if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content)}`);
    if (name === 'list_flows' && !firstId) firstId = r.structuredContent.flows?.[0]?.id;
    const tok = Math.ceil(JSON.stringify(r).length / 4);
    maxTokens = Math.max(maxTokens, tok);
    const sc = r.structuredContent;
    const rows = sc.flows ? `${sc.flows.length} rows${sc.next ? ', next cursor' : ''}` : sc.verdict ? `${sc.verdict}, ${sc.findings.length} findings` : '';
    console.log(`mcp ${name.padEnd(15)} ${what.padEnd(38)} ${ms(t).padStart(9)}  ${String(tok).padStart(6)} tokens  ${rows}${sc.truncated ? ' (truncated: stated)' : ''}`);
  }
  console.log(`mcp: largest result ${maxTokens} tokens (bound 20 000)${existsSync(big) ? '' : `; ${big} absent: run npm run bench once to record it`}`);
  await client.close();
}

const benches = { drain: benchDrain, run: benchRun, mcp: benchMcp };
for (const [name, fn] of Object.entries(benches)) {
  if (only && only !== name) continue;
  await fn();
}
process.exit(0);
