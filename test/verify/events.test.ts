import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../src/api/server.js';
import type { ClusterEvent } from '../../src/enrich/index.js';
import { FlowFeed } from '../../src/service/feed.js';
import { StoreSource } from '../../src/service/store.js';
import { FlowStore } from '../../src/store/index.js';
import { AgentClient } from '../../src/client/index.js';
import { AgentBackend, runAndVerify } from '../../src/run/index.js';
import { connect, text } from '../mcp/helpers.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { loadSpecFile, verdictText, verifyWithSpec, type Finding, type Spec, type Verdict } from '../../src/verify/index.js';

/**
 * Cluster events, resource use and partial data in verdicts (issue 16), over the demo capture's
 * real flows with the identities a Kubernetes enricher would give them: order-service calls
 * payment-service (which answers 503 and is retried) and postgres. The events are made up around
 * the findings' real times: one inside the retries, one outside every finding, one of a pod the
 * flows never touch.
 */
const ID: Record<string, { name: string; workload: string; node: string }> = {
  '127.0.0.2': { name: 'order-5d8', workload: 'order-service', node: 'node-a' },
  '127.0.0.3': { name: 'payment-7f9c', workload: 'payment-service', node: 'node-b' },
  '127.0.0.4': { name: 'postgres-0', workload: 'postgres', node: 'node-b' },
};
let demo: FlowRecord[] = [], fixed: FlowRecord[] = [], spec: Spec;

async function flowsOf(file: string): Promise<FlowRecord[]> {
  const out: FlowRecord[] = [];
  await analyzeFile(file, { onRecord: (r) => { out.push(r); } });
  for (const r of out) for (const p of [r.src, r.dst]) if (ID[p.ip]) Object.assign(p, { ...ID[p.ip], namespace: 'shop' });
  return out.sort((a, b) => a.start - b.start);
}

beforeAll(async () => {
  demo = await flowsOf('pcaps/demo/demo.pcap');
  fixed = await flowsOf('pcaps/demo/demo-fixed.pcap');
  spec = await loadSpecFile('examples/specs/demo.yaml');
});

const event = (e: Partial<ClusterEvent> & Pick<ClusterEvent, 'id' | 'time' | 'kind' | 'reason'>): ClusterEvent => ({ namespace: 'shop', source: 'event', ...e });
const span = (f: Finding, flows: readonly FlowRecord[]) => {
  const fs = f.evidence.map((e) => flows.find((x) => x.id === e.flowId)!);
  return { start: Math.min(...fs.map((x) => x.start)), end: Math.max(...fs.map((x) => x.end)) };
};

