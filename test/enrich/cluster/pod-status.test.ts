import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podStatusEvents, podStatusListener } from '../../../src/enrich/cluster/index.js';
import type { ClusterEvent } from '../../../src/enrich/index.js';

const SEEN = 1_796_000_000;

/** A pod as the API returns it for a Deployment's replica (ReplicaSet owner, pod-template-hash label), times as JSON strings as a watch delivers them. */
function pod(status: Partial<NonNullable<V1Pod['status']>> = {}, o: { uid?: string; name?: string } = {}): V1Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: o.name ?? 'payment-7f9c8d5b6-x2x4q', namespace: 'payments', uid: o.uid ?? '3c1e9d2a-8f5b-4c9e-9a57-1b2c3d4e5f60', resourceVersion: '4711',
      labels: { app: 'payment', 'pod-template-hash': '7f9c8d5b6' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'payment-7f9c8d5b6', uid: 'rs-uid', controller: true, blockOwnerDeletion: true }],
    },
    spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'registry.local/payment:1.4' }, { name: 'envoy', image: 'envoyproxy/envoy:v1.31' }] },
    status: { phase: 'Pending', ...status },
  } as V1Pod;
}

function running(name: string, restartCount = 0, last?: V1ContainerStatus['lastState']): V1ContainerStatus {
  return {
    name, image: `img/${name}`, imageID: '', ready: true, restartCount,
    state: { running: { startedAt: '2026-12-07T12:03:10Z' as unknown as Date } },
    ...(last ? { lastState: last } : {}),
  };
}

function terminated(reason: string, exitCode: number, finishedAt: string): V1ContainerStatus['lastState'] {
  return { terminated: { reason, exitCode, startedAt: '2026-12-07T12:00:00Z' as unknown as Date, finishedAt: finishedAt as unknown as Date } };
}

const at = (iso: string) => Date.parse(iso) / 1000;

