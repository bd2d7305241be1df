/**
 * KubernetesIdentity against a real kube-apiserver + etcd (scripts/k8s/apiserver.sh): objects are
 * created as a cluster would create them, and the identity is checked through lookup(), the IP
 * history and the requests the informers sent (through a counting proxy).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { KubernetesIdentity, LateIdentities, loadKubeConfig } from '../../../src/enrich/kubernetes/index.js';
import type { FlowRecord } from '../../../src/flows/index.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigText } from '../../../bench/k8s/proxy.mjs';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../../helpers/apiserver.js';
import { apis, deletePod, deployment, namespace, node, pod, podIps, podLabels, service, slice, sleep, until, type Apis } from './cluster.js';

const why = apiserverUnavailable();
if (why) console.log(`skipping Kubernetes identity tests: ${why}`);

const now = () => Date.now() / 1000;
const fast = { initialBackoffMs: 100, maxBackoffMs: 400 };

describe.skipIf(why !== '')('KubernetesIdentity against a real API server', () => {
  let api: TestApiserver;
  let a: Apis;
  let id: KubernetesIdentity;
  const podEvents: [string, string][] = [];
  const ordersIp = '10.244.1.10';
  let cartIp = '';

  beforeAll(async () => {
    api = await startApiserver();
    a = apis(api.kubeconfig);
    await namespace(a, 'shop');
    await node(a, 'node-a', '172.30.0.1');
    await node(a, 'node-b', '172.30.0.2');
    const { rs } = await deployment(a, 'shop', 'orders', '5d8f9c7b6');
    await pod(a, 'shop', 'orders-5d8f9c7b6-x1x2x', {
      node: 'node-a', ips: [ordersIp], labels: { app: 'orders', 'pod-template-hash': '5d8f9c7b6' }, owner: rs,
    });
    await pod(a, 'shop', 'bare', { node: 'node-a', ips: ['10.244.1.11'] });
    await pod(a, 'shop', 'remote', { node: 'node-b', ips: ['10.244.2.10'], labels: { app: 'cart' } });
    cartIp = await service(a, 'shop', 'cart');
    await slice(a, 'shop', 'cart', [{ ip: '10.244.2.10', pod: 'remote', node: 'node-b' }, { ip: ordersIp, pod: 'orders-5d8f9c7b6-x1x2x', node: 'node-a' }]);
    const kc = await loadKubeConfig({ kubeconfig: api.kubeconfig });
    id = await KubernetesIdentity.start(kc, { scope: 'cluster', informer: fast });
    id.onPod((type, p) => podEvents.push([type, p.metadata!.name!]));
  });

  afterAll(async () => {
    id?.stop();
    await api?.stop();
  });

  it('resolves what was there before it started, from the objects\' creation on', async () => {
    const orders = id.lookup(ordersIp);
    expect(orders).toEqual({
      name: 'orders-5d8f9c7b6-x1x2x', namespace: 'shop', workload: 'orders', node: 'node-a',
      labels: { app: 'orders', 'pod-template-hash': '5d8f9c7b6' }, service: 'cart',
    });
    const p = await a.core.readNamespacedPod({ name: 'orders-5d8f9c7b6-x1x2x', namespace: 'shop' });
    expect(id.ipHistory.versionsOf(ordersIp)[0]!.from).toBe(p.metadata!.creationTimestamp!.getTime() / 1000);
    // A bare pod has no workload; a ClusterIP names its Service; a node's InternalIP its node.
    expect(id.lookup('10.244.1.11')).toEqual({ name: 'bare', namespace: 'shop', node: 'node-a' });
    expect(id.lookup(cartIp)).toEqual({ name: 'cart', namespace: 'shop', service: 'cart' });
    expect(id.lookup('172.30.0.2')).toEqual({ name: 'node-b', node: 'node-b' });
    // IPv4-mapped IPv6 is the same address.
    expect(id.lookup(`::ffff:${ordersIp}`)?.name).toBe('orders-5d8f9c7b6-x1x2x');
    const s = id.stats();
    expect(s).toMatchObject({ pods: 3, nodes: 2, lists: 4, watches: 4, restarts: 0, relists: 0 });
    expect(s.services).toBeGreaterThanOrEqual(2); // cart and the API server's own "kubernetes"
  });

  it('follows a pod added, modified and deleted, and keeps what it was for earlier flows', async () => {
    const ip = '10.244.1.20';
    await pod(a, 'shop', 'pay-1', { node: 'node-a', labels: { app: 'pay', track: 'stable' } });
    // No IP yet: the pod is known, its address is not.
    await until('the pod without IP', () => podEvents.some(([t, n]) => t === 'add' && n === 'pay-1'));
    expect(id.lookup(ip)).toBeUndefined();
    await podIps(a, 'shop', 'pay-1', [ip, 'fd00:10:244::20']);
    await until('pay-1 known', () => id.lookup(ip)?.name === 'pay-1');
    expect(id.lookup('fd00:10:244:0:0:0:0:20')?.name).toBe('pay-1');
    const t1 = now();
    await sleep(30);
    await podLabels(a, 'shop', 'pay-1', { app: 'pay', track: 'canary' });
    await until('new labels', () => id.lookup(ip)?.labels?.track === 'canary');
    expect(id.lookup(ip, t1)?.labels?.track).toBe('stable');
    const t2 = now();
    await sleep(30);
    await deletePod(a, 'shop', 'pay-1');
    await until('pay-1 gone', () => id.lookup(ip) === undefined);
    expect(id.lookup(ip, t2)).toMatchObject({ name: 'pay-1', labels: { track: 'canary' } });
    expect(id.lookup(ip, t1)?.labels?.track).toBe('stable');
    expect(id.lookup(ip, now() + 1)).toBeUndefined();
    // Added without IP; IPs, labels and the deletion timestamp as updates; then deleted.
    const seen = podEvents.filter(([, n]) => n === 'pay-1').map(([t]) => t);
    expect(seen[0]).toBe('add');
    expect(seen.at(-1)).toBe('delete');
    expect(seen.slice(1, -1).every((t) => t === 'update') && seen.length >= 4).toBe(true);
  });

  it('gives a reused IP the identity it had at the flow\'s time', async () => {
    const ip = '10.244.1.30';
    await pod(a, 'shop', 'old', { node: 'node-a', ips: [ip] });
    await until('old known', () => id.lookup(ip)?.name === 'old');
    const during = now();
    await sleep(30);
    await deletePod(a, 'shop', 'old');
    await until('old gone', () => id.lookup(ip) === undefined);
    const between = now();
    await sleep(30);
    await pod(a, 'shop', 'new', { node: 'node-a', ips: [ip] });
    await until('new known', () => id.lookup(ip)?.name === 'new');
    const after = now();
    expect(id.lookup(ip, during)?.name).toBe('old');
    expect(id.lookup(ip, after)?.name).toBe('new');
    // The new pod's version starts at its creation, not before the old one ended.
    const [v1, v2] = id.ipHistory.versionsOf(ip);
    expect(v1!.to).toBeLessThanOrEqual(v2!.from);
    expect(id.lookup(ip, between)?.name).not.toBe('old');
  });

  it('moves a pod between Services when its EndpointSlices change', async () => {
    const checkoutIp = await service(a, 'shop', 'checkout');
    await until('checkout known', () => id.lookup(checkoutIp)?.service === 'checkout');
    const t0 = now();
    await sleep(30);
    await slice(a, 'shop', 'cart', [{ ip: '10.244.2.10', pod: 'remote', node: 'node-b' }]);
    await slice(a, 'shop', 'checkout', [{ ip: ordersIp, pod: 'orders-5d8f9c7b6-x1x2x', node: 'node-a' }]);
    await until('orders backs checkout', () => id.lookup(ordersIp)?.service === 'checkout');
    expect(id.lookup(ordersIp, t0)?.service).toBe('cart');
    // Backing two Services: both, sorted.
    await slice(a, 'shop', 'cart', [{ ip: '10.244.2.10' }, { ip: ordersIp }]);
    await until('orders backs both', () => id.lookup(ordersIp)?.service === 'cart,checkout');
  });

  it('holds a record whose pod is not known yet, and releases it enriched when the pod appears', async () => {
    const released: FlowRecord[] = [];
    const late = new LateIdentities(id, (r) => released.push(r), { waitSec: 2 });
    const t = now();
    const rec = (dst: string) => ({ start: t, src: { ip: ordersIp, port: 40000 }, dst: { ip: dst, port: 8080 } }) as unknown as FlowRecord;
    late.push(rec('10.244.1.40'), t);
    late.push(rec('10.244.1.41'), t);
    late.push(rec(cartIp), t); // both known: out at once
    expect(released.map((r) => r.dst.name)).toEqual(['cart']);
    await pod(a, 'shop', 'late', { node: 'node-a', ips: ['10.244.1.40'], labels: { app: 'late' } });
    await until('late released', () => released.length === 2);
    expect(released[1]!.dst).toMatchObject({ ip: '10.244.1.40', name: 'late', namespace: 'shop', node: 'node-a' });
    expect(released[1]!.src.name).toBe('orders-5d8f9c7b6-x1x2x');
    late.tick(t + 2);
    expect(released[2]!.dst.name).toBeUndefined();
    expect(released[2]!.src.name).toBe('orders-5d8f9c7b6-x1x2x');
    expect(late.stats()).toMatchObject({ held: 0, releasedKnown: 2, releasedTimeout: 1 });
    late.close();
  });

  it('names the Deployment through one GET when the pod-template-hash label does not prove it', async () => {
    const { rs } = await deployment(a, 'shop', 'billing', '7b9d4f8c5');
    const gets = id.stats().ownerGets;
    // No pod-template-hash label on the pod: the ReplicaSet's name alone does not prove a Deployment.
    await pod(a, 'shop', 'billing-7b9d4f8c5-aaaaa', { node: 'node-a', ips: ['10.244.1.50'], owner: rs });
    await pod(a, 'shop', 'billing-7b9d4f8c5-bbbbb', { node: 'node-a', ips: ['10.244.1.51'], owner: rs });
    await until('billing via GET', () => id.lookup('10.244.1.50')?.workload === 'billing' && id.lookup('10.244.1.51')?.workload === 'billing');
    expect(id.stats().ownerGets - gets).toBe(1);
  });

  it('ends a pod\'s claim on its IP when it succeeds or fails (the kubelet freed the address)', async () => {
    const ip = '10.244.1.60';
    await pod(a, 'shop', 'job-run', { node: 'node-a', ips: [ip] });
    await until('job-run known', () => id.lookup(ip)?.name === 'job-run');
    const running = now();
    await sleep(30);
    await podIps(a, 'shop', 'job-run', [ip], 'Succeeded');
    await until('job-run done', () => id.lookup(ip) === undefined);
    expect(id.lookup(ip, running)?.name).toBe('job-run');
    // Still a pod (its status matters to cluster events), no longer an address's owner.
    expect(id.podList().find((p) => p.metadata!.name === 'job-run')?.status?.phase).toBe('Succeeded');
  });

  it('names the node for its InternalIP, which hostNetwork pods share', async () => {
    await pod(a, 'shop', 'node-exporter-a', { node: 'node-a', ips: ['172.30.0.1'], hostNetwork: true, labels: { app: 'node-exporter' } });
    await until('the pod seen', () => id.podList().some((p) => p.metadata!.name === 'node-exporter-a'));
    expect(id.lookup('172.30.0.1')).toEqual({ name: 'node-a', node: 'node-a' });
  });

  it('says which resource and which RBAC verb the account lacks', async () => {
    await a.core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'agent' } } });
    const tr = await a.core.createNamespacedServiceAccountToken({ name: 'agent', namespace: 'shop', body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-sa-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, kubeconfigText(api.server, tr.status!.token));
    const start = async () => {
      const kc = await loadKubeConfig({ kubeconfig });
      return KubernetesIdentity.start(kc, { scope: 'node', node: 'node-a', informer: fast, syncTimeoutSec: 10 }).then(() => 'started', (e: Error) => e.message);
    };
    expect(await start()).toMatch(/^cannot list (pods|services|endpointslices\.discovery\.k8s\.io|nodes): 403: .*RBAC: the account needs "list" on \w+ \(apiGroups: \["(discovery\.k8s\.io)?"\]\)$/);
    // Allowed to list but not to watch.
    const rules = [{ apiGroups: [''], resources: ['pods', 'services', 'nodes'], verbs: ['list'] }, { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] }];
    await a.rbac.createClusterRole({ body: { metadata: { name: 'tapwire-list' }, rules } });
    await a.rbac.createClusterRoleBinding({
      body: { metadata: { name: 'tapwire-list' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tapwire-list' }, subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'shop' }] },
    });
    let message = '';
    await until('the role to apply', async () => !(message = await start()).startsWith('cannot list'));
    expect(message).toMatch(/^cannot watch \w+(\.discovery\.k8s\.io)?: 403: .*RBAC: the account needs "watch" on/);
  });

  it('an agent of node A watches only node A\'s pods, by the request it sends', async () => {
    await namespace(a, 'edge');
    await pod(a, 'edge', 'here', { node: 'node-a', ips: ['10.244.1.110'] });
    await pod(a, 'edge', 'there', { node: 'node-b', ips: ['10.244.2.110'] });
    const proxy = await api.proxy();
    const kc = await loadKubeConfig({ kubeconfig: proxy.kubeconfig });
    const id = await KubernetesIdentity.start(kc, { scope: 'node', node: 'node-a', informer: fast });
    try {
      expect(id.lookup('10.244.1.110')?.name).toBe('here');
      expect(id.lookup('10.244.2.110')).toBeUndefined();
      const watched = id.podList();
      expect(watched.map((p: V1Pod) => p.metadata!.name)).toContain('here');
      expect(watched.every((p: V1Pod) => p.spec!.nodeName === 'node-a')).toBe(true);
      const podRequests = proxy.requests.filter((r) => new URL(r.url, 'http://x').pathname === '/api/v1/pods');
      expect(podRequests.length).toBe(2); // one list, one watch
      for (const r of podRequests) expect(new URL(r.url, 'http://x').searchParams.get('fieldSelector')).toBe('spec.nodeName=node-a');
      const watch = new URL(podRequests.find((r) => r.url.includes('watch=true'))!.url, 'http://x').searchParams;
      expect(watch.get('allowWatchBookmarks')).toBe('true');
      expect(Number(watch.get('resourceVersion'))).toBeGreaterThan(0);
      // A new pod on node B is not seen either.
      await pod(a, 'edge', 'there-2', { node: 'node-b', ips: ['10.244.2.111'] });
      await pod(a, 'edge', 'here-2', { node: 'node-a', ips: ['10.244.1.111'] });
      await until('here-2', () => id.lookup('10.244.1.111')?.name === 'here-2');
      expect(id.lookup('10.244.2.111')).toBeUndefined();
    } finally {
      id.stop();
    }
  });

  it('resumes a dropped watch from its resourceVersion, with backoff while the server is unreachable', async () => {
    const proxy = await api.proxy();
    const kc = await loadKubeConfig({ kubeconfig: proxy.kubeconfig });
    const errors: Error[] = [];
    const id = await KubernetesIdentity.start(kc, { scope: 'cluster', informer: fast, onError: (e) => errors.push(e) });
    try {
      expect(id.lookup('10.244.1.110')?.name).toBe('here');
      const before = id.stats();
      // The network breaks: connections cut, the port closed.
      await proxy.pause();
      await deletePod(a, 'edge', 'here');
      await pod(a, 'edge', 'while-down', { node: 'node-a', ips: ['10.244.1.112'] });
      await sleep(1000);
      const down = id.stats();
      expect(down.restarts).toBeGreaterThan(before.restarts);
      expect(id.lookup('10.244.1.110')?.name).toBe('here'); // nothing heard yet
      await proxy.resume();
      await until('changes made while down', () => id.lookup('10.244.1.110') === undefined && id.lookup('10.244.1.112')?.name === 'while-down');
      const after = id.stats();
      // Resumed from the last resourceVersion: no new list.
      expect(after.lists).toBe(before.lists);
      expect(after.relists).toBe(0);
      // Backoff: a handful of attempts in a second, not a busy loop.
      const attemptsWhileDown = down.watches - before.watches;
      expect(attemptsWhileDown).toBeGreaterThanOrEqual(4);
      expect(attemptsWhileDown).toBeLessThan(4 * 12);
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      id.stop();
    }
  });
});
