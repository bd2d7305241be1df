import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../helpers/apiserver.js';
import { apis, deployment, namespace, ownerOf, pod, service, slice, type Apis } from '../enrich/kubernetes/cluster.js';
import { SimNode } from './netns.js';

/**
 * Issue 16 end to end, as a user starts it: `tapwire agent --kubernetes --kubeconfig … --node …`
 * (the CLI, a child process) capturing a simulated node's bridge (network namespaces as pods),
 * with a real kube-apiserver that knows those pods. What a cluster's controllers and kubelet would
 * write (ReplicaSets, pod IPs, EndpointSlices, container restarts) is written by the test through
 * the API. Flows must carry the pods' names, workloads, services and labels; a pod the API learns
 * of after its first exchange still names it; a container restart becomes a cluster event in the
 * store, and a verdict over the window says so.
 */
const why = process.getuid?.() !== 0 ? 'needs root (network namespaces, libpcap capture)'
  : spawnSync('sh', ['-c', 'command -v ip']).status !== 0 ? 'no ip command (apt-get install iproute2)'
  : apiserverUnavailable();
if (why) console.warn(`test/agent/kubernetes.test.ts skipped: ${why}`);

const BIN = 'dist/cli/main.js';
const NS = 'shop';
const NODE = 'node-a';