describe('events in verdicts', () => {
  it('lists the events that touched the flows\' pods, with their offset into the run, and marks the findings they overlap', () => {
    const plain = verifyWithSpec(demo, undefined);
    const retry = plain.findings.find((f) => f.kind === 'retry')!;
    const r = span(retry, demo);
    // Kubernetes stamps whole seconds: the OOM kill's second lies inside the retries.
    const oomAt = Math.floor((r.start + r.end) / 2);
    const since = oomAt - 2.1;
    const last = Math.max(...demo.map((f) => f.end));
    const events = [
      event({ id: 'oom', time: oomAt, kind: 'oom-killed', reason: 'OOMKilled', pod: 'payment-7f9c', container: 'app', exitCode: 137, source: 'pod-status' }),
      // postgres-0 is in the flows, but its probe failed after every finding's evidence ended.
      event({ id: 'probe', time: Math.ceil(last) + 1, kind: 'probe-failed', reason: 'Unhealthy', pod: 'postgres-0', message: 'Readiness probe failed: connection refused', count: 3 }),
      // payment-7f9c again, after every flow ended: listed, but it overlaps no finding.
      event({ id: 'late', time: Math.ceil(last) + 5, kind: 'restart', reason: 'Error', pod: 'payment-7f9c', exitCode: 1 }),
      // A pod these flows never touched, and one of the same name in another namespace.
      event({ id: 'other', time: oomAt, kind: 'restart', reason: 'Error', pod: 'cart-1', exitCode: 1 }),
      event({ id: 'elsewhere', time: oomAt, kind: 'restart', reason: 'Error', pod: 'payment-7f9c', namespace: 'staging', exitCode: 1 }),
      // A rollout names its workload, not a pod.
      event({ id: 'roll', time: since - 0.5, kind: 'rollout', reason: 'ScalingReplicaSet', object: 'Deployment/payment-service', workload: 'payment-service', message: 'Scaled up replica set payment-service-7f9c to 1' }),
    ];
    const v = verifyWithSpec(demo, undefined, undefined, undefined, { since, until: last, label: 'run', events });
    expect(v.events?.map((e) => [e.id, e.at, e.text])).toEqual([
      ['roll', -0.5, 'Deployment/payment-service rolled out (Scaled up replica set payment-service-7f9c to 1) 0.5 s before the run'],
      ['oom', 2.1, 'payment-7f9c restarted (OOMKilled, exit 137) 2.1 s into the run'],
      ['probe', expect.any(Number), expect.stringMatching(/^postgres-0 failed a probe \(Readiness probe failed: connection refused\) \(3 times\) \d\.\d s after the run$/)],
      ['late', expect.any(Number), expect.stringMatching(/^payment-7f9c restarted \(Error, exit 1\) \d\.\d s after the run$/)],
    ]);
    // A finding is marked exactly when its evidence touches payment-7f9c and spans the OOM kill's
    // second: the retries are, so are the 503s they retried and the credential forwarded to payment
    // during them; the repeated lookups on postgres are not, and payment's later restart marks none.
    for (const f of v.findings) {
      const s = span(f, demo);
      const touchesPayment = f.evidence.some((e) => { const x = demo.find((y) => y.id === e.flowId)!; return x.dst.name === 'payment-7f9c' || x.src.name === 'payment-7f9c'; });
      expect(f.events, f.kind).toEqual(touchesPayment && oomAt <= s.end && oomAt + 1 > s.start ? ['oom'] : undefined);
    }
    expect(v.findings.find((f) => f.kind === 'retry')!.events).toEqual(['oom']);
    expect(v.findings.filter((f) => !f.events).map((f) => f.kind)).toContain('redundant-call');
    // The finding's own summary is unchanged (run history fingerprints it); the text adds a clause.
    expect(v.findings.find((f) => f.kind === 'retry')!.summary).toBe(retry.summary);
    const text = verdictText(v);
    expect(text).toContain('  cluster event: payment-7f9c restarted (OOMKilled, exit 137) 2.1 s into the run\n');
    expect(text).toMatch(/ERROR {3}retry: .*\n {11}while payment-7f9c restarted \(OOMKilled, exit 137\) 2\.1 s into the run\n/);
    expect(text).not.toContain('cart-1');
    expect(text).not.toContain('staging');
  });

  it('a capture file (no events) adds nothing; a source that keeps none says why; no event touching the pods says so', () => {
    const bare = verifyWithSpec(demo, undefined);
    expect(Object.keys(bare).sort()).toEqual(['coverage', 'findings', 'summary', 'verdict']);
    expect(bare.findings.every((f) => f.events === undefined)).toBe(true);
    const noted = verifyWithSpec(demo, undefined, undefined, undefined, { events: [], eventsNote: 'this agent does not watch Kubernetes (--kubernetes)' });
    expect(noted.events).toEqual([]);
    expect(noted.eventsNote).toBe('this agent does not watch Kubernetes (--kubernetes)');
    expect(verdictText(noted)).toContain('  cluster events: this agent does not watch Kubernetes (--kubernetes)\n');
    const quiet = verifyWithSpec(demo, undefined, undefined, undefined, { events: [event({ id: 'x', time: demo[0]!.start, kind: 'restart', reason: 'Error', pod: 'cart-1' })] });
    expect(quiet.events).toEqual([]);
    expect(verdictText(quiet)).toContain('cluster events: none touched the pods of these flows');
  });

  it('without a window start, offsets count from the first flow', () => {
    const t = Math.floor(demo[0]!.start) + 1;
    const v = verifyWithSpec(demo, undefined, undefined, undefined, { events: [event({ id: 'r', time: t, kind: 'restart', reason: 'Error', exitCode: 1, pod: 'order-5d8' })] });
    expect(v.events?.[0]?.at).toBe(Math.round((t - demo[0]!.start) * 10) / 10);
    expect(v.events?.[0]?.text).toMatch(/^order-5d8 restarted \(Error, exit 1\) \d\.\d s into the window$/);
  });
});

