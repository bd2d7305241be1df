import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { ClusterEvent, ClusterEventKind } from '../events.js';

/**
 * Cluster events read off a pod's status, by comparing what an informer had (`old`) with what it
 * has now (`pod`; undefined once deleted). Pure: the caller says when it saw the change.
 *
 * Every id is made of what the pod itself says (its uid, a container's name and restartCount), never
 * of when or where the change was seen, so an agent that restarts and relists its pods, or the hub
 * merging two agents, produces the same ids and deduplicates them:
 *
 *   pod/<uid>/<container>/restart/<restartCount>   restart, oom-killed (one per container run ended)
 *   pod/<uid>/<container>/image-pull/<reason>/<restartCount>
 *   pod/<uid>/evicted   pod/<uid>/started   pod/<uid>/deleted
 *
 * What a pod's status says (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/):
 * a container's `restartCount` grows by one each time the kubelet restarts it, and `lastState.terminated`
 * holds the run that ended last (reason OOMKilled, Error, Completed; exitCode; finishedAt). Only that
 * last run is known: when several restarts happened between two looks, the earlier ones have no
 * status left, and one event stands for the newest.
 */
export function podStatusEvents(old: V1Pod | undefined, pod: V1Pod | undefined, seenAt: number): ClusterEvent[] {
  if (!pod) return old ? deleted(old, seenAt) : [];
  const uid = pod.metadata?.uid;
  if (!uid) return [];
  const out: ClusterEvent[] = [];
  const base = baseOf(pod);
  const before = containersByName(old);
  for (const c of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const was = before.get(c.name);
    const restarted = restart(uid, base, c, was, seenAt);
    if (restarted) out.push(restarted);
    const pull = imagePull(uid, base, c, was, seenAt);
    if (pull) out.push(pull);
  }
  const evicted = isEvicted(pod) && !(old && isEvicted(old));
  if (evicted) {
    out.push({
      ...base, id: `pod/${uid}/evicted`, kind: 'evicted', time: evictedAt(pod) ?? seenAt, reason: 'Evicted',
      ...(pod.status?.message ? { message: pod.status.message } : {}), source: 'pod-status',
    });
  }
  if (pod.status?.phase === 'Running' && old?.status?.phase !== 'Running') {
    out.push({ ...base, id: `pod/${uid}/started`, kind: 'pod-started', time: startedAt(pod) ?? seenAt, reason: 'Running', source: 'pod-status' });
  }
  return out;
}

/** What every event of a pod carries: where it ran and what owns it. */
function baseOf(pod: V1Pod): Pick<ClusterEvent, 'namespace' | 'pod' | 'workload' | 'node'> {
  const b: Pick<ClusterEvent, 'namespace' | 'pod' | 'workload' | 'node'> = { namespace: pod.metadata?.namespace ?? 'default' };
  if (pod.metadata?.name) b.pod = pod.metadata.name;
  const workload = workloadOf(pod);
  if (workload) b.workload = workload;
  if (pod.spec?.nodeName) b.node = pod.spec.nodeName;
  return b;
}

/**
 * The pod's top owner by name, from the pod alone: a ReplicaSet made by a Deployment is named
 * `<deployment>-<pod-template-hash>` and stamps that hash on its pods' labels, so the Deployment's
 * name is the ReplicaSet's without the suffix. Any other owner (StatefulSet, DaemonSet, Job) is
 * the top one by its own name. The identity enricher, which sees the ReplicaSets, knows better;
 * this is what an event can say on its own.
 */
export function workloadOf(pod: V1Pod): string | undefined {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!owner) return undefined;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return owner.name.slice(0, -hash.length - 1);
  return owner.name;
}

function containersByName(pod: V1Pod | undefined): Map<string, V1ContainerStatus> {
  return new Map([...(pod?.status?.initContainerStatuses ?? []), ...(pod?.status?.containerStatuses ?? [])].map((c) => [c.name, c]));
}

