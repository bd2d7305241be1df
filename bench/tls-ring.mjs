// The TLS uprobes' figures (issue 17): ring-buffer events per second into JS with no loss, and
// the latency a TLS call gains while the probes are attached.
//
//   node bench/tls-ring.mjs                       both parts
//   node bench/tls-ring.mjs --calls 400000 --size 64 --gens 1,2 --json
//   node bench/tls-ring.mjs --requests 3000       the latency part with more requests
//   node bench/tls-ring.mjs --no-ring --no-drain --no-callcost --no-latency   the kernel cost only
//
// Events/s: native/build/tls-gen defines SSL_read with OpenSSL's signature and calls it in a loop,
// so every call runs the real path (uprobe, uretprobe, copy, ring buffer, poll thread, batch, JS
// parse, one TlsChunk event each) at a rate no real connection reaches on one core. `--gens`
// processes run at once; the rate is chunks received in JS over the time from the first
// generator's start to the last chunk, and the kernel's loss counter says whether any was lost.
// Latency: a child node process runs an https server and a keep-alive https client that makes
// `--requests` sequential requests (1 KiB body each way); its mean time per request is measured
// without probes and with the probes on node (the client and the server are both probed),
// alternating for `--rounds` rounds (and once more without), and the medians are compared. Per TLS call = added time per request ÷ SSL calls per request (from the
// probes' counter). Kernel cost: with kernel.bpf_stats_enabled on (turned on for that part if it is
// off, and put back), the programs' run_time_ns per probed call, beside this process's own CPU time
// (process.cpuUsage: user + system, what the agent is charged) over the same run, and the ratio:
// the kernel time runs in the probed processes and is charged to them, not to the agent. Once for
// tls-gen (`--calls` SSL_read calls) and once for `--requests` Node https requests.
// Needs root and `npm run build:native`; everything shares this machine's cores.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const calls = Number(opt('--calls', 500000));
const size = Number(opt('--size', 64));
const gens = opt('--gens', '1,2').split(',').map(Number);
const requests = Number(opt('--requests', 2000));
const rounds = Number(opt('--rounds', 3));
const json = args.includes('--json');
const dist = resolve(opt('--dist', join(root, 'dist')));

