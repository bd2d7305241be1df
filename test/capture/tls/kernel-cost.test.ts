/**
 * The probes' kernel-side cost (issue 17, "Kernel cost, reported separately"), as root with the
 * addon built: with kernel.bpf_stats_enabled on, a few curl → openssl s_server calls and a Node
 * https exchange make run_cnt and run_time_ns of the SSL uprobe programs grow; with it off,
 * kernelCost() says so and the figures stop moving. The sysctl's old value is put back after.
 * Skips with the reason when it cannot run.
 */
import { spawn, spawnSync } from 'node:child_process';
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
});
