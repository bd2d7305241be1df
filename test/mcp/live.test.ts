import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { connect, flowOf, isRoot, text } from './helpers.js';

/**
 * The snapshot and run tools against live capture on lo: through a real in-process agent (the
 * server started with --api), and through a local capture (no agent). Needs root for libpcap.
 */
const why = isRoot ? '' : 'needs root (libpcap capture on lo)';
if (why) console.warn(`test/mcp/live.test.ts skipped: ${why}`);

type Connected = Awaited<ReturnType<typeof connect>>;
type Row = { id: string; call?: string; status?: string };

/** pcap magic numbers as little-endian words: microsecond and nanosecond, either byte order. */
const PCAP_MAGIC = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1];
const hasCapinfos = spawnSync('capinfos', ['-h']).status === 0;

let web: Server;
let port = 0;

/** A little service to capture: /ok answers 200 with JSON, /fail 503. */
async function startWeb(): Promise<void> {
  web = createServer((req, res) => {
    const fail = req.url?.startsWith('/fail');
    res.writeHead(fail ? 503 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, ok: !fail }));
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  port = (web.address() as AddressInfo).port;
}

async function hit(path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  await res.text();
  return res.status;
}

/** A test command that calls the service twice and says what it got. */
const COMMAND = () => `node -e "(async()=>{for(const p of ['/ok/1','/fail'])console.log(p,(await fetch('http://127.0.0.1:${port}'+p)).status)})()"`;

/** Snapshot tools, flows of a snapshot, resources, verify, export, diff: the same over both backends. */
async function snapshotLoop(t: Connected): Promise<void> {
  const started = await t.call('start_snapshot', { name: 'mcp live test' });
  const id = started.structuredContent.id as string;
  expect(id).toMatch(/^snap-/);
  for (const p of ['/ok/1', '/ok/2', '/ok/3', '/fail']) await hit(p);
  const stopResult = await t.call('stop_snapshot', { id });
  const stopped = stopResult.structuredContent;
  expect(stopped).toMatchObject({ id, open: false, name: 'mcp live test', drained: 'proven' });
  expect(text(stopResult)).toMatch(new RegExp(`^snapshot stopped: ${id} "mcp live test": closed, flows from \\S+ to \\S+, no filter, created \\S+, drain proven\nthe drain was proven`));
  const listed = await t.call('list_snapshots');
  expect(listed.structuredContent.snapshots.map((s: { id: string }) => s.id)).toContain(id);
  expect(text(listed)).toContain(`  ${id} "mcp live test": closed, flows from `);

  const page = (await t.call('list_flows', { snapshot: id, filter: `dst.port == ${port}` })).structuredContent;
  const rows: Row[] = page.flows;
  expect(rows.map((r) => `${r.call} ${r.status}`)).toEqual(['GET /ok/1 200', 'GET /ok/2 200', 'GET /ok/3 200', 'GET /fail 503']);

  const flow = flowOf((await t.call('get_flow', { id: rows[3]!.id, include_bodies: true })).structuredContent.flow, 'http');
  expect(flow.response!.status).toBe(503);
  expect(JSON.parse(flow.response!.body!)).toEqual({ path: '/fail', ok: false });
  const res = await t.client.readResource({ uri: `flow://${rows[0]!.id}` });
  expect(JSON.parse((res.contents[0] as { text: string }).text).flow.request.path).toBe('/ok/1');
  const snap = JSON.parse(((await t.client.readResource({ uri: `snapshot://${id}` })).contents[0] as { text: string }).text);
  expect(snap.snapshot.id).toBe(id);
  expect(snap.flows.filter((r: Row) => r.call?.startsWith('GET /')).length).toBe(4);

  const map = (await t.call('service_map', { snapshot: id })).structuredContent.edges;
  expect(map.find((e: { dst: string }) => e.dst === `127.0.0.1:${port}`)).toMatchObject({ count: 4, errors: 1 });
  const v = (await t.call('verify', { snapshot: id, spec: `version: 1\nchecks:\n  - name: no 5xx\n    select: 'http[status="5xx"]'\n    expect: { count: { exactly: 0 } }\n` })).structuredContent;
  expect(v.verdict).toBe('fail');
  expect(v.findings.find((f: { kind: string }) => f.kind === 'check')!.evidence[0].flowId).toBe(rows[3]!.id);

  const exported = await t.call('export_pcap', { snapshot: id });
  const path = exported.structuredContent.path as string;
  expect(statSync(path).size).toBe(exported.structuredContent.bytes);
  expect(exported.structuredContent.file).toBe(`file://${path}`);
  expect(exported.content[1]).toMatchObject({ type: 'resource_link', uri: `pcap://${id}`, mimeType: 'application/vnd.tcpdump.pcap' });
  // The link reads through MCP: the same bytes, a pcap that capinfos (when installed) accepts.
  const blob = (await t.client.readResource({ uri: `pcap://${id}` })).contents[0] as { mimeType?: string; blob?: string };
  expect(blob.mimeType).toBe('application/vnd.tcpdump.pcap');
  const bytes = Buffer.from(blob.blob!, 'base64');
  expect(bytes.equals(readFileSync(path))).toBe(true);
  expect(PCAP_MAGIC).toContain(bytes.readUInt32LE(0));
  if (hasCapinfos) expect(execFileSync('capinfos', ['-c', path], { encoding: 'utf8' })).toMatch(/Number of packets:\s+\d+/);
  // The exported packets decode to the same exchanges, offline.
  const offline = (await t.call('list_flows', { capture: path, filter: `dst.port == ${port}` })).structuredContent.flows;
  expect(offline.map((r: Row) => `${r.call} ${r.status}`)).toEqual(rows.map((r) => `${r.call} ${r.status}`));

  const second = (await t.call('start_snapshot', {})).structuredContent.id as string;
  await hit('/ok/1');
  await hit('/new');
  await t.call('stop_snapshot', { id: second });
  const d = (await t.call('diff', { before: id, after: second })).structuredContent;
  expect(d.before.label).toBe(`snapshot ${id}`);
  expect(d.endpoints.added.map((e: { endpoint: string }) => e.endpoint)).toContain(`http 127.0.0.1:${port} GET /new`);
  expect(d.endpoints.removed.map((e: { endpoint: string }) => e.endpoint)).toContain(`http 127.0.0.1:${port} GET /fail`);
  expect(d.improvements.join('\n')).toMatch(/resolved warning finding: error-status: 1 × HTTP 503 from GET \/fail/);
}

