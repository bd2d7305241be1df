import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hostPort, isLoopback } from '../common/index.js';
import { applyProcessIdentity, IdentityMap } from '../enrich/index.js';
import { Redactor, type FlowRecord } from '../flows/index.js';
import { Recorder } from '../live/index.js';
import { openRunLog } from '../run/index.js';
import { PlaintextPackets } from '../pipeline/index.js';
import type { SourceChoice } from '../capture/index.js';
import { FlowStore } from '../store/index.js';
import { Watcher, type StandingSpec } from '../watch/index.js';
import { FlowFeed, StoreSource } from '../service/index.js';
import { createApi } from '../api/index.js';
import { agentMetrics } from './metrics.js';
import { AgentKubernetes, type AgentKubernetesOptions } from './kubernetes.js';
import { AgentProcesses } from './processes.js';
import { AgentTls, type TlsMode } from './tls.js';

export interface AgentOptions {
  interfaces: string[];
  /** BPF filter for the capture. */
  filter?: string;
  /** The packet source (issue 18): libpcap (default), eBPF TC, both side by side, or auto. */
  source?: SourceChoice;
  /** The eBPF source's ring buffer, bytes. */
  ringBytes?: number;
  /** Hears which source auto chose, and links the eBPF source follows or cannot attach to. */
  onCapture?: (line: string) => void;
  listen: { host: string; port: number };
  dataDir: string;
  retention: { maxBytes: number; maxAgeSec: number };
  /** JSON file of ip → identity, reloaded on change. */
  identities?: string;
  bodyLimit: number;
  token?: string;
  redactKey: Buffer;
  /** Standing specs (--spec), judged over the last specWindowSec seconds of live flows. */
  specs?: StandingSpec[];
  specWindowSec?: number;
  /** Called when the identities file changes: reloaded, or kept because the new one is bad. */
  onIdentities?: (err?: Error) => void;
  /** Pod identity, pod events and resource use from the Kubernetes API (--kubernetes). */
  kubernetes?: AgentKubernetesOptions;
  /** Hears what goes wrong with the Kubernetes API after start (retried by the informers). */
  onKubernetesError?: (message: string) => void;
  /** TLS plaintext through eBPF uprobes (issue 17): auto, uprobe (insist), off (default). */
  tls?: TlsMode;
  /** Hears what the TLS probes attached to, and why they could not (auto). */
  onTls?: (line: string) => void;
  /**
   * Process attribution (src.process, dst.process: issue 18): on when the addon and privileges
   * allow (default), or off (false).
   */
  processes?: boolean;
  /** Hears why process attribution is off (once); onTls when absent. */
  onProcesses?: (line: string) => void;
}

/**
 * What the agent's memory holds, bounded so its RSS stays flat (≤ 256 MB at 5 k requests/s with
 * the eBPF source, issue 18): the latest flows (by count and by encoded bytes, since a flow with
 * full body previews weighs 100 times a small one) and TCP connection state (reassembly's
 * maxConnectionMemory, by its measured per-connection cost).
 */
const MEMORY_FLOWS = 5_000;
const MEMORY_FLOW_BYTES = 16 << 20;
const LIVE_CONNECTION_MEMORY = 128 << 20;


/**
 * The capture filter with the agent's own API traffic left out: on `lo` or `any`, queries to the
 * agent would otherwise become flows in the store they query.
 */
export function withoutSelf(filter: string | undefined, api: AddressInfo): string {
  const any = api.address === '0.0.0.0' || api.address === '::';
  const self = any ? `tcp port ${api.port}` : `(host ${api.address} and tcp port ${api.port})`;
  return filter ? `(${filter}) and not ${self}` : `not ${self}`;
}

/**
 * The live agent: libpcap capture → the same decode pipeline as files (the Recorder) → identities
 * → the flow store and the live feed, served by the HTTP API. Every tick the pipeline releases
 * what it holds and the store syncs, so a completed exchange is queryable within a second of its
 * last byte; stopping a snapshot first drains the capture, so it holds everything sent before.
 */
export class Agent {
  private syncing = false;
  private stopIdentities?: () => void;
  private lossWatch?: CaptureLossWatch;

  private constructor(
    readonly store: FlowStore,
    readonly recorder: Recorder,
    readonly server: Server,
    readonly watcher?: Watcher,
    readonly kubernetes?: AgentKubernetes,
    readonly tls?: AgentTls,
    readonly processes?: AgentProcesses,
  ) {}

