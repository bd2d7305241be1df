/**
 * The probes' kernel-side cost (issue 17, "Kernel cost, reported separately"), as root with the
 * addon built: with kernel.bpf_stats_enabled on, a few curl → openssl s_server calls and a Node
 * https exchange make run_cnt and run_time_ns of the SSL uprobe programs grow; with it off,
 * kernelCost() says so and the figures stop moving. `tapwire agent --tls uprobe` turns the sysctl
 * on, reports tapwire_ebpf_* in /metrics, and puts the old value back when it stops; where it
 * cannot set it (/proc/sys read-only), it says so and tapwire_ebpf_stats_enabled is 0.
 * The sysctl's old value is put back after.
 * Skips with the reason when it cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectElf, openTlsProbes, tlsProbesUnavailable, type TlsProbes } from '../../../src/capture/index.js';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const has = (cmd: string, ...args: string[]) => spawnSync(cmd, args).status === 0;
const why = process.platform !== 'linux' ? 'needs Linux'
  : process.getuid?.() !== 0 ? 'needs root (uprobes, the sysctl)'
  : tlsProbesUnavailable().join('; ') || (!has('curl', '--version') ? 'no curl' : !has('openssl', 'version') ? 'no openssl' : '');
if (why) console.warn(`test/capture/tls/kernel-cost.test.ts skipped: ${why}`);

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** run_cnt and run_time_ns summed over the SSL uprobe programs (ssl_*), and per program. */
function sslCost(probes: TlsProbes): { runs: number; ns: number; by: Map<string, { runs: number; ns: number }> } {
  const by = new Map<string, { runs: number; ns: number }>();
  let runs = 0;
  let ns = 0;
  for (const p of probes.kernelCost().programs) {
    if (!p.name.startsWith('ssl_')) continue;
    by.set(p.name, { runs: p.runCnt, ns: p.runTimeNs });
    runs += p.runCnt;
    ns += p.runTimeNs;
  }
  return { runs, ns, by };
}

