import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UsageSampler, type UsageReport } from '../../../src/enrich/usage/index.js';

/**
 * The sampler against a stand-in for metrics-server: a small HTTP server that answers discovery and
 * `LIST /apis/metrics.k8s.io/v1beta1/pods` with the PodMetricsList shape metrics-server sends
 * (metadata, timestamp, window, containers[].usage with cpu in nanocores and memory in Ki), reached
 * through a kubeconfig file as the agent reaches its cluster. Why a stand-in: the real apiserver
 * this repo builds (scripts/k8s/apiserver.sh) has no metrics-server and no kubelets for it to
 * scrape, so it can only answer "not there" (apiserver.test.ts checks that path against it). What
 * the stand-in does not do that the real one does: the aggregation layer's proxying and
 * authentication, metrics-server's own scrape timing, and field and label selectors (the sampler
 * sends none).
 */
const TOKEN = 'stand-in-token';
let server: Server, dir = '', kubeconfig = '';
let pods: unknown[] = [];
let listStatus = 200, discoveryStatus = 200;
const seen: { path: string; auth: string | undefined }[] = [];

const T0 = Date.parse('2026-12-07T12:00:00Z') / 1000;
const iso = (sec: number) => new Date(sec * 1000).toISOString().replace('.000Z', 'Z');
function podMetrics(ns: string, name: string, at: number, containers: [string, string][], window = '15s') {
  return {
    metadata: { name, namespace: ns, creationTimestamp: iso(at), labels: { app: name.split('-')[0] } },
    timestamp: iso(at), window,
    containers: containers.map(([cpu, memory], i) => ({ name: `c${i}`, usage: { cpu, memory } })),
  };
}

function answer(req: IncomingMessage): [number, unknown] {
  seen.push({ path: req.url ?? '', auth: req.headers.authorization });
  if (req.headers.authorization !== `Bearer ${TOKEN}`) return [401, { kind: 'Status', code: 401 }];
  if (req.url === '/apis/metrics.k8s.io/v1beta1') {
    return [discoveryStatus, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'metrics.k8s.io/v1beta1', resources: [{ name: 'pods', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] }] }];
  }
  if (req.url === '/apis/metrics.k8s.io/v1beta1/pods') return [listStatus, { kind: 'PodMetricsList', apiVersion: 'metrics.k8s.io/v1beta1', metadata: {}, items: pods }];
  return [404, { kind: 'Status', code: 404 }];
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const [status, body] = answer(req);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'tapwire-usage-'));
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, [
    'apiVersion: v1', 'kind: Config',
    `clusters: [{name: s, cluster: {server: "http://127.0.0.1:${(server.address() as AddressInfo).port}", insecure-skip-tls-verify: true}}]`,
    `users: [{name: u, user: {token: "${TOKEN}"}}]`,
    'contexts: [{name: c, context: {cluster: s, user: u}}]', 'current-context: c', ''].join('\n'));
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => { pods = []; listStatus = 200; discoveryStatus = 200; seen.length = 0; });

function sampler(o: { pods?: Set<string> } = {}) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return new UsageSampler({ kubeconfig: kc, now: () => T0 + 60, ...(o.pods ? { pods: () => o.pods! } : {}) });
}
const report = (a: ReturnType<UsageSampler['usageOver']>): UsageReport => {
  if ('unavailable' in a) throw new Error(`unavailable: ${a.unavailable}`);
  return a;
};

