import {
  ClusterEventWatcher, KubernetesIdentity, LateIdentities, loadKubeConfig, nodeName, podStatusListener, UsageSampler,
  applyIdentity, type ClusterEvent, type KubernetesIdentityStats, type LateStats, type UsageAnswer, type UsageSource,
} from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';

export interface AgentKubernetesOptions {
  /** A kubeconfig file; in-cluster config (the pod's service account) when absent. */
  kubeconfig?: string;
  /** This node's name; NODE_NAME (the downward API) when absent. */
  node?: string;
  /**
   * Also watch Kubernetes Events cluster-wide (probe failures, rollouts …). The hub does that for
   * a cluster; one agent alone (a laptop, a one-node cluster) may, at the cost of a cluster-wide watch.
   */
  clusterEvents?: boolean;
  /** How long a record waits for a peer's pod to become known (seconds, default 2). */
  lateWaitSec?: number;
}

/**
 * What `tapwire agent --kubernetes` adds (issue 16): the node's pods, the cluster's Services,
 * EndpointSlices and nodes through informers (no polling); records wait up to `lateWaitSec` for a
 * pod the API server has not told of yet; pod status changes (and, with clusterEvents, the
 * cluster's Events) become cluster events in the store; the metrics API is sampled for the node's
 * pods' CPU and memory.
 */
export class AgentKubernetes implements UsageSource {
  private constructor(
    readonly node: string,
    readonly identity: KubernetesIdentity,
    private readonly late: LateIdentities,
    private readonly usage: UsageSampler,
    private readonly events?: ClusterEventWatcher,
  ) {}

  /**
   * Connects and waits for the first lists. `release` takes every record, named, once (at once, or
   * when its pod is known, or at its deadline); `onEvent` every cluster event. Throws naming the
   * kubeconfig, the node or the resource the API refused.
   */
  static async start(o: AgentKubernetesOptions, hooks: {
    release: (r: FlowRecord) => void;
    onEvent: (e: ClusterEvent) => void;
    onError: (message: string) => void;
  }): Promise<AgentKubernetes> {
    const node = nodeName({ node: o.node });
    const kc = await loadKubeConfig({ kubeconfig: o.kubeconfig });
    const identity = await KubernetesIdentity.start(kc, { scope: 'node', node, onError: (e) => hooks.onError(e.message) });
    identity.onPod(podStatusListener(hooks.onEvent));
    // Pods listed before the agent started may have restarted while it was away: their current
    // status gives those events too (their ids are stable, so the store keeps each once).
    for (const pod of identity.podList()) podStatusListener(hooks.onEvent)('add', pod);
    let events: ClusterEventWatcher | undefined;
    try {
      if (o.clusterEvents) events = await ClusterEventWatcher.start({ kubeConfig: kc, sink: hooks.onEvent, onError: (e) => hooks.onError(e.message) });
    } catch (e) {
      identity.stop();
      throw e;
    }
    const late = new LateIdentities(identity, (r) => {
      applyIdentity(identity, r);
      hooks.release(r);
    }, { waitSec: o.lateWaitSec });
    const usage = new UsageSampler({
      kubeconfig: kc,
      pods: () => new Set(identity.podList().map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)),
    });
    usage.start();
    return new AgentKubernetes(node, identity, late, usage, events);
  }

  /** A record from the pipeline, at capture time `now`: named and released now or later. */
  push(r: FlowRecord, now: number): void {
    this.late.push(r, now);
  }

  /** Releases what waited past its deadline (called every tick). */
  tick(now: number): void {
    this.late.tick(now);
  }

  /** Releases everything held (a snapshot's drain, the agent's stop). */
  flush(): void {
    this.late.flush();
  }

  /** The pods' CPU and memory over a window, or why the metrics API cannot say. */
  usageOver(pods: Iterable<string>, since: number, until: number): UsageAnswer {
    return this.usage.usageOver(pods, since, until);
  }

  stats(): { identity: KubernetesIdentityStats; late: LateStats; events?: ClusterEventWatcher['stats'] } {
    return { identity: this.identity.stats(), late: this.late.stats(), ...(this.events ? { events: this.events.stats } : {}) };
  }

  stop(): void {
    this.late.close();
    this.usage.stop();
    this.events?.stop();
    this.identity.stop();
  }
}
