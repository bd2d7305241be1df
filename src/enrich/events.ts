/**
 * Cluster events on the flow timeline (issue 16): what happened to the pods while they talked.
 * Kubernetes Events and pod status changes both become ClusterEvents; the store keeps them beside
 * the flows (retention, snapshots), and verdicts and runs name those that touched their pods.
 */

/** What happened, as a stable code (the JSON contract of `GET /api/events` and `cluster_events`). */
export type ClusterEventKind =
  | 'restart' // a container restarted (reason and exit code of the run that ended)
  | 'oom-killed' // a container was killed for memory (OOMKilled, exit 137)
  | 'evicted' // the kubelet evicted the pod (node pressure)
  | 'probe-failed' // a liveness, readiness or startup probe failed
  | 'image-pull' // an image could not be pulled (ErrImagePull, ImagePullBackOff)
  | 'rollout' // a workload rolled out (a Deployment scaled a ReplicaSet)
  | 'pod-started' // a pod became Running
  | 'pod-deleted' // a pod was deleted
  | 'other'; // any other Warning event

export interface ClusterEvent {
  /** Stable across restarts and agents: the same happening has the same id (the hub deduplicates by it). */
  id: string;
  /** When it happened, epoch seconds (the event's last time, or the container's finish time). */
  time: number;
  kind: ClusterEventKind;
  namespace: string;
  /** The pod it touched, when it touched one. */
  pod?: string;
  /** The pod's top owner (a Deployment, a StatefulSet …), when known. */
  workload?: string;
  node?: string;
  container?: string;
  /** The object Kubernetes reported it for, when not a pod ("Deployment/payments"). */
  object?: string;
  /** Kubernetes' own reason: OOMKilled, Error, BackOff, Unhealthy, Evicted, ScalingReplicaSet … */
  reason: string;
  message?: string;
  /** The exit code of the container run that ended (restart, oom-killed). */
  exitCode?: number;
  /** How many times Kubernetes saw it (an Event's count, series.count). */
  count?: number;
  /** Which probe failed (probe-failed), from the kubelet's message ("Liveness probe failed: …"). */
  probe?: 'liveness' | 'readiness' | 'startup';
  /** Where tapwire learned it: a Kubernetes Event, or a change of the pod's status. */
  source: 'event' | 'pod-status';
}

/** A query for cluster events: a window, narrowed by namespace and pod. */
export interface EventQuery {
  since?: number;
  until?: number;
  namespace?: string;
  pod?: string;
}
