import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { SimNode } from './netns.js';
import { createCluster, PGBIN } from '../../scripts/record/postgres/cluster.mjs';

/**
 * Issue 6 end to end on a simulated node: pods are network namespaces on a bridge, with a real
 * HTTP service, a real gRPC service and a real PostgreSQL inside them, and a client pod calling
 * all three. Two agents capture at once — one on the bridge, one on `any` — and each API must
 * return exactly the exchanges the client made, named from the identities file, with no duplicates
 * from `any`. Then the bridge agent is restarted on the same data directory: its flows are back.
 */
const why = process.getuid?.() !== 0 ? 'needs root (network namespaces, libpcap capture)'
  : spawnSync('sh', ['-c', 'command -v ip']).status !== 0 ? 'no ip command (apt-get install iproute2)'
  : !existsSync(join(PGBIN, 'postgres')) ? `no PostgreSQL at ${PGBIN} (apt-get install postgresql)` : '';
if (why) console.warn(`test/agent/e2e.test.ts skipped: ${why}`);

const key = Buffer.from('e2e-redaction-key');
const RETENTION = { maxBytes: 256 * 1024 * 1024, maxAgeSec: 3600 };

async function allFlows(base: string, path = '/api/flows'): Promise<FlowRecord[]> {
  const out: FlowRecord[] = [];
  let cursor: string | null = null;
  do {
    const res = await fetch(`${base}${path}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { flows: FlowRecord[]; next: string | null };
    out.push(...page.flows);
    cursor = page.next;
  } while (cursor);
  return out;
}

async function until<T>(what: string, f: () => Promise<T>, ok: (t: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const summary = (fs: FlowRecord[]) => fs.map((f) => {
  const q = f.request as { method?: string; path?: string; query?: string } | undefined;
  return `${f.protocol} ${f.src.name}→${f.dst.name} ${f.protocol === 'postgres' ? q?.query : `${q?.method} ${q?.path}`}`;
}).sort();

describe.skipIf(why !== '')('tapwire agent on a simulated node (netns pods on a bridge)', () => {
  let node: SimNode;
  let bridgeAgent: Agent, anyAgent: Agent;
  let dataDir = '';
  let identities = '';
  let made: { http: { method: string; path: string }[]; grpc: { path: string }[]; postgres: { query: string }[] };

  beforeAll(async () => {
    node = new SimNode(4);
    const [web, rpc, db, cli] = node.pods;
    await node.run(0, [process.execPath, 'test/agent/pods/http-server.mjs', web!.ip, '8080'], /listening on/);
    await node.run(1, [process.execPath, 'test/agent/pods/grpc-server.mjs', rpc!.ip, '50051'], /listening on/);
    const cluster = createCluster({ hba: [`host all all ${node.subnet} trust`] });
    await node.run(2, ['setpriv', `--reuid=${cluster.uid}`, `--regid=${cluster.gid}`, '--clear-groups',
      join(PGBIN, 'postgres'), '-D', cluster.data, '-p', '5432', '-k', cluster.dir, '-c', `listen_addresses=${db!.ip}`], /ready to accept connections/);
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-e2e-'));
    identities = join(dir, 'identities.json');
    writeFileSync(identities, JSON.stringify({
      [web!.ip]: { name: 'web-7d9f', namespace: 'shop', workload: 'web', node: 'node-1' },
      [rpc!.ip]: { name: 'orders-5c2a', namespace: 'shop', workload: 'orders', node: 'node-1' },
      [db!.ip]: { name: 'postgres-0', namespace: 'data', workload: 'postgres', node: 'node-1' },
      [cli!.ip]: { name: 'tests-x1', namespace: 'ci', workload: 'tests', node: 'node-1' },
    }));
    dataDir = join(dir, 'bridge');
    const common = { filter: `net ${node.subnet}`, listen: { host: '127.0.0.1', port: 0 }, retention: RETENTION, identities, bodyLimit: 65536, redactKey: key };
    bridgeAgent = await Agent.start({ ...common, interfaces: [node.bridge], dataDir });
    anyAgent = await Agent.start({ ...common, interfaces: ['any'], dataDir: join(dir, 'any') });
    const run = await node.exec(3, [process.execPath, 'test/agent/pods/client.mjs', `${web!.ip}:8080`, `${rpc!.ip}:50051`, `${db!.ip}:5432`]);
    if (run.code !== 0) throw new Error(`client failed (${run.code}):\n${run.output}`);
    made = JSON.parse(run.stdout.trim().split('\n').pop()!);
  }, 60_000);

  afterAll(async () => {
    await bridgeAgent?.stop().catch(() => {});
    await anyAgent?.stop().catch(() => {});
    node?.down();
  });

  const expected = () => [
    ...made.http.map((h) => `http tests-x1→web-7d9f ${h.method} ${h.path}`),
    ...made.grpc.map((g) => `grpc tests-x1→orders-5c2a POST ${g.path}`),
    ...made.postgres.map((q) => `postgres tests-x1→postgres-0 ${q.query}`),
  ].sort();

  for (const which of ['bridge', 'any'] as const) {
    it(`on ${which}: the API returns exactly the client's exchanges, named from the identities file, once each`, async () => {
      const agent = which === 'bridge' ? bridgeAgent : anyAgent;
      const want = expected();
      const flows = await until('flows', () => allFlows(agent.address), (fs) => fs.length >= want.length);
      expect(summary(flows)).toEqual(want);
      expect(new Set(flows.map((f) => f.id)).size).toBe(flows.length);
      expect(flows.every((f) => !f.incomplete)).toBe(true);
      const one = flows.find((f) => f.protocol === 'grpc')!;
      expect(one.src).toMatchObject({ namespace: 'ci', workload: 'tests', node: 'node-1' });
      expect(one.dst).toMatchObject({ name: 'orders-5c2a', namespace: 'shop', workload: 'orders' });
      // ordered by start, oldest first
      expect(flows.map((f) => f.start)).toEqual([...flows.map((f) => f.start)].sort((a, b) => a - b));
    });
  }

  it('filters, a single flow, the service map and the metrics answer from the same flows', async () => {
    const base = bridgeAgent.address;
    const pgOnly = await (await fetch(`${base}/api/flows?filter=${encodeURIComponent('postgres && request.query.contains("now()")')}`)).json() as { flows: FlowRecord[] };
    expect(pgOnly.flows).toHaveLength(made.postgres.length);
    const one = await (await fetch(`${base}/api/flows/${pgOnly.flows[0]!.id}`)).json() as FlowRecord;
    expect(one.id).toBe(pgOnly.flows[0]!.id);
    const stats = await (await fetch(`${base}/api/stats?since=0`)).json() as { edges: { src: string; dst: string; protocol: string; count: number; errors: number; latencyMs: { p50: number } }[] };
    expect(stats.edges.map((e) => `${e.src}→${e.dst} ${e.protocol} ${e.count}`).sort()).toEqual([
      `tests-x1→orders-5c2a grpc ${made.grpc.length}`, `tests-x1→postgres-0 postgres ${made.postgres.length}`, `tests-x1→web-7d9f http ${made.http.length}`,
    ]);
    expect(stats.edges.every((e) => e.errors === 0 && e.latencyMs.p50 > 0)).toBe(true);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`tapwire_flows_total\\{protocol="http"\\} ${made.http.length}`));
    expect(metrics).toMatch(/tapwire_capture_packets\{interface="twbr/);
    // What bounds the agent's memory is reported beside the heap it bounds.
    const gauge = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? NaN);
    expect(gauge(/^tapwire_nodejs_heap_size_limit_bytes (\d+)/m)).toBeGreaterThan(gauge(/^tapwire_nodejs_heap_size_used_bytes (\d+)/m));
    expect(gauge(/^tapwire_reassembly_memory_bytes (\d+)/m)).toBeGreaterThanOrEqual(0);
    expect(gauge(/^tapwire_store_memory_flows\{unit="flows"\} (\d+)/m)).toBe(made.http.length + made.grpc.length + made.postgres.length);
    expect(gauge(/^tapwire_store_memory_flows\{unit="bytes"\} (\d+)/m)).toBeGreaterThan(0);
    expect(metrics).toMatch(/^tapwire_reassembly_evictions\{limit="memory"\} 0$/m);
  });

  it('tapwire verify --api and a snapshot read the same flows from the real agent', async () => {
    const base = bridgeAgent.address;
    const snap = await (await fetch(`${base}/api/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'all', since: 0 }) })).json() as { id: string };
    await fetch(`${base}/api/snapshots/${snap.id}/stop`, { method: 'POST' });
    const run = (args: string[]) => new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['dist/cli/main.js', 'verify', '--api', base, ...args, '--format', 'json']);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', (code) => resolve({ code, out }));
    });
    const total = made.http.length + made.grpc.length + made.postgres.length;
    for (const args of [['--snapshot', snap.id], ['--since', '0', '--until', String(Math.ceil(Date.now() / 1000))]]) {
      const r = await run(args);
      const v = JSON.parse(r.out) as { verdict: string; coverage: { flows: number } };
      expect(v.coverage.flows, args.join(' ')).toBe(total);
      expect(v.verdict).toBe('pass');
      expect(r.code).toBe(0);
    }
  });

  it('after a restart on the same data directory, the flows on disk are there again', async () => {
    const before = await allFlows(bridgeAgent.address);
    await bridgeAgent.stop();
    bridgeAgent = await Agent.start({
      interfaces: [node.bridge], filter: `net ${node.subnet}`, listen: { host: '127.0.0.1', port: 0 }, dataDir, retention: RETENTION, identities, bodyLimit: 65536, redactKey: key,
    });
    expect(bridgeAgent.store.recovery.flows).toBe(before.length);
    expect((await allFlows(bridgeAgent.address)).map((f) => f.id)).toEqual(before.map((f) => f.id));
  });
});
