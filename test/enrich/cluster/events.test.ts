/**
 * Kubernetes Events as cluster events: the reason → kind table on Events as the API serves them,
 * then ClusterEventWatcher and the pod-status listener against a real kube-apiserver + etcd
 * (scripts/k8s/apiserver.sh), with Events created the way the kubelet, node-problem-detector and the
 * Deployment controller write them (core/v1), read back through events.k8s.io/v1, into a real store.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoreV1Event, EventsV1Event } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterEventOf, ClusterEventWatcher, podStatusListener } from '../../../src/enrich/cluster/index.js';
import type { ClusterEvent } from '../../../src/enrich/index.js';
import { KubernetesIdentity, loadKubeConfig } from '../../../src/enrich/kubernetes/index.js';
import { FlowStore } from '../../../src/store/index.js';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../../helpers/apiserver.js';
import { apis, namespace, node, pod, until, type Apis } from '../kubernetes/cluster.js';

/** An Event as events.k8s.io/v1 serves one the kubelet wrote through core/v1 (deprecated* filled from count and timestamps). */
function served(o: Partial<EventsV1Event> & { reason: string; regarding: EventsV1Event['regarding'] }): EventsV1Event {
  return {
    apiVersion: 'events.k8s.io/v1', kind: 'Event', eventTime: null as unknown as Date, type: 'Warning',
    metadata: { name: 'payment-7f9c.1800a1b2c3d4e5f6', namespace: 'payments', uid: 'a1b2c3d4-0000-4000-8000-000000000001', creationTimestamp: new Date('2026-12-07T12:03:00Z') },
    deprecatedSource: { component: 'kubelet', host: 'node-a' }, deprecatedCount: 1,
    deprecatedFirstTimestamp: new Date('2026-12-07T12:03:00Z'), deprecatedLastTimestamp: new Date('2026-12-07T12:03:00Z'),
    ...o,
  } as EventsV1Event;
}

const podRef = { kind: 'Pod', namespace: 'payments', name: 'payment-7f9c', uid: 'p1', fieldPath: 'spec.containers{app}' };

