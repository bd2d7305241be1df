import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureOpenError, liveCaptureUnavailable } from '../../src/capture/live.js';
import { isHttpLike, isPostgres } from '../../src/flows/record.js';
import { LocalBackend } from '../../src/run/backend-local.js';
import { runHistory, runsTouching } from '../../src/run/history.js';
import { runAndVerify, runExitCode, type RunOptions, type RunProgress } from '../../src/run/run.js';
import { SpecError } from '../../src/verify/spec/index.js';
import { freePort, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { gone } from './process.js';

/**
 * run_and_verify's core against a real application: an HTTP service on 127.0.0.1 backed by a
 * real PostgreSQL (test/run/fixtures/app.mjs), captured locally on lo with libpcap.
 */
const why = process.getuid?.() !== 0 ? 'needs root (libpcap capture on lo, initdb)' : liveCaptureUnavailable() || postgresUnavailable();
if (why) console.warn(`test/run/run-local.test.ts skipped: ${why}`);

const APP = resolve('test/run/fixtures/app.mjs');
const SCHEMA = readFileSync('test/run/fixtures/schema.sql', 'utf8');
const key = Buffer.from('run-test-redaction-key');


describe.skipIf(why !== '')('runAndVerify with a local capture (LocalBackend) on lo', () => {
  let pg: TestPostgres;
  let appPort = 0;
  let dataDir = '';
  let backend: LocalBackend;
  let base: Omit<RunOptions, 'command'>;
  let spec = '';

  beforeAll(async () => {
    pg = await startPostgres(SCHEMA);
    appPort = await freePort();
    dataDir = mkdtempSync(join(tmpdir(), 'tapwire-run-local-'));
    backend = new LocalBackend({ dataDir, redactKey: key });
    spec = `version: 1\nservices:\n  orders-api: ["127.0.0.1:${appPort}"]\n  orders-db: ["127.0.0.1:${pg.port}"]\n`;
    base = {
      backend, env: { ...process.env, PGPORT: String(pg.port), APP_PORT: String(appPort) },
      // Only the app's traffic: other tests on this machine may use lo at the same time.
      bpf: `tcp port ${appPort} or tcp port ${pg.port}`, spec: { text: spec, name: 'services.yaml' },
    };
  }, 60_000);

  afterAll(async () => {
    await backend?.close();
    await pg?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a clean run passes: every request and query is in the snapshot, the run is kept with what it touched', async () => {
    const r = await runAndVerify({ ...base, command: [process.execPath, APP] });
    expect(r.outputTail).toMatch(/app: 3 requests .* without the N\+1 bug$/);
    expect(r.run).toMatchObject({ exitCode: 0, verdict: 'pass', findings: [], source: 'local', flows: 6, drained: 'proven', verified: true, spec: { name: 'services.yaml' } });
    expect(r.verdict).toMatchObject({ verdict: 'pass', coverage: { flows: 6, incomplete: 0 } });
    expect(r.snapshot).toMatchObject({ id: r.run.snapshot, open: false, drained: 'proven' });
    expect(r.run.touched).toEqual({
      services: ['orders-api', 'orders-db'],
      endpoints: ['orders-api GET /orders', 'orders-api GET /orders/{id}'],
    });
    expect(runExitCode(r)).toBe(0);
    const flows = await backend.snapshotFlows(r.snapshot!.id);
    expect(flows.filter(isHttpLike).map((f) => `${f.request!.method} ${f.request!.path} ${f.response!.status}`).sort())
      .toEqual(['GET /orders 200', 'GET /orders/3 200', 'GET /orders/7 200']);
    expect(flows.filter(isPostgres)).toHaveLength(3);
    expect((await backend.runs())[0]).toEqual(r.run);
  });

  it('the N+1 bug fails the verdict with its evidence; the command passing makes it exit 1', async () => {
    const r = await runAndVerify({ ...base, command: [process.execPath, APP], env: { ...base.env, BUG: 'n-plus-one' } });
    expect(r.run.exitCode).toBe(0);
    expect(r.verdict.verdict).toBe('fail');
    const n1 = r.verdict.findings.find((f) => f.kind === 'n-plus-one')!;
    expect(n1.summary).toMatch(/^12 calls of postgres "select name from customers where id = \?" for one GET \/orders request on orders-api/);
    expect(r.run.findings).toEqual([expect.objectContaining({ kind: 'n-plus-one', severity: 'error', fingerprint: expect.stringMatching(/^n-plus-one error # calls/) })]);
    // The kept run holds a little evidence (3 entries), the verdict all of it (the default cap).
    expect(r.run.findings[0]!.evidence).toHaveLength(3);
    expect(r.run.flows).toBe(18);
    expect(runExitCode(r)).toBe(1);
  });

  it('a bug that comes and goes on the same code is flaky in run_history; runs_touching finds the command', async () => {
    // A git work tree of its own: the code version must not change between the runs.
    const repo = mkdtempSync(join(tmpdir(), 'tapwire-run-repo-'));
    execFileSync('sh', ['-c', 'git init -q && git -c user.email=t@example.com -c user.name=t commit -q --allow-empty -m init'], { cwd: repo });
    const state = join(mkdtempSync(join(tmpdir(), 'tapwire-run-state-')), 'counter');
    const command = `node ${APP} # flaky`;
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await runAndVerify({ ...base, cwd: repo, command, env: { ...base.env, BUG: 'alternate', STATE: state } }));
    expect(results.map((r) => r.verdict.verdict)).toEqual(['pass', 'fail', 'pass', 'fail']);
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
    expect(results.every((r) => r.run.code?.commit === head && r.run.code.dirty === '')).toBe(true);

    const h = runHistory(await backend.runs(), { command: '# flaky' });
    expect(h.runs.map((r) => r.id)).toEqual(results.map((r) => r.run.id).reverse());
    expect(h.findings).toHaveLength(1);
    expect(h.findings[0]).toMatchObject({
      kind: 'n-plus-one', failedRuns: 2, totalRuns: 4, flaky: true,
      firstFailed: results[1]!.run.startedAt, lastFailed: results[3]!.run.startedAt,
      lastRun: { id: results[3]!.run.id, snapshot: results[3]!.snapshot!.id },
      flakyOn: [{ commit: head, dirty: '', failedRuns: 2, totalRuns: 4 }],
    });
    expect(h.findings[0]!.lastEvidence[0]!.summary).toBe('the inbound request');

    const touching = runsTouching(await backend.runs(), { service: 'orders-api', path: '/orders/42' });
    expect(touching.map((c) => c.command)).toEqual([command, `${process.execPath} ${APP}`]);
    expect(touching[0]).toMatchObject({ runs: 4, matched: ['orders-api GET /orders/{id}'], lastRun: { id: results[3]!.run.id, verdict: 'fail' } });
    expect(runsTouching(await backend.runs(), { service: 'orders-db' })).toHaveLength(2);
    expect(runsTouching(await backend.runs(), { path: '/customers/1' })).toEqual([]);
    for (const d of [repo, dirname(state)]) rmSync(d, { recursive: true, force: true });
  });

  it('cancellation kills the command tree, stops the snapshot and keeps the run as cancelled', async () => {
    const ac = new AbortController();
    let pid = 0;
    const r = await runAndVerify({
      ...base, command: 'sleep 300 & echo "child $!"; wait',
      onOutput: (c) => {
        const m = /child (\d+)/.exec(c.toString());
        if (m) {
          pid = Number(m[1]);
          ac.abort();
        }
      },
    }, { signal: ac.signal });
    expect(r.run).toMatchObject({ cancelled: true, exitCode: null, signal: 'SIGTERM', verdict: 'inconclusive', reason: 'cancelled: the traffic was not verified', verified: false });
    expect(pid).toBeGreaterThan(0);
    expect(await gone(pid)).toBe(true);
    expect(r.snapshot!.open).toBe(false);
    expect((await backend.getSnapshot(r.snapshot!.id))!.open).toBe(false);
    expect((await backend.runs()).find((x) => x.id === r.run.id)).toMatchObject({ cancelled: true });
    expect(runExitCode(r)).toBe(130);
  });

  it('a timeout kills the command: a failed command (exit 4), progress reported while it runs', async () => {
    const progress: RunProgress[] = [];
    const t0 = Date.now();
    const r = await runAndVerify({ ...base, command: 'sleep 30', timeoutSec: 1.5 }, { onProgress: (p) => progress.push(p) });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.run).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGTERM', verdict: 'inconclusive', reason: 'no flows to verify', flows: 0 });
    expect(runExitCode(r)).toBe(4);
    expect(progress.map((p) => p.message)).toContainEqual(expect.stringMatching(/^running for \d+ s, 0 flows captured$/));
    expect(progress.every((p, i) => i === 0 || p.progress > progress[i - 1]!.progress)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ progress: 5, total: 5, message: expect.stringMatching(/^verdict inconclusive; the command timed out after 1\.\d s/) });
  });

  it('bad input is refused before any capture starts; a capture that cannot open names the interface', async () => {
    const before = (await backend.listSnapshots()).length;
    await expect(runAndVerify({ ...base, command: ['true'], spec: { text: 'version: 1\nchecks: [{ name: x }]\n', name: 'bad.yaml' } })).rejects.toThrow(SpecError);
    await expect(runAndVerify({ ...base, command: ['no-such-command-xyz'] })).rejects.toThrow('command not found: no-such-command-xyz');
    const open = runAndVerify({ ...base, command: ['true'], iface: 'nosuchif0' });
    await expect(open).rejects.toThrow(CaptureOpenError);
    await expect(open).rejects.toThrow(/^nosuchif0: no such device/);
    expect(await backend.listSnapshots()).toHaveLength(before);
  });
});
