import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';

/** `tapwire verify --spec`, `--max-evidence` and `--api`, run as a user runs them: the built bin. */
const BIN = 'dist/cli/main.js';
const DEMO = 'pcaps/demo/demo.pcap';
const FIXED = 'pcaps/demo/demo-fixed.pcap';
const SPEC = 'examples/specs/demo.yaml';

function tapwire(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  // Asynchronous: the stand-in agent below answers from this process while the CLI runs.
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, TAPWIRE_TOKEN: '', ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
});

describe('tapwire verify --spec', () => {
  it('the demo spec fails the demo with its checks and the detectors, and passes the fixed demo', async () => {
    const r = await tapwire(['verify', DEMO, '--spec', SPEC, '--format', 'json']);
    expect(r.status).toBe(1);
    const v = JSON.parse(r.stdout);
    const checks = v.findings.filter((f: { kind: string }) => f.kind === 'check').map((f: { summary: string }) => f.summary);
    expect(checks).toEqual(expect.arrayContaining([
      expect.stringMatching(/^check "payment retries back off": delays 0\.2\d s, 0\.2\d s, 0\.2\d s where 0\.20 s, 0\.40 s, 0\.80 s ±25 % was expected$/),
      'check "the order cache answers repeated lookups": 12 matching flows where at most 1 was expected',
      expect.stringMatching(/^check "the customer's token stays in order-service"/),
    ]));
    // The spec names the services, and lowers error-status to info.
    expect(v.findings.find((f: { kind: string }) => f.kind === 'retry').summary).toMatch(/on payment-service/);
    expect(v.findings.find((f: { kind: string }) => f.kind === 'error-status').severity).toBe('info');
    const fixed = await tapwire(['verify', FIXED, '--spec', SPEC]);
    expect(fixed.stdout).toMatch(/^verdict: PASS/);
    expect(fixed.status).toBe(0);
  });

  it('a bad spec is bad input (exit 2) naming the file and the field; a missing one names the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-spec-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nchecks:\n  - name: x\n    select: http[method="GET"]\n    expect:\n      count: { atMost: -1 }\n');
    const r = await tapwire(['verify', DEMO, '--spec', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}: checks[0].expect.count.atMost`);
    expect(r.stdout).toBe('');
    const missing = await tapwire(['verify', DEMO, '--spec', join(dir, 'nope.yaml')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/nope\.yaml: file: no such file/);
  });

  it('--max-evidence caps every evidence list and states the total', async () => {
    const v = JSON.parse((await tapwire(['verify', DEMO, '--format', 'json', '--max-evidence', '2'])).stdout);
    const red = v.findings.find((f: { kind: string }) => f.kind === 'redundant-call');
    expect(red.evidence).toHaveLength(2);
    expect(red.details.evidenceTotal).toBe(12);
    expect(v.findings.every((f: { evidence: unknown[] }) => f.evidence.length <= 2)).toBe(true);
  });
});

/**
 * A stand-in for the live agent's flow API (issue 6 contract: `{ flows, next }` pages with a
 * cursor, snapshots, bearer token), serving the real records of the demo capture. The agent itself
 * is the next issue; when it lands, these tests run against it.
 */
describe('tapwire verify --api', () => {
  let server: Server;
  let url = '';
  const seen: string[] = [];
  beforeAll(async () => {
    const flows: FlowRecord[] = (await analyzeFile(DEMO)).records!;
    const snapshots: Record<string, FlowRecord[]> = { 'snap-1': flows, before: flows, after: (await analyzeFile(FIXED)).records! };
    server = createServer((req, res) => {
      seen.push(req.url!);
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.headers.authorization !== 'Bearer s3cret') return send(401, { error: 'missing or wrong bearer token' });
      const u = new URL(req.url!, 'http://x');
      const m = /^\/api\/snapshots\/([^/]+)\/flows$/.exec(u.pathname);
      if (m && !snapshots[m[1]!]) return send(404, { error: `no snapshot "${m[1]}"` });
      if (!m && u.pathname !== '/api/flows') return send(404, { error: 'not found' });
      let page = m ? snapshots[m[1]!]! : flows;
      if (!m) {
        const since = Number(u.searchParams.get('since')), until = Number(u.searchParams.get('until') ?? Infinity);
        page = flows.filter((f) => f.start >= since && f.start <= until);
      }
      // Pages of 10, so the CLI must follow the cursor.
      const at = Number(u.searchParams.get('cursor') ?? 0);
      send(200, { flows: page.slice(at, at + 10), next: at + 10 < page.length ? String(at + 10) : null });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('verifies a snapshot, following every page, with the token from TAPWIRE_TOKEN: the same verdict as the capture', async () => {
    const fromApi = await tapwire(['verify', '--api', url, '--snapshot', 'snap-1', '--format', 'json'], { TAPWIRE_TOKEN: 's3cret' });
    const fromFile = await tapwire(['verify', DEMO, '--format', 'json']);
    expect(fromApi.status).toBe(1);
    const a = JSON.parse(fromApi.stdout), b = JSON.parse(fromFile.stdout);
    expect(a.coverage.flows).toBe(b.coverage.flows);
    expect(a.findings.map((f: { kind: string; details: { count?: number } }) => [f.kind, f.details.count]))
      .toEqual(b.findings.map((f: { kind: string; details: { count?: number } }) => [f.kind, f.details.count]));
    expect(seen.filter((s) => s.startsWith('/api/snapshots/snap-1/flows')).length).toBe(Math.ceil(b.coverage.flows / 10));
  });

  it('verifies a time window given with --since/--until and --token', async () => {
    const r = await tapwire(['verify', '--api', url, '--since', '0', '--until', String(2 ** 31), '--token', 's3cret']);
    expect(r.status).toBe(1);
    expect(seen.some((s) => /^\/api\/flows\?since=0&until=2147483648&limit=1000/.test(s))).toBe(true);
  });

  it('diff compares two snapshots: the fix is an improvement, the reverse a regression', async () => {
    const better = await tapwire(['diff', '--api', url, 'before', 'after', '--format', 'json', '--token', 's3cret']);
    expect(better.status).toBe(0);
    const d = JSON.parse(better.stdout);
    expect([d.before.label, d.after.label]).toEqual(['snapshot before', 'snapshot after']);
    expect(d.findings.resolved.map((f: { kind: string }) => f.kind)).toEqual(expect.arrayContaining(['redundant-call', 'retry', 'secret-forwarded']));
    const worse = await tapwire(['diff', '--api', url, 'after', 'before', '--token', 's3cret']);
    expect(worse.status).toBe(1);
    expect(worse.stdout).toMatch(/REGRESSION/);
    const missing = await tapwire(['diff', '--api', url, 'before', 'nope', '--token', 's3cret']);
    expect([missing.status, missing.stderr]).toEqual([2, `tapwire: --api: ${url}/api/snapshots/nope/flows answered 404: no snapshot "nope"\n`]);
  });

  it('an unknown snapshot, a wrong token, an unreachable agent and a bad window are bad input (exit 2), each said', async () => {
    const unknown = await tapwire(['verify', '--api', url, '--snapshot', 'nope', '--token', 's3cret']);
    expect([unknown.status, unknown.stderr]).toEqual([2, `tapwire: --api: ${url}/api/snapshots/nope/flows answered 404: no snapshot "nope"\n`]);
    const denied = await tapwire(['verify', '--api', url, '--snapshot', 'snap-1', '--token', 'wrong']);
    expect(denied.status).toBe(2);
    expect(denied.stderr).toMatch(/answered 401: missing or wrong bearer token/);
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const down = await tapwire(['verify', '--api', `http://127.0.0.1:${port}`, '--snapshot', 'snap-1']);
    expect(down.status).toBe(2);
    expect(down.stderr).toBe(`tapwire: --api: cannot reach the agent at http://127.0.0.1:${port}: ECONNREFUSED\n`);
    const both = await tapwire(['verify', DEMO, '--api', url, '--snapshot', 'snap-1']);
    expect([both.status, both.stderr]).toEqual([2, `tapwire: verify: give either a capture file ("${DEMO}") or --api, not both\n`]);
    const window = await tapwire(['verify', '--api', url, '--since', 'last tuesday']);
    expect(window.status).toBe(2);
    expect(window.stderr).toMatch(/--since "last tuesday" is neither RFC 3339 nor epoch seconds/);
  });
});