async function allFlows(base: string, filter?: string): Promise<FlowRecord[]> {
  const out: FlowRecord[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams({ limit: '1000', since: '0', ...(filter ? { filter } : {}), ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${base}/api/flows?${q}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const page = (await res.json()) as { flows: FlowRecord[]; next: string | null };
    out.push(...page.flows);
    cursor = page.next;
  } while (cursor);
  return out;
}

/** A tapwire command started as a user would; resolves with its API URL once it says where. */
async function startTapwire(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: ChildProcess; url: string; log: () => string }> {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_NAME: '', TAPWIRE_REDACT_KEY: 'k8s-e2e', ...env } });
  let log = '';
  proc.stderr!.on('data', (d) => (log += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tapwire ${args[0]} not up after 30 s:\n${log}`)), 30_000);
    proc.stderr!.on('data', () => {
      const m = /API on (http:\/\/\S+?);/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`tapwire ${args[0]} exited ${code}:\n${log}`)); });
  });
  return { proc, url, log: () => log };
}

async function eventually<T>(f: () => Promise<T>, ok: (t: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(why !== '')('tapwire agent --kubernetes on a simulated node with a real API server', () => {
  let api: TestApiserver;
  let a: Apis;
  let sim: SimNode;
  let agent: ChildProcess;
  let base = '';
  let log = '';
  const names = { web: 'web-5d8f7-x2k9q', tests: 'tests-7h2m4', late: 'late-client-1' };

  const get = (i: number, path: string) => sim.exec(i, [process.execPath, '-e',
    `fetch(${JSON.stringify(`http://${sim.pods[0]!.ip}:8080${path}`)}).then((r) => r.text()).then((t) => console.log(t))`]);

  beforeAll(async () => {
    api = await startApiserver();
    a = apis(api.kubeconfig);
    sim = new SimNode(3);
    const [web, tests] = sim.pods;
    await sim.run(0, [process.execPath, 'test/agent/pods/http-server.mjs', web!.ip, '8080'], /listening on/);

    await namespace(a, NS);
    const { rs } = await deployment(a, NS, 'web', '5d8f7');
    await pod(a, NS, names.web, { node: NODE, ips: [web!.ip], labels: { app: 'web', 'pod-template-hash': '5d8f7' }, owner: rs });
    await service(a, NS, 'web');
    await slice(a, NS, 'web', [{ ip: web!.ip, pod: names.web, node: NODE }]);
    const job = await a.batch.createNamespacedJob({
      namespace: NS,
      body: { metadata: { name: 'tests' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 't', image: 'registry.k8s.io/pause:3.10' }] } } } },
    });
    await pod(a, NS, names.tests, { node: NODE, ips: [tests!.ip], labels: { 'job-name': 'tests' }, owner: ownerOf(job, 'Job', 'batch/v1') });
    // A pod of another node, with the late client's address: this agent must never see it.
    await pod(a, NS, 'elsewhere-1', { node: 'node-b', ips: [sim.pods[2]!.ip] });

    const started = await startTapwire(['agent', '--kubeconfig', api.kubeconfig, '--node', NODE, '--interface', sim.bridge,
      '--filter', `net ${sim.subnet}`, '--listen', '127.0.0.1:0', '--data-dir', mkdtempSync(join(tmpdir(), 'tapwire-k8s-agent-'))]);
    agent = started.proc;
    base = started.url;
    log = started.log();
  }, 120_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
    sim?.down();
    await api?.stop();
  }, 60_000);

  it('says what it watches: the node, its pods, the services', () => {
    expect(log).toMatch(new RegExp(`kubernetes: node ${NODE}: 2 pods, \\d+ services?, \\d+ endpointslices?`));
  });

  it('names both peers from the API: pod, namespace, top workload, node, service, labels', async () => {
    for (const i of [1, 2, 3]) expect((await get(1, `/items/${i}`)).code).toBe(0);
    const flows = await eventually(() => allFlows(base), (f) => f.length >= 3);
    expect(flows).toHaveLength(3);
    for (const f of flows) {
      expect(f.src).toMatchObject({ name: names.tests, namespace: NS, workload: 'tests', node: NODE });
      expect(f.dst).toMatchObject({ name: names.web, namespace: NS, workload: 'web', node: NODE, service: 'web', labels: { app: 'web', 'pod-template-hash': '5d8f7' } });
    }
    // The filter reads the new fields.
    expect(await allFlows(base, 'dst.service == "web" && src.workload == "tests"')).toHaveLength(3);
    expect(await allFlows(base, 'dst.labels["app"] == "web"')).toHaveLength(3);
    expect(await allFlows(base, 'dst.service == "payments"')).toHaveLength(0);
  });

  it('a pod the API learns of after its first exchange still names the record', async () => {
    const late = sim.pods[2]!;
    const made = get(2, '/items/9');
    // The exchange completes (and waits in the agent) before the API knows the pod's address:
    // the kubelet has not reported it yet. Then the API server learns of it.
    await new Promise((r) => setTimeout(r, 300));
    await pod(a, NS, names.late, { node: NODE, ips: [late.ip], labels: { app: 'late' } });
    expect((await made).code).toBe(0);
    const flows = await eventually(() => allFlows(base, 'request.path == "/items/9"'), (f) => f.length >= 1);
    expect(flows).toHaveLength(1);
    expect(flows[0]!.src).toMatchObject({ name: names.late, namespace: NS, node: NODE });
  });

  it('a container restart (OOMKilled) is a cluster event, and a verdict over the window names it', async () => {
    const since = Date.now() / 1000 - 60;
    const p = await a.core.readNamespacedPod({ name: names.web, namespace: NS });
    const now = new Date();
    // What the kubelet writes after the container was OOM-killed and started again.
    p.status = {
      ...p.status,
      containerStatuses: [{
        name: 'app', image: 'registry.k8s.io/pause:3.10', imageID: '', ready: true, restartCount: 1, started: true,
        state: { running: { startedAt: now } },
        lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: new Date(now.getTime() - 60_000), finishedAt: new Date(now.getTime() - 500) } },
      }],
    };
    await a.core.replaceNamespacedPodStatus({ name: names.web, namespace: NS, body: p });

    const page = await eventually(async () => (await (await fetch(`${base}/api/events?namespace=${NS}&pod=${names.web}&since=0`)).json()) as { events: { kind: string; exitCode?: number; reason: string; pod: string }[] },
      (e) => e.events.some((x) => x.kind === 'oom-killed'));
    expect(page.events.filter((e) => e.kind === 'oom-killed')).toEqual([expect.objectContaining({ pod: names.web, reason: 'OOMKilled', exitCode: 137 })]);

    const v = spawnSync(process.execPath, [BIN, 'verify', '--api', base, '--since', String(since), '--until', String(Date.now() / 1000 + 5)], { encoding: 'utf8' });
    expect(v.stdout).toMatch(new RegExp(`${names.web} restarted \\(OOMKilled, exit 137\\)`));
    const json = spawnSync(process.execPath, [BIN, 'verify', '--api', base, '--since', String(since), '--until', String(Date.now() / 1000 + 5), '--format', 'json'], { encoding: 'utf8' });
    const verdict = JSON.parse(json.stdout) as { events?: { kind: string; pod?: string }[] };
    expect(verdict.events?.some((e) => e.kind === 'oom-killed' && e.pod === names.web)).toBe(true);
  });

  it('a hub over the agent adds the cluster\'s Events (its own watch) to the agent\'s pod events, and serves the named flows', async () => {
    // A second node's agent (its pods: none here), which will die: the hub must name its node.
    const other = await startTapwire(['agent', '--kubeconfig', api.kubeconfig, '--node', 'node-b', '--interface', 'lo', '--filter', 'tcp port 9',
      '--listen', '127.0.0.1:0', '--data-dir', mkdtempSync(join(tmpdir(), 'tapwire-k8s-agent-b-'))]);
    const started = await startTapwire(['hub', '--agents', `${base},${other.url}`, '--kubeconfig', api.kubeconfig, '--listen', '127.0.0.1:0']);
    const hub = started.proc;
    const hubBase = started.url;
    const hubLog = started.log();
    try {
      expect(hubLog).toContain('watching the cluster\'s Events');
      // What the kubelet writes when a readiness probe fails.
      const now = new Date();
      await a.core.createNamespacedEvent({
        namespace: NS,
        body: {
          metadata: { name: `${names.web}.probe1` }, type: 'Warning', reason: 'Unhealthy', message: 'Readiness probe failed: HTTP probe failed with statuscode: 503',
          involvedObject: { kind: 'Pod', namespace: NS, name: names.web, fieldPath: 'spec.containers{app}' }, source: { component: 'kubelet', host: NODE },
          firstTimestamp: now, lastTimestamp: now, count: 1,
        },
      });
      const page = await eventually(async () => (await (await fetch(`${hubBase}/api/events?namespace=${NS}&since=0`)).json()) as { events: { kind: string; pod?: string; source: string }[] },
        (p) => p.events.some((e) => e.kind === 'probe-failed'));
      expect(page.events.filter((e) => e.kind === 'probe-failed')).toEqual([expect.objectContaining({ pod: names.web, source: 'event' })]);
      expect(page.events.some((e) => e.kind === 'oom-killed' && e.source === 'pod-status')).toBe(true);
      // Resource use through the hub: each agent asked for its node's pods; none can say here.
      const t = Date.now() / 1000;
      const usage = await (await fetch(`${hubBase}/api/usage?${new URLSearchParams({ pods: `${NS}/${names.web}`, since: String(t - 60), until: String(t) })}`)).json() as { unavailable?: string };
      expect(usage.unavailable).toContain(`${base}: metrics API not reachable`);
      const flows = await allFlows(hubBase, 'dst.service == "web"');
      expect(flows.length).toBe((await allFlows(base, 'dst.service == "web"')).length);

      // node-b's agent dies: pages come back partial, naming it and the node it captured.
      other.proc.kill('SIGKILL');
      await new Promise((r) => other.proc.once('exit', r));
      const without = await (await fetch(`${hubBase}/api/flows?since=0&limit=10`)).json() as { flows: FlowRecord[]; partial?: { missing: { agent: string; node?: string }[] } };
      expect(without.flows.length).toBeGreaterThan(0);
      expect(without.partial?.missing).toEqual([expect.objectContaining({ agent: other.url, node: 'node-b' })]);
    } finally {
      hub.kill('SIGTERM');
      if (other.proc.exitCode === null) other.proc.kill('SIGKILL');
    }
  });

  it('resource use: the API server has no metrics-server here, and the agent says so in words', async () => {
    const now = Date.now() / 1000;
    const q = new URLSearchParams({ pods: `${NS}/${names.web}`, since: String(now - 60), until: String(now) });
    const r = await eventually(async () => (await (await fetch(`${base}/api/usage?${q}`)).json()) as { unavailable?: string }, (u) => u.unavailable !== undefined);
    expect(r.unavailable).toMatch(/metrics\.k8s\.io.*404/);
  });

  it('metrics say what the informers hold and what the API was asked', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/tapwire_kubernetes_objects\{kind="pods"\} 3/);
    expect(text).toMatch(/tapwire_kubernetes_api_requests\{kind="watches"\} [1-9]/);
    expect(text).toMatch(/tapwire_kubernetes_late_records\{state="known"\} [1-9]/);
  });
});