/** run_and_verify with progress, then the history of runs and the commands that touch the service. */
async function runLoop(t: Connected): Promise<void> {
  const progress: { progress: number; total?: number; message?: string }[] = [];
  const r = await t.call('run_and_verify', { command: COMMAND(), spec: `version: 1\nchecks:\n  - name: no 5xx\n    select: 'http[status="5xx"]'\n    expect: { count: { exactly: 0 } }\n` },
    { onprogress: (p) => progress.push(p) });
  const out = r.structuredContent;
  expect(out.exitCode).toBe(0);
  expect(out.outputTail).toMatch(/\/ok\/1 200\n\/fail 503/);
  expect(out.snapshotId).toMatch(/^snap-/);
  expect(out.snapshot).toMatchObject({ id: out.snapshotId, open: false });
  expect(out.verdict).toBe('fail');
  expect(out.findings.some((f: { kind: string; summary: string }) => f.kind === 'check' && /no 5xx/.test(f.summary))).toBe(true);
  expect(text(r)).toMatch(/^command: exit 0; snapshot snap-\w+; run run-\w+\nverdict: FAIL/);
  // The text carries the findings' evidence, the run, the snapshot and the whole output kept.
  for (const f of out.findings) for (const e of f.evidence) expect(text(r)).toContain(`flow ${e.flowId} `);
  expect(text(r)).toContain(`run ${out.runId}: kept for run_history and runs_touching; backend ${out.backend}`);
  expect(text(r)).toMatch(new RegExp(`\\nsnapshot ${out.snapshotId}( "[^\\n]*")?: closed, flows from `));
  expect(text(r)).toMatch(/output \(the last 2 lines of stdout and stderr, at most 8000 characters\):\n {2}\/ok\/1 200\n {2}\/fail 503$/);
  expect(progress.length).toBeGreaterThanOrEqual(3);
  expect(progress.map((p) => p.progress)).toEqual([...progress.map((p) => p.progress)].sort((a, b) => a - b));
  expect(progress.at(-1)).toMatchObject({ progress: 5, total: 5 });
  expect(out.warnings).toEqual([]);
  expect(out.kept).toBe(true);

  const h = (await t.call('run_history', { command: `127.0.0.1:${port}` })).structuredContent;
  expect(h.runs[0]).toMatchObject({ id: out.runId, exitCode: 0, verdict: 'fail', snapshot: out.snapshotId });
  const f = h.findings.find((x: { kind: string; summary: string }) => /no 5xx/.test(x.summary));
  expect(f).toMatchObject({ failedRuns: 1, totalRuns: 1, lastRun: { id: out.runId, snapshot: out.snapshotId }, flaky: false });
  expect(f!.lastEvidence[0].flowId).toBeDefined();
  const byService = (await t.call('runs_touching', { service: `127.0.0.1:${port}` })).structuredContent.commands;
  expect(byService.map((c: { command: string }) => c.command)).toContain(COMMAND());
  const byPath = (await t.call('runs_touching', { path: '/ok/{id}' })).structuredContent.commands;
  expect(byPath[0]).toMatchObject({ command: COMMAND(), matched: [`127.0.0.1:${port} GET /ok/{id}`] });
  expect((await t.call('runs_touching', { path: '/elsewhere' })).structuredContent.commands).toEqual([]);
}