/** A restartCount above the one seen before (or, first seen, above zero): the run in lastState ended. */
function restart(uid: string, base: ReturnType<typeof baseOf>, c: V1ContainerStatus, was: V1ContainerStatus | undefined, seenAt: number): ClusterEvent | undefined {
  if (!(c.restartCount > (was?.restartCount ?? 0))) return undefined;
  const t = c.lastState?.terminated;
  const reason = t?.reason ?? 'Restarted';
  const kind: ClusterEventKind = reason === 'OOMKilled' ? 'oom-killed' : 'restart';
  const e: ClusterEvent = { ...base, id: `pod/${uid}/${c.name}/restart/${c.restartCount}`, kind, time: seconds(t?.finishedAt) ?? seenAt, container: c.name, reason, source: 'pod-status' };
  if (t?.exitCode !== undefined) e.exitCode = t.exitCode;
  if (t?.message) e.message = t.message;
  return e;
}

/** The kubelet's waiting reasons for an image it cannot pull (pkg/kubelet/images/types.go). */
const PULL_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName']);

/** A container newly waiting on an image it cannot pull; one per reason and container run. */
function imagePull(uid: string, base: ReturnType<typeof baseOf>, c: V1ContainerStatus, was: V1ContainerStatus | undefined, seenAt: number): ClusterEvent | undefined {
  const reason = c.state?.waiting?.reason;
  if (!reason || !PULL_REASONS.has(reason) || was?.state?.waiting?.reason === reason) return undefined;
  const e: ClusterEvent = { ...base, id: `pod/${uid}/${c.name}/image-pull/${reason}/${c.restartCount}`, kind: 'image-pull', time: seenAt, container: c.name, reason, source: 'pod-status' };
  const message = c.state?.waiting?.message ?? (c.image ? `image ${c.image}` : undefined);
  if (message) e.message = message;
  return e;
}

/** The kubelet marks an evicted pod Failed with reason Evicted (pkg/kubelet/eviction). */
function isEvicted(pod: V1Pod): boolean {
  return pod.status?.reason === 'Evicted';
}

/** Since 1.26 an evicted pod carries a DisruptionTarget condition with the time (KEP-3329). */
function evictedAt(pod: V1Pod): number | undefined {
  return seconds(pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True')?.lastTransitionTime);
}

/** When the pod became Running: its first container to run (status.startTime is before image pulls). */
function startedAt(pod: V1Pod): number | undefined {
  const times = (pod.status?.containerStatuses ?? []).map((c) => seconds(c.state?.running?.startedAt)).filter((t): t is number => t !== undefined);
  return times.length ? Math.min(...times) : seconds(pod.status?.startTime);
}

function deleted(pod: V1Pod, seenAt: number): ClusterEvent[] {
  const uid = pod.metadata?.uid;
  if (!uid) return [];
  // deletionTimestamp is when the delete was asked for (graceful); the pod is gone at most a grace period later.
  return [{ ...baseOf(pod), id: `pod/${uid}/deleted`, kind: 'pod-deleted', time: seconds(pod.metadata?.deletionTimestamp) ?? seenAt, reason: 'Deleted', source: 'pod-status' }];
}

/**
 * A Kubernetes time as epoch seconds. The client's typed lists give Date objects, its watch stream
 * the JSON strings (RFC 3339): both are taken. Undefined when absent or not a time.
 */
export function seconds(v: Date | string | undefined | null): number | undefined {
  if (v === undefined || v === null) return undefined;
  const ms = v instanceof Date ? v.getTime() : Date.parse(v);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
}

/**
 * A listener for the identity informer's pod changes (KubernetesIdentity.onPod) that turns each
 * into events for `sink` (the store's addEvent). `now` is the clock of "seen at", epoch seconds.
 */
export function podStatusListener(sink: (e: ClusterEvent) => void, now: () => number = () => Date.now() / 1000) {
  return (type: 'add' | 'update' | 'delete', pod: V1Pod, old?: V1Pod): void => {
    const events = type === 'delete' ? podStatusEvents(pod, undefined, now()) : podStatusEvents(type === 'add' ? undefined : old, pod, now());
    for (const e of events) sink(e);
  };
}
