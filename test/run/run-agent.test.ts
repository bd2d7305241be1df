import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { liveCaptureUnavailable } from '../../src/capture/live.js';
import { AgentClient } from '../../src/client/agent.js';
import { isHttpLike, isPostgres } from '../../src/flows/record.js';
import { AgentBackend } from '../../src/run/backend-agent.js';
import type { RunRecord } from '../../src/run/backend.js';
import { runAndVerify } from '../../src/run/run.js';
import { freePort, postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * The run-and-verify loop through a real agent (in this process, capturing lo): the snapshot is
 * the agent's, stopping it drains the agent's capture, and the run goes to the agent's run log.
 */
const why = process.getuid?.() !== 0 ? 'needs root (libpcap capture on lo, initdb)' : liveCaptureUnavailable() || postgresUnavailable();
if (why) console.warn(`test/run/run-agent.test.ts skipped: ${why}`);

const APP = resolve('test/run/fixtures/app.mjs');
const BIN = resolve('dist/cli/main.js');

describe.skipIf(why !== '')('runAndVerify through a running agent (AgentBackend)', () => {
  let pg: TestPostgres;
  let appPort = 0;
  let agent: Agent;
  let dataDir = '';
  let backend: AgentBackend;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    try {
      execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'pipe' });
    } catch {
      // tsc still emits when another file has a type error; what matters is that the CLI is built.
    }
    pg = await startPostgres(readFileSync('test/run/fixtures/schema.sql', 'utf8'));
    appPort = await freePort();
    dataDir = mkdtempSync(join(tmpdir(), 'tapwire-run-agent-'));
    agent = await Agent.start({
      interfaces: ['lo'], filter: `tcp port ${appPort} or tcp port ${pg.port}`, listen: { host: '127.0.0.1', port: 0 }, dataDir,
      retention: { maxBytes: 256 * 1024 * 1024, maxAgeSec: 3600 }, bodyLimit: 65536, redactKey: Buffer.from('agent-run-key'),
    });
    backend = new AgentBackend(new AgentClient(agent.address));
    env = { ...process.env, PGPORT: String(pg.port), APP_PORT: String(appPort) };
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await pg?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  let kept: RunRecord;

  it('drains: all 61 requests and 61 queries are in the snapshot the moment the command exits, with no sleep', async () => {
    const r = await runAndVerify({ backend, command: [process.execPath, APP], env: { ...env, REQUESTS: '60' } });
    expect(r.run).toMatchObject({ exitCode: 0, source: 'agent', drained: 'proven', flows: 122, verdict: 'pass' });
    expect(r.snapshot).toMatchObject({ open: false, drained: 'proven' });
    const flows = await backend.snapshotFlows(r.snapshot!.id);
    const paths = flows.filter(isHttpLike).map((f) => f.request!.path);
    expect(paths).toEqual(['/orders', ...Array.from({ length: 60 }, (_, i) => `/orders/${3 + i * 4}`)]);
    expect(flows.filter(isPostgres)).toHaveLength(61);
    expect(flows.every((f) => !f.incomplete)).toBe(true);
    kept = r.run;
  });

  it('keeps the run in the agent\'s run log (runs.jsonl in its data directory), served at /api/runs', async () => {
    const runs = await backend.runs();
    expect(runs[0]).toEqual(kept);
    expect(existsSync(join(dataDir, 'runs.jsonl'))).toBe(true);
    const res = await fetch(`${agent.address}/api/runs?limit=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ runs: [kept] });
  });

  it('POST /api/runs checks the body field by field; a run posted twice is kept once', async () => {
    const post = (body: string) => fetch(`${agent.address}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const cases: [unknown, string][] = [
      [{ ...kept, findings: [{ fingerprint: 'x', kind: 'x', severity: 'fatal', summary: 'x', evidence: [] }] }, 'body.findings[0].severity: expected one of error, warning, info, got "fatal"'],
      [{ ...kept, verdict: undefined }, 'body.verdict: expected one of pass, fail, inconclusive, got undefined'],
      [{ ...kept, touched: { services: [] } }, 'body.touched.endpoints: expected an array, got undefined'],
      [[kept], 'body: expected an object, got an array'],
    ];
    for (const [body, error] of cases) {
      const res = await post(JSON.stringify(body));
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error });
    }
    const notJson = await post('{"id": ');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: string }).error).toMatch(/^body: not valid JSON/);
    const again = await post(JSON.stringify(kept));
    expect(again.status).toBe(200);
    expect((await backend.runs()).filter((r) => r.id === kept.id)).toHaveLength(1);
    const fresh = { ...kept, id: 'run-0123456789ab' };
    expect((await post(JSON.stringify(fresh))).status).toBe(201);
    expect((await fetch(`${agent.address}/api/runs?limit=ten`)).status).toBe(400);
  });

  it('an agent refuses a BPF filter for a snapshot: its capture filter is its own', async () => {
    await expect(backend.startSnapshot({ bpf: 'tcp port 80' })).rejects.toThrow(/a BPF capture filter applies to a local capture/);
  });

  it('tapwire run --api: the same loop from the CLI, the run kept by the agent', async () => {
    const child = spawn(process.execPath, [BIN, 'run', '--api', agent.address, '--', process.execPath, APP], { env: { ...env, BUG: 'n-plus-one' } });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c; });
    // Not spawnSync: the agent capturing this traffic runs in this process's event loop.
    const status = await new Promise<number | null>((r) => child.on('close', r));
    expect(status).toBe(1);
    const id = /snapshot (snap-[0-9a-f]{12}): 18 flows, drain proven; agent at /.exec(stdout)?.[1];
    expect(id, stdout).toBeDefined();
    expect(stdout).toContain(`drill in: tapwire verify --api ${agent.address} --snapshot ${id}`);
    const runs = await backend.runs();
    expect(runs[0]).toMatchObject({ snapshot: id, source: 'agent', verdict: 'fail', findings: [expect.objectContaining({ kind: 'n-plus-one' })] });
  });
});
