import { describe, expect, it } from 'vitest';
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { deploymentByHash, Workloads, type OwnerGetter } from '../../../src/enrich/kubernetes/workloads.js';

const ref = (kind: string, name: string, uid = `uid-${name}`, controller = true): V1OwnerReference =>
  ({ apiVersion: 'apps/v1', kind, name, uid, controller });

const podOf = (owners: V1OwnerReference[], labels?: Record<string, string>): V1Pod =>
  ({ metadata: { name: 'p', namespace: 'shop', ownerReferences: owners, labels } });

/** A getter answering from a table, counting calls; `null` makes it fail. */
function getter(table: Record<string, V1OwnerReference[] | null>) {
  const calls: string[] = [];
  const get: OwnerGetter = async (kind, _ns, name) => {
    calls.push(`${kind}/${name}`);
    const owners = table[`${kind}/${name}`];
    if (owners === null || owners === undefined) throw new Error('404');
    return { metadata: { ownerReferences: owners } };
  };
  return { get, calls };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('workloads from ownerReferences', () => {
  it('names a Deployment from the pod-template-hash label, with no GET', () => {
    const { get, calls } = getter({});
    const w = new Workloads(get);
    expect(w.of(podOf([ref('ReplicaSet', 'orders-5d8f9c7b6')], { 'pod-template-hash': '5d8f9c7b6' }))).toBe('orders');
    expect(w.of(podOf([ref('ReplicaSet', 'my-app-v2-7c9')], { 'pod-template-hash': '7c9' }))).toBe('my-app-v2');
    expect(calls).toEqual([]);
    expect(deploymentByHash('orders-abc', { 'pod-template-hash': 'xyz' })).toBeUndefined();
    expect(deploymentByHash('-abc', { 'pod-template-hash': 'abc' })).toBeUndefined();
  });

  it('StatefulSet, DaemonSet and other controllers by their own name; a bare pod has none', () => {
    const w = new Workloads(getter({}).get);
    expect(w.of(podOf([ref('StatefulSet', 'pg')]))).toBe('pg');
    expect(w.of(podOf([ref('DaemonSet', 'tapwire-agent')]))).toBe('tapwire-agent');
    expect(w.of(podOf([ref('ReplicationController', 'legacy')]))).toBe('legacy');
    expect(w.of(podOf([]))).toBeUndefined();
    // An owner that is not the controller does not make a workload.
    expect(w.of(podOf([ref('ConfigMap', 'cm', 'u', false)]))).toBeUndefined();
  });

  it('without the label, one GET of the ReplicaSet, never repeated for its uid; the owner\'s name until then', async () => {
    const { get, calls } = getter({ 'ReplicaSet/orders-x': [ref('Deployment', 'orders')] });
    const learnt: string[] = [];
    const w = new Workloads(get, (uid) => learnt.push(uid));
    const p = podOf([ref('ReplicaSet', 'orders-x')]);
    expect(w.of(p)).toBe('orders-x');
    expect(w.of(p)).toBe('orders-x');
    await settle();
    expect(w.of(p)).toBe('orders');
    expect(w.of(p)).toBe('orders');
    expect(calls).toEqual(['ReplicaSet/orders-x']);
    expect(learnt).toEqual(['uid-orders-x']);
  });

  it('a Job owned by a CronJob names the CronJob; a failed GET leaves the owner\'s name, for good', async () => {
    const { get, calls } = getter({ 'Job/backup-2901': [ref('CronJob', 'backup')], 'Job/once': [], 'ReplicaSet/lost': null });
    const w = new Workloads(get);
    w.of(podOf([ref('Job', 'backup-2901')]));
    w.of(podOf([ref('Job', 'once')]));
    w.of(podOf([ref('ReplicaSet', 'lost')]));
    await settle();
    expect(w.of(podOf([ref('Job', 'backup-2901')]))).toBe('backup');
    expect(w.of(podOf([ref('Job', 'once')]))).toBe('once');
    expect(w.of(podOf([ref('ReplicaSet', 'lost')]))).toBe('lost');
    expect(calls).toHaveLength(3);
    expect(w.stats()).toEqual({ gets: 3, getFailures: 1 });
  });
});