describe.skipIf(why !== '')('kernel cost of the TLS probes (root)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-kcost-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  let old = '';
  beforeAll(() => {
    old = readFileSync(SYSCTL, 'utf8').trim();
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  });
  afterAll(() => {
    if (old) writeFileSync(SYSCTL, old);
    rmSync(dir, { recursive: true, force: true });
  });

  const libssl = spawnSync('sh', ['-c', 'ldd "$(command -v curl)" | sed -n "s/.*libssl[^ ]* => \\([^ ]*\\).*/\\1/p"'], { encoding: 'utf8' }).stdout.trim();
  const nodeHasSsl = inspectElf(process.execPath).functions.includes('SSL_write');

  it('stats on: curl and Node TLS calls make run_cnt and run_time_ns of the SSL programs grow', async () => {
    expect(libssl).toMatch(/libssl\.so/);
    writeFileSync(SYSCTL, '1');
    const port = 20000 + ((process.pid + 7) % 10000);
    const server = spawn('openssl', ['s_server', '-www', '-accept', String(port), '-cert', cert, '-key', key, '-quiet'], { stdio: 'ignore' });
    const probes = openTlsProbes({ targets: nodeHasSsl ? [libssl, process.execPath] : [libssl], handleSignals: false, watchExec: false });
    try {
      const k0 = probes.kernelCost();
      expect(k0.statsEnabled).toBe(true);
      expect(k0.reason).toBeUndefined();
      expect(k0.programs.map((p) => p.name)).toEqual(expect.arrayContaining(['ssl_read_enter', 'ssl_read_leave', 'ssl_write_enter', 'ssl_write_leave', 'tp_write']));
      const before = sslCost(probes);
      await until(() => spawnSync(process.execPath, ['-e', `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`]).status === 0);
      const callsBefore = probes.counters().calls;
      for (let i = 0; i < 3; i++) expect(spawnSync('curl', ['-sk', '--http1.1', `https://127.0.0.1:${port}/k${i}`]).status).toBe(0);
      await until(() => probes.counters().calls >= callsBefore + 6);
      const afterCurl = sslCost(probes);
      // Each curl makes at least one SSL_write and one SSL_read: entry and return programs each ran.
      expect(afterCurl.runs - before.runs).toBeGreaterThanOrEqual(3 * 4);
      expect(afterCurl.ns).toBeGreaterThan(before.ns);
      for (const name of ['ssl_write_enter', 'ssl_write_leave', 'ssl_read_enter', 'ssl_read_leave']) {
        expect(afterCurl.by.get(name)!.runs, name).toBeGreaterThan(before.by.get(name)!.runs);
        expect(afterCurl.by.get(name)!.ns, name).toBeGreaterThan(before.by.get(name)!.ns);
      }
      if (nodeHasSsl) {
        const script = join(dir, 'node-tls.mjs');
        writeFileSync(script, `
          import https from 'node:https';
          import { readFileSync } from 'node:fs';
          const server = https.createServer({ key: readFileSync(${JSON.stringify(key)}), cert: readFileSync(${JSON.stringify(cert)}) }, (req, res) => res.end('ok'));
          server.listen(0, '127.0.0.1', () => {
            https.get({ host: '127.0.0.1', port: server.address().port, path: '/n', rejectUnauthorized: false, agent: false }, (res) => {
              res.resume();
              res.on('end', () => server.close());
            });
          });
        `);
        expect(spawnSync(process.execPath, [script]).status).toBe(0);
        await until(() => sslCost(probes).runs > afterCurl.runs);
        expect(sslCost(probes).ns).toBeGreaterThan(afterCurl.ns);
      }
      const end = sslCost(probes);
      const perRun = (end.ns - before.ns) / (end.runs - before.runs);
      console.log(`kernel cost: ${end.runs - before.runs} SSL program runs, ${end.ns - before.ns} ns, ${perRun.toFixed(0)} ns per run`);
      expect(perRun).toBeGreaterThan(0);
      expect(perRun).toBeLessThan(1e6);
    } finally {
      probes.close();
      server.kill();
    }
    // closed: nothing to read, and no throw
    expect(probes.kernelCost().programs).toEqual([]);
  });

  it('stats off: the answer says they are off, and the figures stop moving', async () => {
    expect(libssl).toMatch(/libssl\.so/);
    writeFileSync(SYSCTL, '0');
    const port = 20000 + ((process.pid + 11) % 10000);
    const server = spawn('openssl', ['s_server', '-www', '-accept', String(port), '-cert', cert, '-key', key, '-quiet'], { stdio: 'ignore' });
    const probes = openTlsProbes({ targets: [libssl], handleSignals: false, watchExec: false });
    try {
      const k = probes.kernelCost();
      expect(k.statsEnabled).toBe(false);
      expect(k.reason).toMatch(/bpf_stats_enabled is 0/);
      await until(() => spawnSync(process.execPath, ['-e', `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`]).status === 0);
      const callsBefore = probes.counters().calls;
      expect(spawnSync('curl', ['-sk', '--http1.1', `https://127.0.0.1:${port}/off`]).status).toBe(0);
      await until(() => probes.counters().calls >= callsBefore + 2);
      // The programs ran (their events came) but the kernel counted nothing: 0, not "free".
      const cost = sslCost(probes);
      expect(cost.runs).toBe(0);
      expect(cost.ns).toBe(0);
    } finally {
      probes.close();
      server.kill();
    }
  });

  const BIN = 'dist/cli/main.js';
  /** Starts the agent (with `wrap` before it, e.g. unshare), returns its API base and its log so far. */
  async function startAgent(wrap: string[]): Promise<{ agent: ChildProcess; base: string; log: () => string }> {
    const argv = [...wrap, process.execPath, BIN, 'agent', '--tls', 'uprobe', '--interface', 'lo', '--filter', 'tcp port 9', '--listen', '127.0.0.1:0', '--data-dir', join(dir, `data-${Date.now()}`)];
    const agent = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TAPWIRE_REDACT_KEY: 'kcost' } });
    let log = '';
    agent.stderr!.on('data', (d) => (log += d));
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent not up after 30 s:\n${log}`)), 30_000);
      agent.stderr!.on('data', () => {
        const m = /API on (http:\/\/\S+?);/.exec(log);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      });
      agent.on('exit', (code) => { clearTimeout(timer); reject(new Error(`agent exited ${code}:\n${log}`)); });
    });
    return { agent, base, log: () => log };
  }
  async function stopAgent(agent: ChildProcess): Promise<void> {
    if (agent.exitCode !== null) return;
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGTERM');
    await exited;
  }
  const metric = (text: string, name: string, program?: string): number | undefined => {
    const re = new RegExp(`^${name}${program ? `\\{program="${program}"\\}` : ''} (\\S+)$`, 'm');
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };

  it('the agent turns bpf stats on, reports tapwire_ebpf_* beside its own CPU in /metrics, and puts the sysctl back at stop', async () => {
    writeFileSync(SYSCTL, '0');
    const port = 20000 + ((process.pid + 13) % 10000);
    const server = spawn('openssl', ['s_server', '-www', '-accept', String(port), '-cert', cert, '-key', key, '-quiet'], { stdio: 'ignore' });
    const { agent, base, log } = await startAgent([]);
    try {
      expect(log()).toMatch(/kernel\.bpf_stats_enabled turned on/);
      expect(readFileSync(SYSCTL, 'utf8').trim()).toBe('1');
      await until(() => spawnSync(process.execPath, ['-e', `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`]).status === 0);
      for (let i = 0; i < 3; i++) expect(spawnSync('curl', ['-sk', '--http1.1', `https://127.0.0.1:${port}/m${i}`]).status).toBe(0);
      let text = '';
      for (let i = 0; i < 25; i++) {
        text = await (await fetch(`${base}/metrics`)).text();
        if ((metric(text, 'tapwire_ebpf_runs_total', 'ssl_read_leave') ?? 0) >= 3) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(metric(text, 'tapwire_ebpf_stats_enabled')).toBe(1);
      for (const p of ['ssl_write_enter', 'ssl_write_leave', 'ssl_read_enter', 'ssl_read_leave']) {
        expect(metric(text, 'tapwire_ebpf_runs_total', p), p).toBeGreaterThanOrEqual(3);
        expect(metric(text, 'tapwire_ebpf_run_seconds_total', p), p).toBeGreaterThan(0);
      }
      expect(metric(text, 'tapwire_process_cpu_seconds_total')).toBeGreaterThan(0);
      const kernel = ['ssl_write_enter', 'ssl_write_leave', 'ssl_read_enter', 'ssl_read_leave'].reduce((a, p) => a + metric(text, 'tapwire_ebpf_run_seconds_total', p)!, 0);
      console.log(`agent /metrics: SSL programs ${(kernel * 1e6).toFixed(1)} µs kernel; process CPU ${metric(text, 'tapwire_process_cpu_seconds_total')} s`);
    } finally {
      await stopAgent(agent);
      server.kill();
    }
    expect(readFileSync(SYSCTL, 'utf8').trim()).toBe('0');
  });

  // As root the sysctl is writable; a mount namespace with /proc/sys read-only shows the agent that cannot.
  const canUnshare = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && ! (echo 0 > /proc/sys/kernel/bpf_stats_enabled) 2>/dev/null']).status === 0;
  if (!canUnshare) console.warn('test/capture/tls/kernel-cost.test.ts: the read-only /proc/sys case skipped: unshare -m or a read-only bind of /proc/sys is not possible here');
  it.skipIf(!canUnshare)('an agent that cannot set the sysctl says so, and tapwire_ebpf_stats_enabled is 0', async () => {
    writeFileSync(SYSCTL, '0');
    const { agent, base, log } = await startAgent(['unshare', '-m', 'sh', '-c', 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', 'sh']);
    try {
      expect(log()).toMatch(/kernel cost not counted: kernel\.bpf_stats_enabled is 0 and this agent cannot set it \(EROFS\)/);
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(metric(text, 'tapwire_ebpf_stats_enabled')).toBe(0);
      expect(metric(text, 'tapwire_ebpf_runs_total', 'ssl_read_leave')).toBe(0);
    } finally {
      await stopAgent(agent);
    }
    expect(readFileSync(SYSCTL, 'utf8').trim()).toBe('0');
  });
});
