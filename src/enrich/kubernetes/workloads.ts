/**
 * A pod's workload: its top owner through ownerReferences, named by its own name. The controller
 * reference (the one with `controller: true`; https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/)
 * is followed:
 *
 *   Pod → ReplicaSet → Deployment     by the pod-template-hash label, else one GET of the ReplicaSet
 *   Pod → StatefulSet | DaemonSet     the owner's name
 *   Pod → Job → CronJob               one GET of the Job (nothing on the pod names its CronJob)
 *   Pod → anything else               the owner's name (ReplicationController, a custom controller)
 *   Pod with no controller            no workload: a bare pod is its own thing, and naming it after
 *                                     itself would make every bare pod look like a workload of one
 *
 * ReplicaSets and Jobs are not watched (an agent would pay for every one in the cluster); the
 * Deployment controller names its ReplicaSets `<deployment>-<pod-template-hash>` and puts the same
 * hash on the pods as a label (pkg/controller/deployment/sync.go), so when the owner's name is
 * that label's value behind a dash, the Deployment's name is what precedes it. Otherwise one GET of
 * the owner answers, cached by the owner's uid and never repeated, failed or not; while it is out,
 * and if it fails (no RBAC for get, the owner already deleted), the owner's own name stands.
 */
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';

/** What a GET of an owner gives back: its own controller reference, if any. */
export type OwnerGetter = (kind: 'ReplicaSet' | 'Job', namespace: string, name: string) => Promise<{ metadata?: { ownerReferences?: V1OwnerReference[] } } | undefined>;

/** The pod's controller reference, if it has one. */
export function controllerOf(refs: readonly V1OwnerReference[] | undefined): V1OwnerReference | undefined {
  return refs?.find((r) => r.controller === true);
}

/** The Deployment a ReplicaSet name stands for, when the pod's pod-template-hash label proves it. */
export function deploymentByHash(replicaSet: string, labels: Record<string, string> | undefined): string | undefined {
  const hash = labels?.['pod-template-hash'];
  if (!hash || !replicaSet.endsWith(`-${hash}`)) return undefined;
  const name = replicaSet.slice(0, -hash.length - 1);
  return name || undefined;
}

export interface WorkloadsStats {
  /** GETs of owners sent (one per owner uid at most). */
  gets: number;
  /** Of those, how many failed (the owner's own name stands). */
  getFailures: number;
}

export class Workloads {
  /** Owner uid → the top owner's name, once its GET has answered (or failed). */
  private readonly resolved = new Map<string, string>();
  private readonly pending = new Set<string>();
  private readonly counts: WorkloadsStats = { gets: 0, getFailures: 0 };

  /**
   * `get` fetches a ReplicaSet or Job; `learnt(uid)` hears when a GET changed what an owner
   * resolves to, so that pods already named by the fallback can be named again.
   */
  constructor(private readonly get: OwnerGetter, private readonly learnt: (ownerUid: string) => void = () => undefined) {}

  stats(): WorkloadsStats {
    return { ...this.counts };
  }

  /** The pod's workload now (see the module comment); may start one GET in the background. */
  of(pod: V1Pod): string | undefined {
    const ref = controllerOf(pod.metadata?.ownerReferences);
    if (!ref?.name) return undefined;
    switch (ref.kind) {
      case 'ReplicaSet': {
        const byHash = deploymentByHash(ref.name, pod.metadata?.labels);
        if (byHash) return byHash;
        return this.viaOwner(ref, 'ReplicaSet', 'Deployment', pod.metadata?.namespace);
      }
      case 'Job':
        return this.viaOwner(ref, 'Job', 'CronJob', pod.metadata?.namespace);
      default:
        return ref.name;
    }
  }

  /** Is `uid` an owner whose answer is still awaited? (For tests and stats.) */
  isPending(uid: string): boolean {
    return this.pending.has(uid);
  }

  private viaOwner(ref: V1OwnerReference, kind: 'ReplicaSet' | 'Job', parentKind: string, namespace: string | undefined): string {
    const uid = ref.uid;
    const known = uid ? this.resolved.get(uid) : undefined;
    if (known !== undefined) return known;
    if (!uid || !namespace || this.pending.has(uid)) return ref.name;
    this.pending.add(uid);
    this.counts.gets++;
    const settle = (name: string) => {
      this.pending.delete(uid);
      this.resolved.set(uid, name);
      if (name !== ref.name) this.learnt(uid);
    };
    this.get(kind, namespace, ref.name).then(
      (owner) => {
        const parent = controllerOf(owner?.metadata?.ownerReferences);
        settle(parent?.kind === parentKind && parent.name ? parent.name : ref.name);
      },
      () => {
        this.counts.getFailures++;
        settle(ref.name);
      },
    );
    return ref.name;
  }
}