describe('podStatusEvents', () => {
  it('a container killed for memory and restarted is oom-killed, with exit 137 at its finish time', () => {
    const before = pod({ phase: 'Running', containerStatuses: [running('app'), running('envoy')] });
    const after = pod({ phase: 'Running', containerStatuses: [running('app', 1, terminated('OOMKilled', 137, '2026-12-07T12:03:04.512Z')), running('envoy')] });
    expect(podStatusEvents(before, after, SEEN)).toEqual([{
      id: 'pod/3c1e9d2a-8f5b-4c9e-9a57-1b2c3d4e5f60/app/restart/1', kind: 'oom-killed', time: at('2026-12-07T12:03:04.512Z'),
      namespace: 'payments', pod: 'payment-7f9c8d5b6-x2x4q', workload: 'payment', node: 'node-a', container: 'app',
      reason: 'OOMKilled', exitCode: 137, source: 'pod-status',
    } satisfies ClusterEvent]);
  });

  it('a restart for another reason is a restart with that reason and exit code; an unchanged count is nothing', () => {
    const before = pod({ phase: 'Running', containerStatuses: [running('app', 1, terminated('OOMKilled', 137, '2026-12-07T12:03:04Z'))] });
    const after = pod({ phase: 'Running', containerStatuses: [running('app', 2, terminated('Error', 1, '2026-12-07T12:09:00Z'))] });
    const [e] = podStatusEvents(before, after, SEEN);
    expect(e).toMatchObject({ kind: 'restart', reason: 'Error', exitCode: 1, time: at('2026-12-07T12:09:00Z'), id: expect.stringMatching(/\/app\/restart\/2$/) });
    expect(podStatusEvents(after, after, SEEN)).toEqual([]);
  });

  it('init containers restart too', () => {
    const before = pod({ initContainerStatuses: [{ name: 'migrate', image: 'm', imageID: '', ready: false, restartCount: 0, state: { running: {} } }] });
    const after = pod({ initContainerStatuses: [{ name: 'migrate', image: 'm', imageID: '', ready: false, restartCount: 1, state: { running: {} }, lastState: terminated('Error', 2, '2026-12-07T12:01:00Z') }] });
    expect(podStatusEvents(before, after, SEEN)).toMatchObject([{ kind: 'restart', container: 'migrate', exitCode: 2 }]);
  });

  it('ids do not depend on when or where the change was seen: an agent that restarts and relists derives the same ones', () => {
    const restarted = pod({ phase: 'Running', containerStatuses: [running('app', 3, terminated('OOMKilled', 137, '2026-12-07T12:03:04Z'))] });
    const seenLive = podStatusEvents(pod({ phase: 'Running', containerStatuses: [running('app', 2)] }), restarted, SEEN);
    // After a restart of tapwire the informer lists the pod afresh: no old state.
    const relisted = podStatusEvents(undefined, restarted, SEEN + 600);
    const restartOf = (es: ClusterEvent[]) => es.find((e) => e.kind === 'oom-killed')!;
    expect(restartOf(relisted)).toEqual(restartOf(seenLive));
    // First seen Running, the pod's start is there too, at the container's start, not at SEEN.
    expect(relisted.find((e) => e.kind === 'pod-started')).toMatchObject({ id: 'pod/3c1e9d2a-8f5b-4c9e-9a57-1b2c3d4e5f60/started', time: at('2026-12-07T12:03:10Z') });
  });

  it('a pod first seen with no restarts has no restart event', () => {
    expect(podStatusEvents(undefined, pod({ phase: 'Running', containerStatuses: [running('app')] }), SEEN).map((e) => e.kind)).toEqual(['pod-started']);
  });

  it('pod-started once: when the phase becomes Running, not on later updates', () => {
    const pending = pod({ phase: 'Pending', containerStatuses: [{ name: 'app', image: 'a', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] });
    const up = pod({ phase: 'Running', containerStatuses: [running('app')] });
    expect(podStatusEvents(undefined, pending, SEEN)).toEqual([]);
    expect(podStatusEvents(pending, up, SEEN).map((e) => e.kind)).toEqual(['pod-started']);
    expect(podStatusEvents(up, up, SEEN)).toEqual([]);
  });

  it('ErrImagePull then ImagePullBackOff are two image-pull events; the same reason again is not another', () => {
    const waiting = (reason: string): V1ContainerStatus => ({ name: 'app', image: 'registry.local/payment:1.5', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message: `Back-off pulling image "registry.local/payment:1.5"` } } });
    const a = pod({ containerStatuses: [waiting('ErrImagePull')] }), b = pod({ containerStatuses: [waiting('ImagePullBackOff')] });
    const first = podStatusEvents(undefined, a, SEEN);
    expect(first).toMatchObject([{ kind: 'image-pull', reason: 'ErrImagePull', container: 'app', time: SEEN, message: expect.stringContaining('payment:1.5') }]);
    expect(podStatusEvents(a, b, SEEN + 5)).toMatchObject([{ kind: 'image-pull', reason: 'ImagePullBackOff' }]);
    expect(podStatusEvents(b, b, SEEN + 10)).toEqual([]);
    // Back to ErrImagePull: the same id as the first, which the store keeps once.
    expect(podStatusEvents(b, a, SEEN + 20)[0]!.id).toBe(first[0]!.id);
  });

  it('an evicted pod is evicted at its DisruptionTarget time, with the kubelet\'s message', () => {
    const up = pod({ phase: 'Running', containerStatuses: [running('app')] });
    const evicted = pod({
      phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi.',
      conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', lastTransitionTime: '2026-12-07T12:05:00Z' as unknown as Date }],
    });
    expect(podStatusEvents(up, evicted, SEEN)).toMatchObject([{ kind: 'evicted', reason: 'Evicted', time: at('2026-12-07T12:05:00Z'), message: expect.stringContaining('low on resource: memory') }]);
    expect(podStatusEvents(evicted, evicted, SEEN)).toEqual([]);
  });

  it('a deleted pod is pod-deleted at its deletionTimestamp; Date objects (typed lists) work as strings do', () => {
    const gone = pod({ phase: 'Running' });
    gone.metadata!.deletionTimestamp = new Date('2026-12-07T12:07:00Z');
    expect(podStatusEvents(gone, undefined, SEEN)).toEqual([{
      id: 'pod/3c1e9d2a-8f5b-4c9e-9a57-1b2c3d4e5f60/deleted', kind: 'pod-deleted', time: at('2026-12-07T12:07:00Z'), namespace: 'payments',
      pod: 'payment-7f9c8d5b6-x2x4q', workload: 'payment', node: 'node-a', reason: 'Deleted', source: 'pod-status',
    }]);
  });

  it('a StatefulSet pod\'s workload is the StatefulSet; a pod without uid gives nothing', () => {
    const p = pod({ phase: 'Running', containerStatuses: [running('app')] });
    p.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'postgres', uid: 'u', controller: true }];
    delete p.metadata!.labels!['pod-template-hash'];
    expect(podStatusEvents(undefined, p, SEEN)[0]!.workload).toBe('postgres');
    delete p.metadata!.uid;
    expect(podStatusEvents(undefined, p, SEEN)).toEqual([]);
  });

  it('podStatusListener maps the informer\'s add, update and delete', () => {
    const got: ClusterEvent[] = [];
    const on = podStatusListener((e) => got.push(e), () => SEEN);
    const up = pod({ phase: 'Running', containerStatuses: [running('app')] });
    on('add', up);
    on('update', pod({ phase: 'Running', containerStatuses: [running('app', 1, terminated('Error', 143, '2026-12-07T12:04:00Z'))] }), up);
    on('delete', up);
    expect(got.map((e) => e.kind)).toEqual(['pod-started', 'restart', 'pod-deleted']);
  });
});