describe('partial data', () => {
  const missing = { agent: 'http://10.0.0.7:8899', error: 'connect ECONNREFUSED 10.0.0.7:8899' };
  const verdictOf = (flows: FlowRecord[], m: { agent: string; error: string; node?: string }[]): Verdict =>
    verifyWithSpec(flows, spec, undefined, undefined, { partial: { missing: m } });

  it('a pass over flows without some agents is inconclusive, naming them', () => {
    expect(verifyWithSpec(fixed, spec).verdict).toBe('pass');
    const v = verdictOf(fixed, [missing]);
    expect(v.verdict).toBe('inconclusive');
    expect(v.reason).toBe('partial data: 1 agent did not answer (http://10.0.0.7:8899: connect ECONNREFUSED 10.0.0.7:8899), and which nodes they capture is not known, so flows may be missing');
    expect(v.partial).toEqual({ missing: [missing] });
    // Without a spec every flow is needed, even when the missing agent's node is known.
    const bare = verifyWithSpec(fixed, undefined, undefined, undefined, { partial: { missing: [{ ...missing, node: 'node-c' }] } });
    expect(bare.verdict).toBe('inconclusive');
    expect(bare.reason).toMatch(/no spec names the services it is about, so every flow is needed/);
  });

  it('… unless the flows it needs are all there: every missing agent\'s node is known, and the named services\' flows are all on other nodes', () => {
    // payment and postgres run on node-b, order on node-a: node-c's agent missing takes nothing the spec needs.
    expect(verdictOf(fixed, [{ ...missing, node: 'node-c' }]).verdict).toBe('pass');
    // node-b's agent missing: the spec's services live there.
    const v = verdictOf(fixed, [{ ...missing, node: 'node-b' }]);
    expect(v.verdict).toBe('inconclusive');
    expect(v.reason).toMatch(/^partial data: 1 agent did not answer \(http:\/\/10\.0\.0\.7:8899 \(node node-b\): .*\); (payment-7f9c|postgres-0) \(flow \S+\) is on node node-b, whose agent is missing, so its flows there may be missing$/);
    // A pod of a named service whose node is not known could be on the missing node.
    const unknownNode = fixed.map((f) => (f.dst.ip === '127.0.0.4' ? { ...f, dst: { ...f.dst, node: undefined } } : f));
    expect(verdictOf(unknownNode, [{ ...missing, node: 'node-c' }]).reason).toMatch(/; postgres-0 \(flow \S+\) is on an unknown node, so its flows there may be missing$/);
  });

  it('a fail stands: an error seen is an error, whatever is missing', () => {
    const v = verdictOf(demo, [missing]);
    expect(v.verdict).toBe('fail');
    expect(v.partial?.missing).toHaveLength(1);
  });
});