const { openTlsProbes, tlsProbesUnavailable } = await import(pathToFileURL(join(dist, 'capture', 'index.js')).href);
const why = tlsProbesUnavailable();
if (why.length) {
  console.error(`bench/tls-ring.mjs: cannot run: ${why.join('; ')}`);
  process.exit(2);
}
const gen = join(root, 'native', 'build', 'tls-gen');
if (!existsSync(gen)) {
  console.error('bench/tls-ring.mjs: native/build/tls-gen missing: npm run build:native');
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const run = (cmd, argv, opts = {}) => new Promise((res, rej) => {
  const c = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], ...opts });
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  c.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} exited ${code}`))));
  if (opts.input) c.stdin.end(opts.input);
  else c.stdin.end();
});

async function ringRate(n) {
  const probes = openTlsProbes({ targets: [gen], handleSignals: false, resolveConnections: false });
  let got = 0;
  let bytes = 0;
  let last = 0;
  probes.on('chunk', (c) => {
    got++;
    bytes += c.data.length;
    last = performance.now();
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: n }, () => run(gen, [String(calls), String(size), 'read'])));
  const genDone = performance.now();
  const expected = calls * n;
  const deadline = performance.now() + 10000;
  while (got < expected && performance.now() < deadline) {
    const c = probes.counters();
    if (got + c.lost >= expected) break;
    await sleep(20);
  }
  const c = probes.counters();
  probes.close();
  const secs = (last - t0) / 1000;
  return {
    generators: n, callsEach: calls, bytesPerCall: size, expected, received: got, lost: c.lost, batches: c.batches,
    seconds: +secs.toFixed(3), generatorSeconds: +((genDone - t0) / 1000).toFixed(3),
    eventsPerSec: Math.round(got / secs), mbPerSec: +(bytes / secs / 1e6).toFixed(1),
  };
}

// The ring → JS path's own capacity: JS is held (spawnSync) while the generators fill a 64 MiB
// ring, then the time to drain it into JS is measured. On this VM a uprobe+uretprobe pair costs a
// generator ~20 µs per call, so the producers, not the consumer, bound ringRate().
async function drainRate(n) {
  const probes = openTlsProbes({ targets: [gen], handleSignals: false, resolveConnections: false, ringBytes: 64 << 20 });
  let got = 0;
  let last = 0;
  probes.on('chunk', () => {
    got++;
    last = performance.now();
  });
  const each = Math.floor(calls / n);
  const r = spawnSync('sh', ['-c', Array.from({ length: n }, () => `${gen} ${each} ${size} read >/dev/null &`).join(' ') + ' wait']);
  if (r.status !== 0) throw new Error('tls-gen failed');
  const t0 = performance.now();
  const expected = each * n;
  const deadline = t0 + 20000;
  while (got + probes.counters().lost < expected && performance.now() < deadline) await sleep(5);
  const c = probes.counters();
  probes.close();
  const secs = (last - t0) / 1000;
  return { generators: n, expected, received: got, lost: c.lost, batches: c.batches, drainSeconds: +secs.toFixed(3), eventsPerSec: Math.round(got / secs) };
}

// The cost of one probed call where nothing else runs: tls-gen's time per SSL_read call with
// the probes attached and without (the uprobe and uretprobe traps plus the two programs).
async function callCost() {
  const n = 50000;
  const time = () => {
    const t = process.hrtime.bigint();
    const r = spawnSync(gen, [String(n), String(size), 'read']);
    if (r.status !== 0) throw new Error('tls-gen failed');
    return Number(process.hrtime.bigint() - t) / n / 1000;
  };
  const without = [];
  const probed = [];
  for (let i = 0; i < rounds; i++) {
    without.push(time());
    const probes = openTlsProbes({ targets: [gen], handleSignals: false, resolveConnections: false, ringBytes: 64 << 20 });
    try {
      probed.push(time());
    } finally {
      probes.close();
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { calls: n, bytesPerCall: size, usPerCallWithout: +median(without).toFixed(3), usPerCallWith: +median(probed).toFixed(2), usPerCallWithRuns: probed.map((x) => +x.toFixed(1)) };
}

async function latency() {
  const dir = mkdtempSync(join(tmpdir(), 'tw-tls-bench-'));
  try {
    // 200 warm-up requests (handshake, JIT), then `requests` timed ones.
    const script = httpsScript(dir, requests, 200);
    const once = async () => JSON.parse(await run(process.execPath, [script])).perRequestUs;
    // Alternate without/with, `--rounds` times, and compare medians: this VM's timing drifts.
    const without = [];
    const withProbes = [];
    let callsSeen = 0;
    for (let i = 0; i < rounds; i++) {
      without.push(await once());
      const probes = openTlsProbes({ targets: [process.execPath], handleSignals: false });
      try {
        const before = probes.counters().calls;
        withProbes.push(await once());
        await sleep(100);
        callsSeen += probes.counters().calls - before;
      } finally {
        probes.close();
      }
    }
    without.push(await once());
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const base = median(without);
    const probed = median(withProbes);
    const callsPerRequest = callsSeen / rounds / (requests + 200);
    return {
      requests, rounds, perRequestUsWithout: +base.toFixed(1), perRequestUsWithoutRuns: without.map((x) => +x.toFixed(1)),
      perRequestUsWith: +probed.toFixed(1), perRequestUsWithRuns: withProbes.map((x) => +x.toFixed(1)), addedPerRequestUs: +(probed - base).toFixed(1),
      sslCallsPerRequest: +callsPerRequest.toFixed(2), addedPerCallUs: +((probed - base) / callsPerRequest).toFixed(2),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The programs' kernel time per probed SSL call beside this process's CPU over the same run.
async function kernelCost(label, targets, workload) {
  const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
  const old = readFileSync(SYSCTL, 'utf8').trim();
  if (old === '0') writeFileSync(SYSCTL, '1');
  const probes = openTlsProbes({ targets, handleSignals: false, resolveConnections: label !== 'tls-gen', ringBytes: 64 << 20 });
  try {
    let chunks = 0;
    probes.on('chunk', () => chunks++);
    const sum = () => {
      const k = probes.kernelCost();
      const all = k.programs.reduce((a, p) => a + p.runTimeNs, 0);
      const ssl = k.programs.filter((p) => p.name.startsWith('ssl_')).reduce((a, p) => a + p.runTimeNs, 0);
      return { enabled: k.statsEnabled, all, ssl };
    };
    const k0 = sum();
    const c0 = probes.counters();
    const cpu0 = process.cpuUsage();
    await workload();
    // the same run: until the chunks the kernel sent are all in JS (no new one for 300 ms)
    const deadline = performance.now() + 20000;
    for (let seen = -1; seen !== chunks && performance.now() < deadline;) {
      seen = chunks;
      await sleep(300);
    }
    const cpu = process.cpuUsage(cpu0);
    const k1 = sum();
    const c1 = probes.counters();
    const calls = c1.calls - c0.calls;
    const kernelNs = k1.all - k0.all;
    const userNs = (cpu.user + cpu.system) * 1000;
    return {
      workload: label, statsEnabled: k1.enabled, sslCalls: calls, chunks, lost: c1.lost - c0.lost,
      kernelNsPerCall: +(kernelNs / calls).toFixed(0), sslProgramsNsPerCall: +((k1.ssl - k0.ssl) / calls).toFixed(0),
      agentCpuNsPerCall: +(userNs / calls).toFixed(0), agentUserNsPerCall: +(cpu.user * 1000 / calls).toFixed(0), agentSystemNsPerCall: +(cpu.system * 1000 / calls).toFixed(0),
      kernelToAgentCpu: +(kernelNs / userNs).toFixed(2),
    };
  } finally {
    probes.close();
    if (old === '0') writeFileSync(SYSCTL, old);
  }
}

/**
 * A Node https server and keep-alive client in one process (both ends probed): `warmup` requests,
 * then `n` timed ones; prints { perRequestUs } of the timed ones.
 */
function httpsScript(dir, n, warmup = 0) {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost']);
  if (r.status !== 0) throw new Error('openssl req failed');
  const script = join(dir, `https-client-${n}-${warmup}.mjs`);
  writeFileSync(script, `
    import https from 'node:https';
    import { readFileSync } from 'node:fs';
    const body = Buffer.alloc(1024, 'b');
    const server = https.createServer({ key: readFileSync(${JSON.stringify(key)}), cert: readFileSync(${JSON.stringify(cert)}) }, (req, res) => {
      req.resume();
      req.on('end', () => res.end(body));
    });
    server.listen(0, '127.0.0.1', async () => {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      const one = () => new Promise((res, rej) => {
        const q = https.request({ host: '127.0.0.1', port: server.address().port, path: '/x', method: 'POST', agent, rejectUnauthorized: false }, (r) => { r.resume(); r.on('end', res); });
        q.on('error', rej);
        q.end(body);
      });
      for (let i = 0; i < ${warmup}; i++) await one();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < ${n}; i++) await one();
      console.log(JSON.stringify({ perRequestUs: Number(process.hrtime.bigint() - t0) / ${n} / 1000 }));
      agent.destroy();
      server.close();
    });
  `);
  return script;
}

const out = { date: new Date().toISOString(), kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim(), ring: [], drain: undefined, callCost: undefined, latency: undefined, kernelCost: [] };
if (!args.includes('--no-ring')) {
  for (const n of gens) {
    const r = await ringRate(n);
    out.ring.push(r);
    if (!json) console.log(`ring: ${n} generator(s) × ${calls} SSL_read calls of ${size} B: ${r.received}/${r.expected} chunks into JS in ${r.seconds} s = ${r.eventsPerSec} events/s (${r.mbPerSec} MB/s), lost ${r.lost}, ${r.batches} batches`);
  }
}
if (!args.includes('--no-drain')) {
  const d = await drainRate(2);
  out.drain = d;
  if (!json) console.log(`drain: ${d.expected} events of ${size} B waiting in a 64 MiB ring (JS held while 2 generators ran): ${d.received} into JS in ${d.drainSeconds} s = ${d.eventsPerSec} events/s, lost ${d.lost}, ${d.batches} batches`);
}
if (!args.includes('--no-callcost')) {
  const c = await callCost();
  out.callCost = c;
  if (!json) console.log(`call cost: tls-gen SSL_read of ${size} B: ${c.usPerCallWithout} µs/call without probes, ${c.usPerCallWith} µs with (median of ${rounds}; runs ${c.usPerCallWithRuns.join(', ')})`);
}
if (!args.includes('--no-latency')) {
  out.latency = await latency();
  const l = out.latency;
  if (!json) console.log(`latency: ${l.requests} keep-alive https requests, medians of ${l.rounds} alternating rounds: ${l.perRequestUsWithout} µs/request without probes (runs ${l.perRequestUsWithoutRuns.join(', ')}), ${l.perRequestUsWith} with (runs ${l.perRequestUsWithRuns.join(', ')}): +${l.addedPerRequestUs} µs/request, ${l.sslCallsPerRequest} SSL calls/request, +${l.addedPerCallUs} µs per SSL call`);
}
if (!args.includes('--no-kernel-cost')) {
  const dir = mkdtempSync(join(tmpdir(), 'tw-tls-kcost-'));
  try {
    out.kernelCost.push(await kernelCost('tls-gen', [gen], () => run(gen, [String(calls), String(size), 'read'])));
    const script = httpsScript(dir, requests);
    out.kernelCost.push(await kernelCost('node https', [process.execPath], () => run(process.execPath, [script])));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const k of out.kernelCost) {
    if (!json) console.log(`kernel cost (${k.workload}): ${k.sslCalls} probed SSL calls, ${k.chunks} chunks into JS, lost ${k.lost}: programs ${k.kernelNsPerCall} ns/call in the kernel (ssl_* ${k.sslProgramsNsPerCall}; bpf_stats ${k.statsEnabled ? 'on' : 'OFF: not counted'}) vs this process's CPU ${k.agentCpuNsPerCall} ns/call (user ${k.agentUserNsPerCall}, system ${k.agentSystemNsPerCall}): kernel/agent CPU = ${k.kernelToAgentCpu}`);
  }
}
if (json) console.log(JSON.stringify(out, null, 2));