describe('clusterEventOf', () => {
  it.each([
    ['Unhealthy (liveness)', served({ reason: 'Unhealthy', regarding: podRef, note: 'Liveness probe failed: HTTP probe failed with statuscode: 500' }), { kind: 'probe-failed', probe: 'liveness', pod: 'payment-7f9c', container: 'app', node: 'node-a' }],
    ['Unhealthy (readiness)', served({ reason: 'Unhealthy', regarding: podRef, note: 'Readiness probe failed: Get "http://10.1.0.7:8080/ready": context deadline exceeded' }), { kind: 'probe-failed', probe: 'readiness' }],
    ['Unhealthy (startup)', served({ reason: 'Unhealthy', regarding: podRef, note: 'Startup probe failed: command "cat /tmp/ready" timed out' }), { kind: 'probe-failed', probe: 'startup' }],
    ['Failed pulling an image', served({ reason: 'Failed', regarding: podRef, note: 'Failed to pull image "registry.local/payment:1.5": not found' }), { kind: 'image-pull' }],
    ['Failed: ErrImagePull', served({ reason: 'Failed', regarding: podRef, note: 'Error: ErrImagePull' }), { kind: 'image-pull' }],
    ['BackOff pulling an image', served({ reason: 'BackOff', regarding: podRef, note: 'Back-off pulling image "registry.local/payment:1.5"' }), { kind: 'image-pull' }],
    ['BackOff restarting', served({ reason: 'BackOff', regarding: podRef, note: 'Back-off restarting failed container app in pod payment-7f9c' }), { kind: 'other' }],
    ['Evicted', served({ reason: 'Evicted', regarding: { ...podRef, fieldPath: undefined }, note: 'The node was low on resource: memory.' }), { kind: 'evicted', pod: 'payment-7f9c' }],
    ['OOMKilling on a node', served({ reason: 'OOMKilling', regarding: { kind: 'Node', name: 'node-a', uid: 'node-a' }, deprecatedSource: { component: 'kernel-monitor', host: 'node-a' }, metadata: { namespace: 'default', uid: 'u-oom' }, note: 'Memory cgroup out of memory: Killed process 4242 (java)' }),
      { kind: 'oom-killed', namespace: 'default', node: 'node-a', object: 'Node/node-a' }],
    ['ScalingReplicaSet', served({ type: 'Normal', reason: 'ScalingReplicaSet', regarding: { kind: 'Deployment', namespace: 'payments', name: 'payment', uid: 'd1' }, deprecatedSource: { component: 'deployment-controller' }, note: 'Scaled up replica set payment-7f9c to 3' }),
      { kind: 'rollout', workload: 'payment', object: 'Deployment/payment' }],
    ['SuccessfulCreate of a StatefulSet', served({ type: 'Normal', reason: 'SuccessfulCreate', regarding: { kind: 'StatefulSet', namespace: 'payments', name: 'postgres', uid: 's1' }, note: 'create Pod postgres-0 in StatefulSet postgres successful' }), { kind: 'rollout', workload: 'postgres' }],
    ['another Warning', served({ reason: 'FailedMount', regarding: podRef, note: 'MountVolume.SetUp failed for volume "certs"' }), { kind: 'other', reason: 'FailedMount' }],
  ])('%s', (_name, e, want) => {
    expect(clusterEventOf(e)).toMatchObject({ source: 'event', namespace: 'payments', ...want });
  });

  it.each([
    ['a Normal event of a pod\'s ordinary life', served({ type: 'Normal', reason: 'Pulled', regarding: podRef })],
    ['SuccessfulCreate of a ReplicaSet (a pod made, not a rollout)', served({ type: 'Normal', reason: 'SuccessfulCreate', regarding: { kind: 'ReplicaSet', name: 'payment-7f9c', namespace: 'payments' } })],
    ['an Event without uid', served({ reason: 'Unhealthy', regarding: podRef, metadata: { namespace: 'payments' } })],
  ])('keeps nothing of %s', (_name, e) => {
    expect(clusterEventOf(e)).toBeUndefined();
  });

  it('each count of a repeating Event is one happening at its own time, the same id wherever seen', () => {
    const first = clusterEventOf(served({ reason: 'Unhealthy', regarding: podRef, note: 'Liveness probe failed' }))!;
    const again = clusterEventOf(served({ reason: 'Unhealthy', regarding: podRef, note: 'Liveness probe failed', deprecatedCount: 2, deprecatedLastTimestamp: new Date('2026-12-07T12:03:30Z') }))!;
    expect(first).toMatchObject({ id: 'event/a1b2c3d4-0000-4000-8000-000000000001/1', time: Date.parse('2026-12-07T12:03:00Z') / 1000 });
    expect(first.count).toBeUndefined();
    expect(again).toMatchObject({ id: 'event/a1b2c3d4-0000-4000-8000-000000000001/2', time: Date.parse('2026-12-07T12:03:30Z') / 1000, count: 2 });
    // events.k8s.io's own series (newer recorders) counts the same way; times may arrive as JSON strings.
    const series = clusterEventOf(served({
      reason: 'Unhealthy', regarding: podRef, eventTime: '2026-12-07T12:03:00.123456Z' as unknown as Date, deprecatedCount: undefined,
      deprecatedLastTimestamp: undefined, series: { count: 5, lastObservedTime: '2026-12-07T12:05:00.500000Z' as unknown as Date },
    }))!;
    expect(series).toMatchObject({ id: 'event/a1b2c3d4-0000-4000-8000-000000000001/5', time: Date.parse('2026-12-07T12:05:00.500Z') / 1000, count: 5 });
  });
});

const why = apiserverUnavailable();
if (why) console.log(`skipping cluster events against the API server: ${why}`);

