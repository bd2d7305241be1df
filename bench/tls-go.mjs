// The Go crypto/tls probes' cost per call (issue 17): a Go https client (test/agent/pods/go-tls)
// makes `--requests` sequential keep-alive requests to a Go https server on loopback, and its own
// clock (time.Since around the loop, printed as elapsed_ns) gives the time per request, without
// probes and with the Go probes on the binary (client and server both probed: entry probes on
// (*tls.Conn).Write/Read, a probe on each RET, Close), alternating for `--rounds` rounds; the medians
// are compared. Per probed call = added time per request ÷ probed Write/Read calls per request (from
// the probes' counter, both ends). With kernel.bpf_stats_enabled on, the Go programs' own
// run_time_ns per run is printed beside it (the rest is the uprobe trap itself).
//
//   node bench/tls-go.mjs [--requests 5000] [--rounds 5] [--go go] [--json]
//
// Needs root, `npm run build:native`, `npm run build` (dist/) and Go; everything shares this machine's cores.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const requests = Number(opt('--requests', 5000));
const rounds = Number(opt('--rounds', 5));
const goCmd = opt('--go', 'go');
const json = args.includes('--json');

const { openTlsProbes, tlsProbesUnavailable } = await import(pathToFileURL(join(root, 'dist', 'capture', 'index.js')).href);
const why = tlsProbesUnavailable();
if (why.length) {
  console.error(`bench/tls-go.mjs: cannot run: ${why.join('; ')}`);
  process.exit(2);
}
const bin = join(mkdtempSync(join(tmpdir(), 'tapwire-tls-go-bench-')), 'gotls');
const b = spawnSync(goCmd, ['build', '-o', bin, '.'], { cwd: join(root, 'test', 'agent', 'pods', 'go-tls'), encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' } });
if (b.status !== 0) {
  console.error(`bench/tls-go.mjs: ${goCmd} build failed: ${b.stderr || b.error}`);
  process.exit(2);
}
const goVersion = spawnSync(goCmd, ['env', 'GOVERSION'], { encoding: 'utf8' }).stdout.trim();

const server = spawn(bin, ['server'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((res) => server.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) res(Number(m[1])); }));

/** ns per request as the client measures it. */
function clientRun() {
  return new Promise((res, rej) => {
    const c = spawn(bin, ['client', '-url', `https://127.0.0.1:${port}/bench`, '-n', String(requests)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('exit', (code) => {
      const m = /elapsed_ns (\d+)/.exec(out);
      if (code !== 0 || !m) rej(new Error(`client exited ${code}`));
      else res(Number(m[1]) / requests);
    });
  });
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
await clientRun(); // warm-up: page cache, TLS session setup paths
const without = [], withProbes = [];
let calls = 0, goRuns = 0, goNs = 0;
for (let r = 0; r < rounds; r++) {
  without.push(await clientRun());
  const probes = openTlsProbes({ targets: [bin], handleSignals: false, resolveConnections: false });
  probes.on('chunk', () => {});
  const before = probes.kernelCost().programs.filter((p) => p.name.startsWith('go_'));
  withProbes.push(await clientRun());
  await new Promise((r2) => setTimeout(r2, 50));
  calls += probes.counters().calls;
  const after = probes.kernelCost().programs.filter((p) => p.name.startsWith('go_'));
  for (const p of after) {
    const q = before.find((x) => x.name === p.name);
    goRuns += p.runCnt - (q?.runCnt ?? 0);
    goNs += p.runTimeNs - (q?.runTimeNs ?? 0);
  }
  probes.close();
}
without.push(await clientRun());
server.kill('SIGKILL');

const w0 = median(without), w1 = median(withProbes);
const callsPerRequest = calls / (rounds * requests);
const result = {
  date: new Date().toISOString().slice(0, 10), goVersion, requests, rounds,
  usPerRequestWithout: +(w0 / 1e3).toFixed(2), usPerRequestWith: +(w1 / 1e3).toFixed(2),
  addedUsPerRequest: +((w1 - w0) / 1e3).toFixed(2), probedCallsPerRequest: +callsPerRequest.toFixed(2),
  addedUsPerCall: +((w1 - w0) / 1e3 / callsPerRequest).toFixed(2),
  runsWithout: without.map((x) => +(x / 1e3).toFixed(1)), runsWith: withProbes.map((x) => +(x / 1e3).toFixed(1)),
  bpfNsPerProgramRun: goRuns ? +(goNs / goRuns).toFixed(0) : null,
  probeHitsPerRequest: goRuns ? +(goRuns / (rounds * requests)).toFixed(2) : null,
};
if (json) console.log(JSON.stringify(result));
else {
  console.log(`${goVersion}: ${requests} keep-alive requests × ${rounds} rounds, time per request on the client`);
  const runs = (xs) => xs.map((x) => (x / 1e3).toFixed(1)).join(', ');
  console.log(`  without probes ${result.usPerRequestWithout} µs (runs ${runs(without)}), with ${result.usPerRequestWith} µs (runs ${runs(withProbes)}): +${result.addedUsPerRequest} µs per request`);
  console.log(`  ${result.probedCallsPerRequest} probed Write/Read calls per request (both ends): +${result.addedUsPerCall} µs per call`);
  console.log(result.bpfNsPerProgramRun === null ? '  BPF run time: kernel.bpf_stats_enabled is off (sysctl -w kernel.bpf_stats_enabled=1 to see it)'
    : `  BPF programs go_*: ${result.probeHitsPerRequest} runs per request, ${result.bpfNsPerProgramRun} ns per run (bpf_stats; the rest is the uprobe traps)`);
}
