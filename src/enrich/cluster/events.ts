import type { EventsV1Event, Informer, KubeConfig } from '@kubernetes/client-node';
import type { ClusterEvent, ClusterEventKind } from '../events.js';
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
  /** Where events go (the store's addEvent); each Event count once per watcher, a relist's repeats aside. */
  sink: (e: ClusterEvent) => void;
  /** Watch one namespace only (default: all of them, the hub's watch). */
  namespace?: string;
  /** Watch errors, said once each, with the retry's delay. */
  onError?: (message: string) => void;
  /** Reconnect delays: doubled from `initialMs` up to `maxMs` (default 1 s … 30 s), reset once a watch held. */
  backoff?: { initialMs: number; maxMs: number };
}

export interface ClusterEventWatcherStats {
  /** Events given to the sink. */
  events: number;
  /** Lists and watches that failed and were retried. */
  errors: number;
  /** Lists (the first, and every relist after a 410 Gone or a failure that lost the resourceVersion). */
  lists: number;
}

/** A watch that stays up this long before it fails was healthy: the next failure starts the backoff over. */
const HELD_MS = 30_000;

/**
 * A list, then a watch from its resourceVersion, of events.k8s.io/v1 Events, through the client's
 * informer (makeInformer): a closed watch resumes from the last resourceVersion seen (bookmarks
 * keep it recent, so a resume rarely finds it compacted); a 410 Gone relists; any other failure
 * is retried with backoff, from the resourceVersion the informer kept. Events seen again on a
 * relist have the same ids, so the store keeps them once.
 */
export class ClusterEventWatcher {
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private delay: number;
  private startedAt = 0;

  private constructor(
    private readonly o: ClusterEventWatcherOptions,
    private readonly informer: Informer<EventsV1Event>,
    readonly stats: ClusterEventWatcherStats,
  ) {
    this.delay = o.backoff?.initialMs ?? 1000;
  }

  /** Resolves once the first list is done and the watch is open (rejects when that first list fails). */
  static async start(o: ClusterEventWatcherOptions): Promise<ClusterEventWatcher> {
    // Lazily: the CLI loads this module without Kubernetes, and the client is slow to load.
    const k8s = await import('@kubernetes/client-node');
    const api = o.kubeConfig.makeApiClient(k8s.EventsV1Api);
    // allowWatchBookmarks rides in the path: the informer keeps its query and adds resourceVersion.
    const path = `/apis/events.k8s.io/v1${o.namespace ? `/namespaces/${encodeURIComponent(o.namespace)}` : ''}/events?allowWatchBookmarks=true`;
    const stats: ClusterEventWatcherStats = { events: 0, errors: 0, lists: 0 };
    const list = () => {
      stats.lists++;
      return o.namespace ? api.listNamespacedEvent({ namespace: o.namespace }) : api.listEventForAllNamespaces();
    };
    const informer = k8s.makeInformer<EventsV1Event>(o.kubeConfig, path, list);
    const w = new ClusterEventWatcher(o, informer, stats);
    const take = (e: EventsV1Event) => w.take(e);
    informer.on('add', take);
    informer.on('update', take);
    informer.on('connect', () => { w.startedAt = Date.now(); });
    await new Promise<void>((resolve, reject) => {
      // The first failure is the caller's to hear (a wrong kubeconfig, no RBAC): no retry behind
      // its back. The informer reports a failed list or watch through 'error' and still resolves.
      const first = (err: unknown) => { informer.off('error', first); reject(new Error(`Kubernetes Events watch: ${describe(err)}`)); };
      informer.on('error', first);
      informer.start().then(() => { informer.off('error', first); resolve(); }, first);
    }).catch(async (e: unknown) => {
      w.stopped = true;
      await informer.stop();
      throw e;
    });
    informer.on('error', (err) => w.failed(err));
    return w;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer.stop();
  }

  private take(e: EventsV1Event): void {
    const c = clusterEventOf(e);
    if (!c) return;
    this.stats.events++;
    this.o.sink(c);
  }

  private failed(err: unknown): void {
    // Stopping aborts the watch, which the informer reports as an error.
    if (this.stopped || this.timer) return;
    this.stats.errors++;
    const max = this.o.backoff?.maxMs ?? 30_000, initial = this.o.backoff?.initialMs ?? 1000;
    if (Date.now() - this.startedAt >= HELD_MS) this.delay = initial;
    const delay = this.delay;
    this.delay = Math.min(max, this.delay * 2);
    this.o.onError?.(`Kubernetes Events watch failed (${describe(err)}): retrying in ${delay} ms`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped) void this.informer.start().catch((e: unknown) => this.failed(e));
    }, delay);
    this.timer.unref();
  }
}

function describe(err: unknown): string {
  const e = err as { statusCode?: number; code?: number; message?: string; body?: unknown } | undefined;
  const status = e?.statusCode ?? e?.code;
  return [status !== undefined ? `HTTP ${status}` : undefined, e?.message].filter(Boolean).join(': ') || String(err);
}