describe('UsageSampler against a stand-in metrics API', () => {
  it('keeps the node\'s pods\' samples and answers max and mean over a window: a memory spike shows', async () => {
    const s = sampler({ pods: new Set(['shop/payment-7f9c', 'shop/orders-1']) });
    // Three reads 15 s apart; payment's memory jumps in the second, its CPU is two containers summed.
    const reads = [
      [podMetrics('shop', 'payment-7f9c', T0, [['100000000n', '100Mi'], ['50m', '28Mi']]), podMetrics('shop', 'orders-1', T0, [['10m', '50Mi']]), podMetrics('kube-system', 'coredns-1', T0, [['3m', '20Mi']])],
      [podMetrics('shop', 'payment-7f9c', T0 + 15, [['900m', '900Mi'], ['100m', '100Mi']]), podMetrics('shop', 'orders-1', T0 + 15, [['20m', '50Mi']])],
      [podMetrics('shop', 'payment-7f9c', T0 + 30, [['100m', '100Mi'], ['0', '28Mi']]), podMetrics('shop', 'orders-1', T0 + 30, [['30m', '50Mi']])],
    ];
    for (const items of reads) {
      pods = items;
      await s.poll();
    }
    expect(s.unavailable).toBeUndefined();
    // One discovery, then one list a read: the request cost the module states.
    expect(s.requests).toEqual({ discovery: 1, list: 3 });
    expect(seen.every((x) => x.auth === `Bearer ${TOKEN}`)).toBe(true);

    const all = report(s.usageOver(['shop/payment-7f9c', 'shop/orders-1', 'kube-system/coredns-1'], T0 - 15, T0 + 30));
    expect(all.pods['shop/payment-7f9c']).toEqual({
      cpu: { max: 1000, mean: 416.7 }, memory: { max: 1000 * 2 ** 20, mean: Math.round((128 + 1000 + 128) / 3 * 2 ** 20) }, samples: 3,
    });
    expect(all.pods['shop/orders-1']).toEqual({ cpu: { max: 30, mean: 20 }, memory: { max: 50 * 2 ** 20, mean: 50 * 2 ** 20 }, samples: 3 });
    // coredns runs on another node: the filter kept it out, so it is named as unsampled, not zero.
    expect(all.unsampled).toEqual(['kube-system/coredns-1']);
    expect(all.interval).toBe(15);

    // A run of 2 s between the reads at T0+15 and T0+30 is covered by the T0+30 sample's window only.
    const run = report(s.usageOver(['shop/payment-7f9c'], T0 + 20, T0 + 22));
    expect(run.pods['shop/payment-7f9c']).toMatchObject({ samples: 1, memory: { max: 128 * 2 ** 20 } });
    // A window long before any sample has none.
    expect(report(s.usageOver(['shop/payment-7f9c'], T0 - 600, T0 - 300)).unsampled).toEqual(['shop/payment-7f9c']);
  });

  it('a timestamp read twice is one sample (metrics-server had not resampled yet)', async () => {
    const s = sampler();
    pods = [podMetrics('shop', 'a-1', T0, [['10m', '1Mi']])];
    await s.poll();
    await s.poll();
    expect(report(s.usageOver(['shop/a-1'], T0 - 15, T0)).pods['shop/a-1']?.samples).toBe(1);
  });

  it('a bad quantity, time or window skips that pod\'s sample and is counted; the others are kept', async () => {
    const s = sampler();
    pods = [
      podMetrics('shop', 'good-1', T0, [['10m', '1Mi']]),
      podMetrics('shop', 'badcpu-1', T0, [['ten', '1Mi']]),
      podMetrics('shop', 'badmem-1', T0, [['10m', '-1Mi']]),
      podMetrics('shop', 'badwin-1', T0, [['10m', '1Mi']], 'thirty'),
      { ...podMetrics('shop', 'badtime-1', T0, [['10m', '1Mi']]), timestamp: 'yesterday' },
      { metadata: { name: 'nons' }, timestamp: iso(T0), window: '15s', containers: [] },
    ];
    await s.poll();
    expect(s.skipped).toBe(5);
    const r = report(s.usageOver(['shop/good-1', 'shop/badcpu-1'], T0 - 15, T0));
    expect(Object.keys(r.pods)).toEqual(['shop/good-1']);
    expect(r.unsampled).toEqual(['shop/badcpu-1']);
    expect(r.skipped).toBe(5);
  });

  it('RBAC refusing the list: the verdict\'s words say 403 and what to grant', async () => {
    const s = sampler();
    listStatus = 403;
    await s.poll();
    expect(s.usageOver(['shop/a-1'], T0, T0 + 1)).toEqual({
      unavailable: expect.stringMatching(/^metrics API not reachable: metrics\.k8s\.io\/v1beta1 answered 403 \(RBAC: .*"pods" in the "metrics\.k8s\.io" API group\)$/),
    });
  });

  it('an APIService without metrics-server behind it (503), and a body that is not a PodMetricsList', async () => {
    const s = sampler();
    discoveryStatus = 503;
    await s.poll();
    expect(s.unavailable).toMatch(/answered 503 \(the APIService is registered but metrics-server does not answer\)/);
    discoveryStatus = 200;
    pods = 'nope' as unknown as unknown[];
    await s.poll();
    expect(s.unavailable).toMatch(/answered without an "items" list/);
  });

  it('before the first read, and with no server at all, it says so rather than answering zero', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 's', server: 'http://127.0.0.1:9', skipTLSVerify: true }], users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'c', cluster: 's', user: 'u' }], currentContext: 'c',
    });
    const s = new UsageSampler({ kubeconfig: kc });
    expect(s.usageOver(['a/b'], 0, 1)).toEqual({ unavailable: expect.stringMatching(/not read yet/) });
    await s.poll();
    expect(s.usageOver(['a/b'], 0, 1)).toEqual({ unavailable: expect.stringMatching(/^metrics API not reachable: http:\/\/127\.0\.0\.1:9: .*ECONNREFUSED/) });
  });
});