  static async start(o: AgentOptions): Promise<Agent> {
    if (!isLoopback(o.listen.host) && !o.token) {
      throw new Error(`--listen ${hostPort(o.listen.host, o.listen.port)} is not loopback: give a token with --token or TAPWIRE_TOKEN`);
    }
    const identities = o.identities ? IdentityMap.load(o.identities) : undefined;
    let recorder: Recorder | undefined;
    // The newest flows are answered from memory, older ones from disk (a few ms). Held as JS objects
    // they weigh about five times their encoded bytes: 20 000 small HTTP flows held ~100 MB of heap,
    // which put the agent at 350 MB RSS at 5 k requests/s (bench:live, issue 18); 5 000 keep it
    // under 256 MB. A bound, so memory stays flat.
    const store = await FlowStore.open({
      dir: o.dataDir, maxBytes: o.retention.maxBytes, maxAgeSec: o.retention.maxAgeSec, memoryFlows: MEMORY_FLOWS, memoryBytes: MEMORY_FLOW_BYTES,
      now: () => recorder?.now() ?? Date.now() / 1000,
    });
    const feed = new FlowFeed();
    const lossWatch = new CaptureLossWatch(store);
    const watcher = o.specs?.length
      ? new Watcher({ specs: o.specs, windowSec: o.specWindowSec, clock: () => recorder?.now() ?? Date.now() / 1000 })
      : undefined;
    if (watcher) {
      // After a restart the window is whole again at once: its flows are read back from the store.
      await seedWatcher(watcher, store);
      feed.subscribe((r) => watcher.add(r));
    }
    // A record's last stop: the file's names over the cluster's (what someone wrote by hand wins).
    const deliver = (r: FlowRecord) => {
      // An end whose address named no pod (a hostNetwork pod's is its node's) is named by its process's container.
      if (kubernetes) applyProcessIdentity(kubernetes.identity, r);
      identities?.enrich(r);
      store.add(r);
      feed.publish(r);
      metrics.flowsSeen.inc({ protocol: r.protocol });
    };
    let kubernetes: AgentKubernetes | undefined;
    let tls: AgentTls | undefined;
    let processes: AgentProcesses | undefined;
    if (o.kubernetes) {
      try {
        kubernetes = await AgentKubernetes.start(o.kubernetes, {
          release: deliver,
          onEvent: (e) => { store.addEvent(e); },
          onError: (m) => o.onKubernetesError?.(m),
        });
      } catch (e) {
        await store.close();
        throw e;
      }
    }
    const named = kubernetes ? (r: FlowRecord) => kubernetes.push(r, recorder?.now() ?? Date.now() / 1000) : deliver;
    // A record of a connection the TLS probes gave is marked so, while its origin is still known.
    // Then each end's process, which may wait a moment for its connect or accept event.
    const onRecord = (r: FlowRecord) => {
      tls?.annotate(r);
      if (processes) processes.push(r, named);
      else named(r);
    };
    let kept: PlaintextPackets | undefined;
    const metrics = agentMetrics({
      pipeline: () => recorder?.pipeline, store, capture: () => recorder?.counters(), kubernetes: () => kubernetes, tls: () => tls,
      plaintextKept: () => (tls ? kept?.counters : undefined), processes: () => processes,
    });
    const drain = async () => {
      const d = await recorder?.drain();
      // A snapshot stopped now states what the capture dropped up to now.
      if (recorder) lossWatch.tick(recorder, true);
      processes?.flush();
      // Records still waiting for their pods belong to the snapshot too: released with what is known.
      kubernetes?.flush();
      await store.sync();
      return { proven: d?.proven ?? false };
    };
    // Test runs kept through this agent (`tapwire run --api`) go to runs.jsonl beside its segments.
    // The API serves this store through the one port every front door uses (service/source.ts).
    const source = new StoreSource(store, feed, {
      drain, now: () => recorder?.now() ?? Date.now() / 1000, kubernetes: kubernetes !== undefined,
    });
    const server = createApi({
      source, registry: metrics.registry, token: o.token, runs: openRunLog(o.dataDir), watcher, loopbackOnly: isLoopback(o.listen.host), usage: kubernetes, node: kubernetes?.node,
      tlsProbes: () => tls !== undefined,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.listen.port, o.listen.host, () => resolve());
      });
      recorder = Recorder.start({
        source: o.source, ringBytes: o.ringBytes, onNote: o.onCapture,
        interfaces: o.interfaces, filter: withoutSelf(o.filter, server.address() as AddressInfo),
        bodyLimit: o.bodyLimit, redactor: new Redactor({ key: o.redactKey }), onRecord,
        onPacket: (p) => store.addPacket(p.time, p.linkType, p.data, p.wireLen),
        onTick: () => {
          const now = recorder?.now() ?? Date.now() / 1000;
          if (recorder) lossWatch.tick(recorder);
          kubernetes?.tick(now);
          tls?.tick(now);
          agent?.sync();
        },
        connectionMemory: LIVE_CONNECTION_MEMORY,
      });
      // Decrypted streams are kept with the wire's packets, as TCP on their 4-tuple with their mark,
      // so a snapshot's pcap holds them and can be decoded again (kubeshark/kubeshark#1882).
      kept = new PlaintextPackets(
        recorder.pipeline.streams,
        (p) => store.addPacket(p.time, p.linkType, p.data, p.data.length, p.mark),
        (conn) => tls?.originOf(conn),
        (e) => o.onTls?.(`TLS plaintext not kept for pcap export: ${e.message}`),
      );
      // One owner watch for both: attribution on every record, and TLS coverage's processes.
      if (o.processes !== false) {
        processes = AgentProcesses.open((o.tls ?? 'off') !== 'off', (line) => (o.onProcesses ?? o.onTls)?.(line));
      }
      tls = AgentTls.start(o.tls ?? 'off', kept, (line) => o.onTls?.(line), o.filter, recorder.pipeline.serverNames,
        o.processes !== false ? { owners: processes?.watch } : undefined);
    } catch (e) {
      processes?.close();
      recorder?.stop();
      server.close();
      kubernetes?.stop();
      await store.close();
      throw e;
    }
    const agent = new Agent(store, recorder, server, watcher, kubernetes, tls, processes);
    agent.lossWatch = lossWatch;
    watcher?.start();
    agent.stopIdentities = identities?.watch(o.onIdentities);
    return agent;
  }

  get address(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${hostPort(a.address, a.port)}`;
  }

  private sync(): void {
    if (this.syncing) return;
    this.syncing = true;
    this.store.sync().catch((e) => process.stderr.write(`tapwire agent: store sync failed: ${(e as Error).message}\n`))
      .finally(() => { this.syncing = false; });
  }

  /** Stops capture, decodes what is still buffered, syncs and closes the store, then the API. */
  async stop(): Promise<void> {
    this.stopIdentities?.();
    this.watcher?.stop();
    // TLS sessions end first: their last exchanges go through the pipeline the recorder drains.
    this.tls?.stop(this.recorder.now());
    // Drops of the last second are stated too.
    this.lossWatch?.tick(this.recorder, true);
    this.recorder.stop();
    // After the recorder's last records: they are marked while the owners are still known.
    this.processes?.close();
    // What waits for its pod is released, named as far as known, before the store closes.
    this.kubernetes?.stop();
    await this.store.sync();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
    await this.store.close();
  }
}

/**
 * Looks at the capture's drop counters at most once a second (and at each drain and at stop), so
 * a snapshot or export can state what the capture dropped. With `--source both` a packet the eBPF
 * ring dropped may still have come through libpcap: that is not a loss of the store, and /metrics
 * says it instead.
 */
export class CaptureLossWatch {
  private lost = 0;
  private at = -Infinity;
  private since = Date.now() / 1000;

  constructor(private readonly store: FlowStore) {}

  tick(recorder: Pick<Recorder, 'now' | 'counters'>, force = false): void {
    const now = recorder.now();
    if (!force && now - this.at < 1) return;
    this.at = now;
    const c = recorder.counters();
    if (c.source !== 'both' && c.lost > this.lost) {
      this.store.captureLost(this.since, now, c.lost - this.lost, `--source ${c.source}: its kernel ring buffer was full, or frames could not be copied`);
    }
    this.lost = c.lost;
    this.since = now;
  }
}

/** Feeds a standing-spec watcher the stored flows of its window, page by page. */
async function seedWatcher(watcher: Watcher, store: FlowStore): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await store.query({ since: Date.now() / 1000 - watcher.windowSec, limit: 1000, cursor });
    for (const r of page.flows) watcher.add(r);
    cursor = page.next ?? undefined;
  } while (cursor);
}