describe('resource use in verdicts', () => {
  it('carries the pods\' usage, or why there is none, and says it in the text', () => {
    const usage = { pods: { 'shop/payment-7f9c': { cpu: { max: 950, mean: 400.5 }, memory: { max: 900 * 2 ** 20, mean: 300 * 2 ** 20 }, samples: 3 } }, unsampled: ['shop/order-5d8'], interval: 15 };
    const v = verifyWithSpec(fixed, spec, undefined, undefined, { usage });
    expect(v.usage).toEqual(usage);
    const text = verdictText(v);
    expect(text).toContain('  resource use: shop/payment-7f9c: CPU max 950m (mean 400.5m), memory max 900 MiB (mean 300 MiB), 3 samples\n');
    expect(text).toContain('  resource use: no sample of shop/order-5d8 in the window (one every 15 s)\n');
    const none = verifyWithSpec(fixed, spec, undefined, undefined, { usage: { unavailable: 'metrics API not reachable: metrics.k8s.io/v1beta1 answered 404 (metrics-server not installed)' } });
    expect(verdictText(none)).toContain('  resource use: metrics API not reachable: metrics.k8s.io/v1beta1 answered 404 (metrics-server not installed)\n');
    // Resource use informs; it does not change the verdict.
    expect(none.verdict).toBe('pass');
  });
});

/**
 * An agent API over a store holding `flows` (the demo's) and `events`; the MCP server pointed at
 * it. With `missing`, its flow pages say those agents did not answer, as the hub's do.
 */
