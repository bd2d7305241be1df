import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../../src/api/server.js';
import { NO_SAMPLER } from '../../../src/api/usage.js';
import { AgentClient } from '../../../src/client/index.js';
import { UsageSampler } from '../../../src/enrich/usage/index.js';
import type { FlowRecord } from '../../../src/flows/record.js';
import { AgentBackend, windowContext } from '../../../src/run/index.js';
import { FlowFeed } from '../../../src/service/feed.js';
import { StoreSource } from '../../../src/service/store.js';
import { FlowStore } from '../../../src/store/index.js';
import { verdictText, verifyWithSpec } from '../../../src/verify/index.js';

/**
 * Resource use from the sampler to a run's verdict: a stand-in metrics API (as in sampler.test.ts)
 * read by a UsageSampler, served by the agent's `GET /api/usage`, asked by the agent backend a run
 * and the MCP server use, and carried by the verdict with its text.
 */
const T0 = Date.parse('2026-12-07T12:00:00Z') / 1000;
const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
let metrics: Server, api: Server, plain: Server, store: FlowStore, dir = '', sampler: UsageSampler, withUsage: AgentBackend, without: AgentBackend;

const listen = async (s: Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  const items = [0, 15, 30].map((dt) => [
    { metadata: { name: 'payment-7f9c', namespace: 'shop' }, timestamp: iso(T0 + dt), window: '15s', containers: [{ name: 'app', usage: { cpu: `${(dt + 10) * 1e6}n`, memory: dt === 15 ? '900Mi' : '100Mi' } }] },
  ]);
  let read = 0;
  metrics = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/apis/metrics.k8s.io/v1beta1' ? { kind: 'APIResourceList', groupVersion: 'metrics.k8s.io/v1beta1', resources: [] }
      : { kind: 'PodMetricsList', items: items[Math.min(read++, 2)] }));
  });
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 's', server: await listen(metrics), skipTLSVerify: true }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'c', cluster: 's', user: 'u' }], currentContext: 'c' });
  sampler = new UsageSampler({ kubeconfig: kc, now: () => T0 + 30 });
  for (let i = 0; i < 3; i++) await sampler.poll();
  dir = mkdtempSync(join(tmpdir(), 'tapwire-usage-api-'));
  store = await FlowStore.open({ dir, maxBytes: 16 << 20, maxAgeSec: 1e9 });
  api = createApi({ source: new StoreSource(store, new FlowFeed()), registry: new Registry(), usage: sampler });
  plain = createApi({ source: new StoreSource(store, new FlowFeed()), registry: new Registry() });
  withUsage = new AgentBackend(new AgentClient(await listen(api)));
  without = new AgentBackend(new AgentClient(await listen(plain)));
});
afterAll(async () => {
  for (const s of [metrics, api, plain]) { s.closeAllConnections(); await new Promise<void>((r) => s.close(() => r())); }
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const flow: FlowRecord = {
  id: 'c-1', protocol: 'http', connectionId: 'c', start: T0 + 10, end: T0 + 20, durationMs: 10_000,
  src: { ip: '10.0.0.2', port: 40000, name: 'order-5d8', namespace: 'shop', workload: 'order-service' },
  dst: { ip: '10.0.0.3', port: 8080, name: 'payment-7f9c', namespace: 'shop', workload: 'payment-service' },
  request: { start: T0 + 10, end: T0 + 10, size: 10, headers: {}, bodySize: 0, method: 'GET', path: '/' },
  response: { start: T0 + 20, end: T0 + 20, size: 10, headers: {}, bodySize: 0, status: 200 },
} as FlowRecord;

describe('resource use through the agent API into a verdict', () => {
  it('the agent backend reads the sampler\'s answer, and the run\'s verdict carries it: the 900 MiB spike shows', async () => {
    const direct = sampler.usageOver(['shop/payment-7f9c', 'shop/order-5d8'], T0 + 10, T0 + 20);
    expect(await withUsage.usage(['shop/payment-7f9c', 'shop/order-5d8'], T0 + 10, T0 + 20)).toEqual(direct);
    const w = await windowContext(withUsage, [flow], { since: T0 + 10, until: T0 + 20, label: 'run' });
    const v = verifyWithSpec([flow], undefined, undefined, undefined, w);
    expect(v.usage).toEqual(direct);
    expect(verdictText(v)).toContain('resource use: shop/payment-7f9c: CPU max 40m (mean 32.5m), memory max 900 MiB (mean 500 MiB), 2 samples');
    expect(verdictText(v)).toContain('resource use: no sample of shop/order-5d8 in the window (one every 15 s)');
  });

  it('many pods are asked in chunks that fit the API\'s request target, and merged', async () => {
    const pods = Array.from({ length: 600 }, (_, i) => `shop/pod-with-a-rather-long-name-${i}`);
    const r = await withUsage.usage([...pods, 'shop/payment-7f9c'], T0, T0 + 30);
    expect('pods' in r && Object.keys(r.pods)).toEqual(['shop/payment-7f9c']);
    expect('pods' in r && r.unsampled?.length).toBe(600);
  });

  it('an agent without a sampler says so in words; bad parameters are refused by name', async () => {
    expect(await without.usage(['shop/a'], T0, T0 + 1)).toEqual({ unavailable: NO_SAMPLER });
    const w = await windowContext(without, [flow], { since: T0, until: T0 + 30 });
    expect(verifyWithSpec([flow], undefined, undefined, undefined, w).usage).toEqual({ unavailable: NO_SAMPLER });
    const base = withUsage.client.base.origin;
    const err = async (q: string) => { const r = await fetch(`${base}/api/usage?${q}`); return [r.status, ((await r.json()) as { error: string }).error]; };
    expect(await err(`since=${T0}&until=${T0 + 1}`)).toEqual([400, 'pods: give one or more "namespace/name", comma-separated']);
    expect(await err(`pods=nonamespace&since=${T0}&until=${T0 + 1}`)).toEqual([400, 'pods: "nonamespace" is not "namespace/name"']);
    expect(await err('pods=a/b')).toEqual([400, 'since and until are required (the window whose resource use is asked)']);
  });
});
