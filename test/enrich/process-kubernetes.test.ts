/**
 * Issue 18: the Kubernetes enricher names a connection end by its process's container when the
 * address names no pod (a hostNetwork pod's address is its node's). ContainerIndex alone, then
 * KubernetesIdentity against a real kube-apiserver + etcd (scripts/k8s/apiserver.sh) with a pod
 * whose status.containerStatuses carry the container id, written as a kubelet would.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyIdentity } from '../../src/enrich/index.js';
import { applyProcessIdentity, ContainerIndex, containerIdsOf, KubernetesIdentity, loadKubeConfig } from '../../src/enrich/kubernetes/index.js';
import type { FlowRecord } from '../../src/flows/index.js';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../helpers/apiserver.js';
import { apis, deletePod, namespace, node, pod, until, type Apis } from './kubernetes/cluster.js';

const ID = 'd00dfeed'.repeat(8);
const OTHER = 'beefcafe'.repeat(8);
const INIT = '0badc0de'.repeat(8);

function podWith(name: string, uid: string, ids: string[], init: string[] = []): V1Pod {
  return {
    metadata: { name, namespace: 'shop', uid },
    status: {
      containerStatuses: ids.map((id, i) => ({ name: `c${i}`, containerID: `containerd://${id}`, image: 'x', imageID: '', ready: true, restartCount: 0 })),
      initContainerStatuses: init.map((id) => ({ name: 'init', containerID: `cri-o://${id}`, image: 'x', imageID: '', ready: false, restartCount: 0 })),
    },
  };
}

function record(src: FlowRecord['src'], dst: FlowRecord['dst']): FlowRecord {
  return { id: 'x-1', protocol: 'http', connectionId: 'x', src, dst, start: Date.now() / 1000, end: Date.now() / 1000, durationMs: 0 } as unknown as FlowRecord;
}

describe('ContainerIndex', () => {
  it('finds a pod by any of its containers (init ones too) or by its uid, and forgets what a pod no longer has', () => {
    const ix = new ContainerIndex();
    const p = podWith('a', 'uid-a', [ID], [INIT]);
    expect(containerIdsOf(p)).toEqual([ID, INIT]);
    ix.set('shop/a', p);
    expect(ix.podOf({ containerId: ID })).toBe('shop/a');
    expect(ix.podOf({ containerId: INIT })).toBe('shop/a');
    expect(ix.podOf({ containerId: OTHER, podUid: 'uid-a' })).toBe('shop/a');
    expect(ix.podOf({ containerId: OTHER })).toBeUndefined();
    // A restarted container has a new id: the old one no longer names the pod.
    ix.set('shop/a', podWith('a', 'uid-a', [OTHER]));
    expect(ix.podOf({ containerId: ID })).toBeUndefined();
    expect(ix.podOf({ containerId: OTHER })).toBe('shop/a');
    ix.set('shop/a', undefined);
    expect(ix.podOf({ containerId: OTHER, podUid: 'uid-a' })).toBeUndefined();
    expect(ix.size).toBe(0);
  });

  it('names only an end with a process in a container whose address named no pod', () => {
    const source = { processIdentity: (p: { containerId?: string }) => (p.containerId === ID ? { name: 'exporter', namespace: 'shop', node: 'node-a' } : undefined) };
    const r = record(
      { ip: '172.30.0.1', port: 40000, name: 'node-a', node: 'node-a', process: { pid: 10, comm: 'exporter', containerId: ID } },
      { ip: '10.244.1.10', port: 80, name: 'orders', namespace: 'shop', process: { pid: 11, comm: 'orders', containerId: ID } },
    );
    applyProcessIdentity(source, r);
    expect(r.src).toMatchObject({ name: 'exporter', namespace: 'shop', node: 'node-a' });
    expect(r.dst.name).toBe('orders');
    const host = record({ ip: '127.0.0.1', port: 1, process: { pid: 1, comm: 'systemd' } }, { ip: '127.0.0.1', port: 2 });
    applyProcessIdentity(source, host);
    expect(host.src).toEqual({ ip: '127.0.0.1', port: 1, process: { pid: 1, comm: 'systemd' } });
  });
});

const why = apiserverUnavailable();
if (why) console.log(`skipping the process → pod test against an API server: ${why}`);

describe.skipIf(why !== '')('KubernetesIdentity: a hostNetwork pod named by its container', () => {
  let api: TestApiserver;
  let a: Apis;
  let id: KubernetesIdentity;

  beforeAll(async () => {
    api = await startApiserver();
    a = apis(api.kubeconfig);
    await namespace(a, 'shop');
    await node(a, 'node-a', '172.30.0.1');
    await pod(a, 'shop', 'node-exporter-a', { node: 'node-a', ips: ['172.30.0.1'], hostNetwork: true, labels: { app: 'node-exporter' } });
    // What the kubelet writes once the container runs.
    const p = await a.core.readNamespacedPod({ name: 'node-exporter-a', namespace: 'shop' });
    p.status = { ...p.status, containerStatuses: [{ name: 'app', containerID: `containerd://${ID}`, image: 'registry.k8s.io/pause:3.10', imageID: '', ready: true, restartCount: 0 }] };
    await a.core.replaceNamespacedPodStatus({ name: 'node-exporter-a', namespace: 'shop', body: p });
    id = await KubernetesIdentity.start(await loadKubeConfig({ kubeconfig: api.kubeconfig }), { scope: 'node', node: 'node-a', informer: { initialBackoffMs: 100, maxBackoffMs: 400 } });
  }, 120_000);

  afterAll(async () => {
    id?.stop();
    await api?.stop();
  });

  it('the address names the node; the process\'s container names the pod', async () => {
    await until('the pod\'s container known', () => id.processIdentity({ pid: 1, comm: 'x', containerId: ID }) !== undefined);
    const r = record(
      { ip: '172.30.0.1', port: 40000, process: { pid: 4242, comm: 'node_exporter', containerId: ID } },
      { ip: '172.30.0.1', port: 9100, process: { pid: 4243, comm: 'prometheus', containerId: OTHER } },
    );
    applyIdentity(id, r);
    expect(r.src).toMatchObject({ name: 'node-a', node: 'node-a' });
    applyProcessIdentity(id, r);
    expect(r.src).toEqual({
      ip: '172.30.0.1', port: 40000, name: 'node-exporter-a', namespace: 'shop', node: 'node-a', labels: { app: 'node-exporter' },
      process: { pid: 4242, comm: 'node_exporter', containerId: ID },
    });
    // A container no watched pod has: the end stays the node.
    expect(r.dst).toMatchObject({ name: 'node-a', node: 'node-a' });
    expect(r.dst.namespace).toBeUndefined();
  });

  it('forgets the container with its pod', async () => {
    await deletePod(a, 'shop', 'node-exporter-a');
    await until('the pod gone', () => id.processIdentity({ pid: 1, comm: 'x', containerId: ID }) === undefined);
  });
});