async function agentWith(events: ClusterEvent[], kubernetes: boolean, flows: readonly FlowRecord[] = demo, missing?: { agent: string; error: string }[]) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-verdict-events-'));
  const store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 1e9 });
  for (const f of flows) store.add(structuredClone(f));
  for (const e of events) store.addEvent(e);
  await store.sync();
  const own = new StoreSource(store, new FlowFeed(), { kubernetes });
  // The hub's answer without some agents: the same source, its pages flagged.
  const source = missing ? Object.assign(Object.create(own) as StoreSource, {
    query: async (q: Parameters<StoreSource['query']>[0]) => ({ ...(await own.query(q)), partial: { missing } }),
  }) : own;
  const server = createApi({ source, registry: new Registry() });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mcp = await connect({ api: url });
  return {
    mcp, url,
    async close() {
      await mcp.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const agentWithFlows = (flows: readonly FlowRecord[], missing?: { agent: string; error: string }[]) => agentWith([], true, flows, missing);

describe('through the MCP verify tool, over an agent that keeps events', () => {
  it('the verdict of a live window lists the OOM kill with its offset into the window, and the retries it overlaps, in JSON and text', async () => {
    const plain = verifyWithSpec(demo, undefined);
    const r = span(plain.findings.find((f) => f.kind === 'retry')!, demo);
    const oomAt = Math.floor((r.start + r.end) / 2);
    const until = Math.ceil(Math.max(...demo.map((f) => f.start)));
    const a = await agentWith([event({ id: 'oom', time: oomAt, kind: 'oom-killed', reason: 'OOMKilled', pod: 'payment-7f9c', exitCode: 137, source: 'pod-status' })], true);
    try {
      const res = await a.mcp.call('verify', { since: String(Math.floor(Math.min(...demo.map((f) => f.start)))), until: String(until) });
      const v = res.structuredContent;
      expect(v.events?.map((e) => e.id)).toEqual(['oom']);
      expect(v.findings.find((f) => f.kind === 'retry')?.events).toEqual(['oom']);
      // Offsets count from the window asked for: its start is the first flow's second here.
      const at = Math.round((oomAt - Math.floor(Math.min(...demo.map((f) => f.start)))) * 10) / 10;
      expect(text(res)).toContain(`cluster event: payment-7f9c restarted (OOMKilled, exit 137) ${at.toFixed(1)} s into the window\n`);
      expect(text(res)).toMatch(/ERROR retry: [^\n]*\n(?: {6}[^\n]*\n)*? {6}while payment-7f9c restarted \(OOMKilled, exit 137\)/);
    } finally {
      await a.close();
    }
  });

  it('an agent that does not watch Kubernetes: the verdict carries its note, not an empty list taken as "nothing happened"', async () => {
    const a = await agentWith([], false);
    try {
      const until = Math.ceil(Math.max(...demo.map((f) => f.start)));
      const res = await a.mcp.call('verify', { since: String(Math.floor(demo[0]!.start)), until: String(until) });
      expect(res.structuredContent.eventsNote).toBe('this agent does not watch Kubernetes: start it with --kubernetes');
      expect(text(res)).toContain('cluster events: this agent does not watch Kubernetes: start it with --kubernetes\n');
    } finally {
      await a.close();
    }
  });
});

/** The built CLI, asynchronously: the agent it asks runs in this process. */
function tapwire(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['dist/cli/main.js', ...args]);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('partial pages from a hub, through HTTP', () => {
  it('the MCP verify tool and tapwire verify --api turn a pass into inconclusive (exit 3), naming the agent', async () => {
    const missing = [{ agent: 'http://10.0.0.9:8899', error: 'connect ECONNREFUSED 10.0.0.9:8899' }];
    const since = String(Math.floor(fixed[0]!.start)), until = String(Math.ceil(Math.max(...fixed.map((f) => f.start))));
    for (const m of [undefined, missing]) {
      // The same flows from the same API; only the pages' partial flag differs.
      const a = await agentWithFlows(fixed, m);
      try {
        const v = (await a.mcp.call('verify', { since, until, spec: 'examples/specs/demo.yaml' })).structuredContent;
        const cli = await tapwire(['verify', '--api', a.url, '--since', since, '--until', until, '--spec', 'examples/specs/demo.yaml']);
        if (!m) {
          expect([v.verdict, cli.status]).toEqual(['pass', 0]);
          continue;
        }
        expect(v.verdict).toBe('inconclusive');
        expect(v.reason).toMatch(/^partial data: 1 agent did not answer \(http:\/\/10\.0\.0\.9:8899: connect ECONNREFUSED 10\.0\.0\.9:8899\)/);
        expect(v.partial).toEqual({ missing });
        expect(cli.status, cli.stderr).toBe(3);
        expect(cli.stdout).toMatch(/^verdict: INCONCLUSIVE \(partial data: 1 agent did not answer \(http:\/\/10\.0\.0\.9:8899/);
      } finally {
        await a.close();
      }
    }
  });
});

describe('a run through an agent', () => {
  it('the run\'s verdict names the OOM kill by its offset from the command\'s start, and says resource use is not sampled', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-run-events-'));
    const store = await FlowStore.open({ dir, maxBytes: 16 << 20, maxAgeSec: 1e9 });
    let oomAt = 0;
    // What the capture would have stored while the command ran, stored at the drain that stopping
    // the snapshot waits for: one call to payment-7f9c, and the kubelet's report of its OOM kill.
    const drain = async () => {
      const t = Date.now() / 1000;
      oomAt = t - 0.22;
      const f = structuredClone(fixed.find((x) => x.dst.name === 'payment-7f9c')!);
      Object.assign(f, { id: 'run-flow-1', connectionId: 'run-flow', start: t - 0.25, end: t - 0.2, durationMs: 50 });
      store.add(f);
      store.addEvent(event({ id: 'oom', time: oomAt, kind: 'oom-killed', reason: 'OOMKilled', pod: 'payment-7f9c', exitCode: 137, source: 'pod-status' }));
      await store.sync();
      return { proven: true };
    };
    const server = createApi({ source: new StoreSource(store, new FlowFeed(), { kubernetes: true, drain }), registry: new Registry() });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const backend = new AgentBackend(new AgentClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), () => {});
      const r = await runAndVerify({ backend, command: 'sleep 0.3' });
      expect(r.run.flows).toBe(1);
      const at = Math.round((oomAt - r.run.startedAt) * 10) / 10;
      expect(at).toBeGreaterThan(0);
      expect(r.verdict.events?.map((e) => e.text)).toEqual([`payment-7f9c restarted (OOMKilled, exit 137) ${at.toFixed(1)} s into the run`]);
      expect(r.verdict.usage).toEqual({ unavailable: 'this agent does not sample resource use: start it with --kubernetes (the metrics API, metrics.k8s.io, is read then)' });
      const text = verdictText(r.verdict);
      expect(text).toContain(`  cluster event: payment-7f9c restarted (OOMKilled, exit 137) ${at.toFixed(1)} s into the run\n`);
      expect(text).toContain('  resource use: this agent does not sample resource use');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
