import type { EventsV1Event, KubeConfig } from '@kubernetes/client-node';
import type { ClusterEvent, ClusterEventKind } from '../events.js';
import { Informer, type InformerCounters, type InformerTuning } from '../kubernetes/informer.js';
import { seconds } from './pod-status.js';

/**
 * Kubernetes Events as ClusterEvents: the kubelet's probe failures and image pulls, evictions, the
 * node's OOM kills, and controllers' rollouts.
 *
 * Who watches what (issue 16: "the hub is the only one to watch cluster-wide"): an Event watch
 * cannot be narrowed to one node's pods, so every agent watching Events would each carry the
 * whole cluster's. The hub runs this watcher; an agent runs it only when asked
 * (`--cluster-events`, e.g. a single-node cluster without a hub). Every agent derives what its own
 * node's pods say of themselves (restarts, OOM kills, evictions, image pulls, starts and deletes)
 * from the pod informer it keeps anyway (pod-status.ts), with no watch of its own. The two kinds
 * of ids never collide (`event/…` here, `pod/…` there), and each is the same wherever it is
 * computed, so the hub merges both by id.
 *
 * Which API: events.k8s.io/v1 (GA since 1.19, KEP-383). Both it and core/v1 serve the same stored
 * objects, so nothing the kubelet writes through core/v1 is missed: the apiserver fills the
 * deprecated* fields from core's count and timestamps. It is the API Kubernetes keeps growing
 * (series for repeated events, reportingController), and the one newer recorders write.
 * https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
 */

/**
 * The ClusterEvent an Event stands for, or undefined when it is not one tapwire keeps (a Normal
 * event other than a rollout: Scheduled, Pulled, Created, Started … are the ordinary life of a pod).
 *
 * The id is the Event's uid and its count: an Event that repeats is updated in place (core/v1
 * count, events.k8s.io series.count), and each count seen is one happening at its own time, so a
 * probe that failed at 12:03 and again at 12:05 is on the timeline twice, and the same on every
 * watcher that saw that count.
 */
export function clusterEventOf(e: EventsV1Event): ClusterEvent | undefined {
  const uid = e.metadata?.uid;
  const reason = e.reason ?? '';
  const note = e.note ?? '';
  const regarding = e.regarding ?? {};
  const kind = kindOf(e.type, reason, note, regarding.kind);
  if (!uid || !kind) return undefined;
  const count = e.series?.count ?? e.deprecatedCount ?? 1;
  const time = seconds(e.series?.lastObservedTime) ?? seconds(e.deprecatedLastTimestamp) ?? seconds(e.eventTime as Date | string | undefined)
    ?? seconds(e.deprecatedFirstTimestamp) ?? seconds(e.metadata?.creationTimestamp);
  if (time === undefined) return undefined;
  const out: ClusterEvent = { id: `event/${uid}/${count}`, time, kind, namespace: regarding.namespace ?? e.metadata?.namespace ?? 'default', reason, source: 'event' };
  if (regarding.kind === 'Pod' && regarding.name) out.pod = regarding.name;
  else if (regarding.kind && regarding.name) out.object = `${regarding.kind}/${regarding.name}`;
  if (WORKLOADS.has(regarding.kind ?? '') && regarding.name) out.workload = regarding.name;
  const node = regarding.kind === 'Node' ? regarding.name : e.deprecatedSource?.host;
  if (node) out.node = node;
  const container = /^spec\.(?:init|ephemeral)?[cC]ontainers\{([^}]+)\}$/.exec(regarding.fieldPath ?? '')?.[1];
  if (container) out.container = container;
  if (note) out.message = note;
  if (count > 1) out.count = count;
  if (kind === 'probe-failed') {
    const probe = /^(Liveness|Readiness|Startup) probe/i.exec(note)?.[1]?.toLowerCase();
    if (probe) out.probe = probe as NonNullable<ClusterEvent['probe']>;
  }
  return out;
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']);