describe.skipIf(why !== '')('cluster events against a real API server', () => {
  let api: TestApiserver;
  let a: Apis;
  let store: FlowStore;
  let dir: string;
  const fast = { initialBackoffMs: 100, maxBackoffMs: 400 };
  const seen: ClusterEvent[] = [];
  const sink = (e: ClusterEvent) => {
    seen.push(e);
    store.addEvent(e);
  };
  const now = new Date();
  const at = (dtSec: number) => new Date(Math.floor(now.getTime() / 1000 + dtSec) * 1000);

  /** A core/v1 Event as a component writes it (record.EventRecorder: name <object>.<hex>, count 1, first = last timestamp). */
  async function event(ns: string, e: Omit<CoreV1Event, 'metadata' | 'involvedObject'> & { name: string; involvedObject: CoreV1Event['involvedObject'] }): Promise<CoreV1Event> {
    const { name, ...rest } = e;
    return a.core.createNamespacedEvent({ namespace: ns, body: { metadata: { name, namespace: ns }, count: 1, ...rest } });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tapwire-cluster-events-'));
    store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 86_400 });
    api = await startApiserver();
    a = apis(api.kubeconfig);
    await namespace(a, 'payments');
    await node(a, 'node-a', '172.30.0.1');
  });
  afterAll(async () => {
    await api?.stop();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('Unhealthy, OOMKilling and ScalingReplicaSet come through, before the watch started (the list) and after (the watch); a repeat is one more', async () => {
    const kc = await loadKubeConfig({ kubeconfig: api.kubeconfig });
    // Before the watcher starts: the list must bring it.
    await event('payments', {
      name: 'payment.1800a1b2c3d4e5f6', type: 'Normal', reason: 'ScalingReplicaSet', message: 'Scaled up replica set payment-7f9c to 3',
      involvedObject: { kind: 'Deployment', namespace: 'payments', name: 'payment', apiVersion: 'apps/v1' },
      source: { component: 'deployment-controller' }, firstTimestamp: at(-30), lastTimestamp: at(-30),
    });
    const w = await ClusterEventWatcher.start({ kubeConfig: kc, sink, informer: fast });
    try {
      await until('the rollout', () => seen.some((e) => e.kind === 'rollout'));
      const probe = await event('payments', {
        name: 'payment-7f9c.1800a1b2c3d4e5f7', type: 'Warning', reason: 'Unhealthy', message: 'Liveness probe failed: HTTP probe failed with statuscode: 503',
        involvedObject: { kind: 'Pod', namespace: 'payments', name: 'payment-7f9c', fieldPath: 'spec.containers{app}', apiVersion: 'v1' },
        source: { component: 'kubelet', host: 'node-a' }, firstTimestamp: at(-10), lastTimestamp: at(-10),
      });
      // node-problem-detector reports the kernel's OOM kill on the Node, in the default namespace.
      await event('default', {
        name: 'node-a.1800a1b2c3d4e5f8', type: 'Warning', reason: 'OOMKilling', message: 'Memory cgroup out of memory: Killed process 4242 (java) total-vm:2097152kB',
        involvedObject: { kind: 'Node', name: 'node-a', uid: 'node-a', apiVersion: 'v1' },
        source: { component: 'kernel-monitor', host: 'node-a' }, firstTimestamp: at(-5), lastTimestamp: at(-5),
      });
      // Ordinary life: kept by nobody.
      await event('payments', {
        name: 'payment-7f9c.1800a1b2c3d4e5f9', type: 'Normal', reason: 'Pulled', message: 'Container image "registry.local/payment:1.4" already present on machine',
        involvedObject: { kind: 'Pod', namespace: 'payments', name: 'payment-7f9c', apiVersion: 'v1' }, source: { component: 'kubelet', host: 'node-a' },
        firstTimestamp: at(-4), lastTimestamp: at(-4),
      });
      await until('the probe failure and the OOM kill', () => seen.some((e) => e.kind === 'probe-failed') && seen.some((e) => e.kind === 'oom-killed'));
      // The kubelet sees the probe fail again: the same Event, count 2, a later lastTimestamp.
      probe.count = 2;
      probe.lastTimestamp = at(-2);
      await a.core.replaceNamespacedEvent({ name: probe.metadata!.name!, namespace: 'payments', body: probe });
      await until('the second probe failure', () => seen.filter((e) => e.kind === 'probe-failed').length === 2);

      const kept = store.events({}).events;
      expect(kept.map((e) => `${e.kind} ${e.namespace}/${e.pod ?? e.object}`)).toEqual([
        'rollout payments/Deployment/payment', 'probe-failed payments/payment-7f9c', 'oom-killed default/Node/node-a', 'probe-failed payments/payment-7f9c',
      ]);
      const [rollout, probe1, oom, probe2] = kept;
      expect(rollout).toMatchObject({ reason: 'ScalingReplicaSet', workload: 'payment', time: at(-30).getTime() / 1000, message: 'Scaled up replica set payment-7f9c to 3' });
      expect(probe1).toMatchObject({ reason: 'Unhealthy', probe: 'liveness', container: 'app', node: 'node-a', time: at(-10).getTime() / 1000, id: `event/${probe.metadata!.uid}/1` });
      expect(probe2).toMatchObject({ count: 2, time: at(-2).getTime() / 1000, id: `event/${probe.metadata!.uid}/2` });
      expect(oom).toMatchObject({ reason: 'OOMKilling', node: 'node-a', message: expect.stringContaining('Killed process 4242') });
      expect(seen.some((e) => e.reason === 'Pulled')).toBe(false);
      expect(w.stats).toMatchObject({ lists: 1, kept: 4 });
    } finally {
      w.stop();
    }

    // A restarted watcher lists everything again: the same ids, so the store keeps nothing twice.
    const before = store.eventStats().events;
    const again = await ClusterEventWatcher.start({ kubeConfig: kc, sink, informer: fast });
    again.stop();
    expect(seen.length).toBeGreaterThan(4);
    expect(store.eventStats().events).toBe(before);
  });

  it('a watcher refused by RBAC says so and rejects, rather than retrying behind the caller\'s back', async () => {
    const wrong = join(dir, 'wrong-token.yaml');
    writeFileSync(wrong, readFileSync(api.kubeconfig, 'utf8').replace(api.token, 'not-the-token'));
    const kc = await loadKubeConfig({ kubeconfig: wrong });
    await expect(ClusterEventWatcher.start({ kubeConfig: kc, sink, informer: fast })).rejects.toThrow(/events\.events\.k8s\.io.*401|credentials/);
  });

  it('pod status changes through the identity informer\'s onPod become restart, oom-killed and pod-deleted events', async () => {
    const kc = await loadKubeConfig({ kubeconfig: api.kubeconfig });
    const id = await KubernetesIdentity.start(kc, { scope: 'cluster', informer: fast });
    const got: ClusterEvent[] = [];
    id.onPod(podStatusListener((e) => { got.push(e); store.addEvent(e); }));
    try {
      const p = await pod(a, 'payments', 'payment-7f9c', { node: 'node-a', ips: ['10.244.1.7'], labels: { app: 'payment', 'pod-template-hash': '7f9c' } });
      await until('pod-started', () => got.some((e) => e.kind === 'pod-started'));
      // What the kubelet writes when the container is OOM-killed and restarted.
      const cur = await a.core.readNamespacedPod({ name: 'payment-7f9c', namespace: 'payments' });
      cur.status!.containerStatuses = [{
        name: 'app', image: 'registry.k8s.io/pause:3.10', imageID: '', ready: true, restartCount: 1, started: true,
        state: { running: { startedAt: at(-59) } },
        lastState: { terminated: { reason: 'OOMKilled', exitCode: 137, startedAt: at(-600), finishedAt: at(-60) } },
      }];
      await a.core.replaceNamespacedPodStatus({ name: 'payment-7f9c', namespace: 'payments', body: cur });
      await until('the OOM kill', () => got.some((e) => e.kind === 'oom-killed'));
      await a.core.deleteNamespacedPod({ name: 'payment-7f9c', namespace: 'payments', gracePeriodSeconds: 0 });
      await until('the delete', () => got.some((e) => e.kind === 'pod-deleted'));
      const uid = p.metadata!.uid!;
      expect(got.find((e) => e.kind === 'oom-killed')).toEqual({
        id: `pod/${uid}/app/restart/1`, kind: 'oom-killed', time: at(-60).getTime() / 1000, namespace: 'payments', pod: 'payment-7f9c',
        node: 'node-a', container: 'app', reason: 'OOMKilled', exitCode: 137, source: 'pod-status',
      });
      // By kind: a deletionTimestamp has whole seconds, so the delete may sort before the start seen a moment earlier.
      expect(store.events({ pod: 'payment-7f9c', namespace: 'payments', since: at(-120).getTime() / 1000 }).events.filter((e) => e.source === 'pod-status').map((e) => e.kind).sort())
        .toEqual(['oom-killed', 'pod-deleted', 'pod-started']);
    } finally {
      id.stop();
    }
  });
});

