import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostPort, isLoopback } from '../common/index.js';
import { agentAt, HubSource, type HubAgent } from '../service/index.js';
import type { RemoteSource } from '../service/index.js';
import { createApi } from '../api/index.js';
import { discoverAgents, type Discovery } from './discovery.js';
import { HubRegistry } from './metrics.js';
import { EventRing } from './events.js';
import { HubUsage } from './usage.js';
import { ClusterEventWatcher, loadKubeConfig } from '../enrich/index.js';

export interface HubOptions {
  /** Agents' API URLs (`--agents`). */
  agents?: string[];
  /** Agents from their headless Service's EndpointSlices (`--discover namespace/service`). */
  discover?: { namespace: string; service: string; kubeconfig?: string };
  listen: { host: string; port: number };
  /** Bearer token the hub's own API requires. Required off loopback. */
  token?: string;
  /** Bearer token the hub sends to the agents. */
  agentToken?: string;
  /** Per-agent request timeout, ms (default 5000). */
  timeoutMs?: number;
  /** Told when the discovered agent set changes, and when discovery fails (it retries). */
  onAgents?: (urls: string[]) => void;
  onDiscoveryError?: (e: Error) => void;
  /**
   * Watch the cluster's Kubernetes Events (probe failures, rollouts, evictions …): the one
   * cluster-wide watch of tapwire, the agents watching only their node's pods. The kubeconfig
   * (absent: in-cluster config) is the one discovery uses.
   */
  clusterEvents?: { kubeconfig?: string };
  onEventsError?: (e: Error) => void;
}

/**
 * `tapwire hub`: the agents' API, served once for the whole cluster. It serves the same API as an
 * agent (api/server.ts) over a HubSource, so `tapwire verify --api`, `tapwire mcp --api` and the
 * web UI point at a hub or at one agent alike; /metrics holds the hub's own metrics and every
 * agent's (hub/metrics.ts).
 */
export class Hub {
  private constructor(
    readonly source: HubSource,
    readonly server: Server,
    private readonly discovery?: Discovery,
    private readonly events?: ClusterEventWatcher,
    /** The cluster's Events the hub keeps (with clusterEvents). */
    readonly clusterEvents?: EventRing,
  ) {}

  static async start(o: HubOptions): Promise<Hub> {
    if (!isLoopback(o.listen.host) && !o.token) {
      throw new Error(`--listen ${hostPort(o.listen.host, o.listen.port)} is not loopback: give a token with --token or TAPWIRE_TOKEN`);
    }
    if (!o.agents?.length && !o.discover) throw new Error('give the agents with --agents url,… or find them with --discover namespace/service');
    const timeoutMs = o.timeoutMs ?? 5000;
    const byUrl = new Map<string, HubAgent>();
    const agentsOf = (urls: string[]) => urls.map((u) => {
      const known = byUrl.get(u);
      if (known) return known;
      const a = agentAt(u, o.agentToken);
      byUrl.set(u, a);
      return a;
    });
    const registry = new HubRegistry(() => source.agentNames, async (name) => {
      const res = await (byUrl.get(name)!.source as RemoteSource).client.fetch('GET', '/metrics');
      if (!res.ok) throw new Error(`${name}/metrics answered ${res.status}`);
      return res.text();
    }, timeoutMs);
    const ring = o.clusterEvents ? new EventRing() : undefined;
    // Which node each agent captures, remembered: a missing agent's node is what a verdict over
    // partial data needs, and by then its endpoint may be gone.
    const nodes = new Map<string, string>();
    const source: HubSource = new HubSource([], {
      timeoutMs, onCall: (agent, s, ok) => registry.observe(agent, s, ok), ownEvents: ring && ((q) => ring.query(q)),
      nodeOf: (agent) => nodes.get(agent),
    });
    const learnNodes = (agents: HubAgent[]) => {
      for (const a of agents) {
        if (nodes.has(a.name)) continue;
        void (a.source as RemoteSource).client.json<{ node?: unknown }>('GET', '/healthz')
          .then((h) => { if (typeof h?.node === 'string') nodes.set(a.name, h.node); }, () => undefined);
      }
    };
    const setAgents = (agents: HubAgent[]) => {
      source.setAgents(agents);
      learnNodes(agents);
    };
    setAgents(agentsOf(o.agents ?? []));
    let events: ClusterEventWatcher | undefined;
    if (o.clusterEvents && ring) {
      const kc = await loadKubeConfig({ kubeconfig: o.clusterEvents.kubeconfig });
      events = await ClusterEventWatcher.start({ kubeConfig: kc, sink: (e) => ring.add(e), onError: o.onEventsError });
    }
    let discovery: Discovery | undefined;
    if (o.discover) {
      discovery = await discoverAgents({
        ...o.discover,
        onChange: (urls) => {
          for (const u of urls) {
            const node = discovery?.nodeOf(u);
            if (node) nodes.set(u, node);
          }
          // Agents named with --agents stay; discovered ones come and go with their endpoints.
          setAgents(agentsOf([...new Set([...(o.agents ?? []), ...urls])]));
          o.onAgents?.(source.agentNames);
        },
        onError: o.onDiscoveryError,
      });
      // The first set was told before discoverAgents returned.
      for (const u of discovery.urls()) {
        const node = discovery.nodeOf(u);
        if (node) nodes.set(u, node);
      }
    }
    const usage = new HubUsage(() => source.agentNames.map((name) => ({ name, client: (byUrl.get(name)!.source as RemoteSource).client })));
    const server = createApi({ source, registry, token: o.token, loopbackOnly: isLoopback(o.listen.host), usage });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.listen.port, o.listen.host, () => resolve());
      });
    } catch (e) {
      await discovery?.stop();
      events?.stop();
      throw e;
    }
    return new Hub(source, server, discovery, events, ring);
  }

  get address(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${hostPort(a.address, a.port)}`;
  }

  /** The agents asked now. */
  get agents(): string[] {
    return this.source.agentNames;
  }

  async stop(): Promise<void> {
    this.events?.stop();
    await this.discovery?.stop();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
    await this.source.close();
  }
}