/** A cancelled run_and_verify kills the command's whole process group, and is kept, marked cancelled. */
async function cancelLoop(t: Connected): Promise<void> {
  const pidFile = join(mkdtempSync(join(tmpdir(), 'tapwire-mcp-cancel-')), 'pid');
  const abort = new AbortController();
  const call = t.client.callTool({ name: 'run_and_verify', arguments: { command: `echo $$ > ${pidFile}; sleep 60` } }, undefined, { signal: abort.signal, timeout: 60_000 });
  for (let i = 0; i < 300 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
  const pid = Number(readFileSync(pidFile, 'utf8'));
  abort.abort();
  await expect(call).rejects.toThrow();
  let alive = true;
  for (let i = 0; i < 200 && alive; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
  }
  expect(alive).toBe(false);
  // Kept once the capture is stopped and drained (which a loaded machine may take seconds for).
  let last;
  for (let i = 0; i < 300; i++) {
    last = (await t.call('run_history', { command: pidFile })).structuredContent.runs[0];
    if (last) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(last).toMatchObject({ cancelled: true, verdict: 'inconclusive' });
}

beforeAll(async () => { if (!why) await startWeb(); });
afterAll(() => { web?.close(); });

describe.skipIf(why !== '')('tapwire mcp: snapshots and runs through an agent (--api)', () => {
  let agent: Agent;
  let t: Connected;
  beforeAll(async () => {
    agent = await Agent.start({
      interfaces: ['lo'], filter: `tcp port ${port}`, listen: { host: '127.0.0.1', port: 0 }, dataDir: mkdtempSync(join(tmpdir(), 'tapwire-mcp-agent-')),
      retention: { maxBytes: 256 << 20, maxAgeSec: 3600 }, bodyLimit: 65536, redactKey: Buffer.from('mcp-live-key'),
    });
    t = await connect({ api: agent.address });
  });
  afterAll(async () => {
    await t?.close();
    await agent?.stop();
  });

  it('start, stop, list, flows, resources, service map, verify, export and diff', () => snapshotLoop(t));

  it('list_flows over a time window of the agent', async () => {
    const since = new Date().toISOString();
    await hit('/ok/window');
    // The agent makes a flow queryable within a second of its last byte.
    let rows: Row[] = [];
    for (let i = 0; i < 30 && rows.length === 0; i++) {
      rows = (await t.call('list_flows', { since, filter: 'request.path == "/ok/window"' })).structuredContent.flows;
      if (rows.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows).toHaveLength(1);
    const v = (await t.call('verify', { since })).structuredContent;
    expect(v.source.since).toBe(since);
    expect(v.coverage.flows).toBeGreaterThanOrEqual(1);
  });

  it('run_and_verify, run_history and runs_touching', () => runLoop(t));

  it('cancelling run_and_verify stops the command', () => cancelLoop(t));

  it('run_and_verify through the agent says the interface is the agent\'s', async () => {
    const r = (await t.call('run_and_verify', { command: 'true', interface: 'eth0' })).structuredContent;
    expect(r.warnings).toEqual([expect.stringMatching(/interface "eth0" ignored/)]);
  });
});

describe.skipIf(why !== '')('tapwire mcp: snapshots and runs with a local capture (no agent)', () => {
  let t: Connected;
  beforeAll(async () => {
    t = await connect({ iface: 'lo' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('start, stop, list, flows, resources, service map, verify, export and diff', () => snapshotLoop(t));

  it('run_and_verify, run_history and runs_touching', () => runLoop(t));

  it('cancelling run_and_verify stops the command', () => cancelLoop(t));

  it('flow:// and get_flow bound a live flow whose header value alone is past the bound', async () => {
    const small = await connect({ iface: 'lo', maxTokens: 2000 });
    try {
      const id = (await small.call('start_snapshot', {})).structuredContent.id as string;
      await fetch(`http://127.0.0.1:${port}/ok/long-header`, { headers: { 'x-long': 'v'.repeat(12_000) } }).then((r) => r.text());
      await small.call('stop_snapshot', { id });
      const row = (await small.call('list_flows', { snapshot: id, filter: `dst.port == ${port}` })).structuredContent.flows[0] as Row;
      const raw = ((await small.client.readResource({ uri: `flow://${row.id}` })).contents[0] as { text: string }).text;
      expect(raw.length / 4).toBeLessThanOrEqual(2000);
      const read = JSON.parse(raw);
      expect(read.truncated.fieldsCut).toBeGreaterThan(0);
      expect(read.payloads.join(' ')).toMatch(/request\.headers\.x-long \(cut to \d+ of 12000 characters\)/);
      const g = (await small.call('get_flow', { id: row.id })).structuredContent;
      const request = flowOf(g.flow, 'http').request!;
      expect(request.headers['x-long']).toMatch(/^v+…$/);
      expect(request.path).toBe('/ok/long-header');
    } finally {
      await small.close();
    }
  });

  it('export_pcap keeps only the newest exports', async () => {
    const id = (await t.call('start_snapshot', {})).structuredContent.id as string;
    await hit('/ok/export');
    await t.call('stop_snapshot', { id });
    let last = '';
    for (let i = 0; i < 23; i++) {
      last = (await t.call('export_pcap', { snapshot: id })).structuredContent.path;
      await new Promise((r) => setTimeout(r, 2));
    }
    const dir = join(t.ctx.dataDir, 'exports');
    const files = readdirSync(dir);
    expect(files).toHaveLength(20);
    expect(files).toContain(last.slice(dir.length + 1));
  });
});
