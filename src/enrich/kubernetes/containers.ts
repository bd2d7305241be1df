/**
 * Container id and pod uid → pod (issue 18, "Process attribution"): a process at a connection's
 * end names its pod through its container even when its address names none, as with a
 * hostNetwork pod (whose address is its node's) or traffic on a pod's loopback. The ids are the
 * pods' status.containerStatuses[].containerID ("containerd://<64 hex>"), init and ephemeral
 * containers' too, without the runtime prefix, as a cgroup path gives them (enrich/process).
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { FlowRecord, Peer, PeerProcess } from '../../flows/index.js';
import { fillPeer } from '../identity.js';
import { bareContainerId } from '../process/index.js';
import type { Identity } from '../types.js';

/** The container ids of a pod, bare (no "<runtime>://"). */
export function containerIdsOf(pod: V1Pod): string[] {
  const s = pod.status;
  const all = [...(s?.containerStatuses ?? []), ...(s?.initContainerStatuses ?? []), ...(s?.ephemeralContainerStatuses ?? [])];
  return [...new Set(all.map((c) => bareContainerId(c.containerID)).filter((id): id is string => id !== undefined))];
}

/** Pod keys by container id and by pod uid, kept as pods come and go. */
export class ContainerIndex {
  private readonly byContainer = new Map<string, string>();
  private readonly byUid = new Map<string, string>();
  private readonly ofPod = new Map<string, { ids: string[]; uid?: string }>();

  /** The pod `key` is `pod` now (undefined: gone). */
  set(key: string, pod: V1Pod | undefined): void {
    const before = this.ofPod.get(key);
    for (const id of before?.ids ?? []) if (this.byContainer.get(id) === key) this.byContainer.delete(id);
    if (before?.uid && this.byUid.get(before.uid) === key) this.byUid.delete(before.uid);
    this.ofPod.delete(key);
    if (!pod) return;
    const ids = containerIdsOf(pod);
    const uid = pod.metadata?.uid;
    for (const id of ids) this.byContainer.set(id, key);
    if (uid) this.byUid.set(uid, key);
    this.ofPod.set(key, { ids, uid });
  }

  /** The key of the pod a process is in: by its container, else by its pod uid. */
  podOf(p: Pick<PeerProcess, 'containerId' | 'podUid'>): string | undefined {
    return (p.containerId !== undefined ? this.byContainer.get(p.containerId) : undefined) ?? (p.podUid !== undefined ? this.byUid.get(p.podUid) : undefined);
  }

  get size(): number {
    return this.byContainer.size;
  }
}

/** Knows pods by the processes in them (KubernetesIdentity). */
export interface ProcessIdentitySource {
  processIdentity(p: PeerProcess): Identity | undefined;
}

/**
 * Names each end of `r` from its process's pod when its address named no pod (no namespace:
 * unknown, or the node's address, as a hostNetwork pod's is). An end already a pod's is left.
 */
export function applyProcessIdentity(source: ProcessIdentitySource, r: FlowRecord): void {
  for (const peer of [r.src, r.dst]) nameByProcess(source, peer);
}

function nameByProcess(source: ProcessIdentitySource, peer: Peer): void {
  if (!peer.process || peer.namespace !== undefined) return;
  if (peer.process.containerId === undefined && peer.process.podUid === undefined) return;
  const id = source.processIdentity(peer.process);
  if (id) fillPeer(peer, id);
}