/**
 * Reason → kind. The reasons are the kubelet's (pkg/kubelet/events/event.go: Unhealthy, BackOff,
 * Failed, ErrImagePull, Evicted, SystemOOM), node-problem-detector's kernel monitor (OOMKilling)
 * and the workload controllers' (ScalingReplicaSet, SuccessfulCreate).
 */
function kindOf(type: string | undefined, reason: string, note: string, regarding: string | undefined): ClusterEventKind | undefined {
  const image = /\bimage\b|ErrImagePull|ImagePullBackOff/i.test(note);
  switch (reason) {
    case 'Unhealthy': return 'probe-failed';
    case 'ErrImagePull': case 'ImagePullBackOff': case 'ErrImageNeverPull': case 'InspectFailed': return 'image-pull';
    case 'Failed': case 'BackOff': if (image) return 'image-pull'; break;
    case 'Evicted': return 'evicted';
    case 'OOMKilling': case 'SystemOOM': return 'oom-killed';
    case 'ScalingReplicaSet': case 'SuccessfulCreate':
      if (regarding === 'Deployment' || regarding === 'StatefulSet' || regarding === 'DaemonSet') return 'rollout';
      break;
  }
  return type === 'Warning' ? 'other' : undefined;
}

export interface ClusterEventWatcherOptions {
  kubeConfig: KubeConfig;
  /** Where events go (the store's addEvent). A relist gives the same ids again; the store keeps each once. */
  sink: (e: ClusterEvent) => void;
  /** Watch one namespace only (default: all of them, the hub's watch). */
  namespace?: string;
  /** Failures after the first list (each is retried with backoff); the first one rejects start(). */
  onError?: (err: Error) => void;
  /** Backoff, watch timeouts, page size (src/enrich/kubernetes/informer.ts). */
  informer?: InformerTuning;
}

export interface ClusterEventWatcherStats extends InformerCounters {
  /** Events given to the sink (Normal events other than rollouts are not). */
  kept: number;
}

/**
 * A list, then watches, of events.k8s.io/v1 Events through the identity's informer
 * (src/enrich/kubernetes/informer.ts: paged lists, bookmarks, randomised watch timeouts, backoff
 * with jitter on a dropped watch, a relist on 410 Gone), each Event added or updated given to the
 * sink as a ClusterEvent. A deleted Event (their TTL is an hour by default) changes nothing: what
 * happened, happened.
 */
export class ClusterEventWatcher {
  private constructor(private readonly informer: Informer<EventsV1Event>, private readonly counts: { kept: number }) {}

  /** Resolves once the first list is done and the watch is open; rejects (an InformerError) when either is refused. */
  static async start(o: ClusterEventWatcherOptions): Promise<ClusterEventWatcher> {
    // Lazily: the CLI loads this module without Kubernetes, and the client is slow to load.
    const k8s = await import('@kubernetes/client-node');
    const api = o.kubeConfig.makeApiClient(k8s.EventsV1Api);
    const ns = o.namespace;
    const counts = { kept: 0 };
    const informer = new Informer<EventsV1Event>(o.kubeConfig, {
      ...o.informer, resource: 'events', group: 'events.k8s.io', type: 'EventsV1Event',
      path: `/apis/events.k8s.io/v1${ns ? `/namespaces/${encodeURIComponent(ns)}` : ''}/events`,
      list: (q) => (ns ? api.listNamespacedEvent({ ...q, namespace: ns }) : api.listEventForAllNamespaces(q)),
      transform: (e) => {
        // Cached until deleted (an hour): the server-side apply bookkeeping is most of an Event's size.
        if (e.metadata?.managedFields) delete e.metadata.managedFields;
        return e;
      },
    }, (type, e) => {
      if (type === 'delete') return;
      const c = clusterEventOf(e);
      if (!c) return;
      counts.kept++;
      o.sink(c);
    }, (e) => o.onError?.(e));
    await informer.start();
    return new ClusterEventWatcher(informer, counts);
  }

  /** A getter, so `watcher.stats` reads as the agent's other stats objects do. */
  get stats(): ClusterEventWatcherStats {
    return { ...this.informer.counters(), kept: this.counts.kept };
  }

  stop(): void {
    this.informer.stop();
  }
}
