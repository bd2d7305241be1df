/**
 * Pod identity from the Kubernetes API: an IdentitySource kept current by four informers and
 * answering for a time through an IP history.
 *
 *   pods            status.podIPs → { name: pod, namespace, workload, node: spec.nodeName, labels, service? }
 *                   scope 'node': only this node's pods (fieldSelector spec.nodeName=<node>): an agent
 *                   never watches the whole cluster's pods (kubeshark/kubeshark#1500)
 *   services        spec.clusterIPs → { name: service, namespace, service }
 *   endpointslices  discovery.k8s.io/v1, label kubernetes.io/service-name: the Services a pod IP
 *                   backs (several: sorted, joined with ","); an endpoint whose pod is not watched
 *                   (another node's) still gets { name: targetRef, namespace, node: nodeName, service }
 *   nodes           status.addresses InternalIP → { name: node, node }
 *
 * One address, several claims: a node's InternalIP wins over the hostNetwork pods that share it
 * (they have no address of their own; naming the node is what is true of every packet from it);
 * a Service's ClusterIP wins over anything else claiming it; among pods, one that is not
 * hostNetwork wins, then the most recently created (an IP handed to a new pod before the old
 * pod's deletion arrived). A pod in phase Succeeded or Failed no longer claims its IP: the
 * kubelet has torn its sandbox down and the address is free for reuse, even though status.podIPs
 * still shows it.
 *
 * Time: every change opens a version in the history at the moment the informer saw it (wall
 * clock, epoch seconds). An address's first version starts earlier, at the claiming object's
 * creationTimestamp (never before the address's previous version ended): flows before the agent
 * started resolve, and so do a new pod's first packets, which precede the watch event that
 * reports its IP. The first lists are applied together, once all four are in, so an address
 * starts with its whole identity (a pod with its Service), not with half of it.
 *
 * Workloads come from ownerReferences (workloads.ts); when a GET of an owner names a workload
 * later, the pods' current versions are corrected in place.
 */
import type { KubeConfig, KubernetesObject, V1EndpointSlice, V1Node, V1Pod, V1Service } from '@kubernetes/client-node';
import type { PeerProcess } from '../../flows/index.js';
import type { Identity, IdentitySource } from '../types.js';
import { ContainerIndex, type ProcessIdentitySource } from './containers.js';
import { canonicalIp, IpHistory, type IpHistoryOptions } from './history.js';
import { Informer, type InformerCounters, type InformerEventType, type InformerTuning } from './informer.js';
import type { KnownSource } from './late.js';
import { controllerOf, Workloads } from './workloads.js';

export type PodListener = (type: InformerEventType, pod: V1Pod, old?: V1Pod) => void;

export interface KubernetesIdentityOptions {
  /** This agent's node (required for scope 'node'). */
  node?: string;
  /** 'node': this node's pods only (an agent); 'cluster': every pod (the hub). */
  scope: 'node' | 'cluster';
  /** How long start() waits for the first lists, in seconds (default 30). */
  syncTimeoutSec?: number;
  /** Wall clock in epoch seconds (tests). */
  clock?: () => number;
  history?: IpHistoryOptions;
  /** Informer backoff and timeouts (tests). */
  informer?: InformerTuning;
  /** Hears failures after start: a watch that broke, a list that failed (they are retried). */
  onError?: (err: Error) => void;
}

export interface KubernetesIdentityStats extends InformerCounters {
  /** Pods watched, finished ones included. */
  pods: number;
  services: number;
  slices: number;
  nodes: number;
  /** Addresses and versions in the IP history. */
  ips: number;
  versions: number;
  /** GETs of ReplicaSets and Jobs for workloads (each owner at most once). */
  ownerGets: number;
}

/** Start-up failed: the message names the resources and what went wrong. */
export class KubernetesIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesIdentityError';
  }
}

interface Claim {
  identity: Identity;
  /** creationTimestamp, epoch seconds. */
  since?: number;
}

interface PodInfo {
  pod: V1Pod;
  ips: string[];
  hostNetwork: boolean;
  ownerUid?: string;
  since?: number;
}

interface SliceInfo {
  service?: string;
  namespace?: string;
  /** Endpoint address → its pod (targetRef) and node, when the slice names them. */
  endpoints: Map<string, { pod?: string; node?: string }>;
}

const seconds = (d: Date | string | undefined): number | undefined => {
  if (d === undefined) return undefined;
  const t = (d instanceof Date ? d : new Date(d)).getTime();
  return Number.isFinite(t) ? t / 1000 : undefined;
};

const objKey = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** Drops server-side apply bookkeeping: most of an object's size, and nothing here reads it. */
function slim<T extends KubernetesObject>(o: T): T {
  if (o.metadata?.managedFields) delete o.metadata.managedFields;
  return o;
}

function addresses(list: (string | undefined)[]): string[] {
  const out = new Set<string>();
  for (const ip of list) {
    if (!ip || ip === 'None') continue;
    const c = canonicalIp(ip);
    if (c) out.add(c);
  }
  return [...out];
}

export class KubernetesIdentity implements IdentitySource, KnownSource, ProcessIdentitySource {
  private readonly history: IpHistory;
  /** The watched pods by container id and pod uid (process attribution, containers.ts). */
  private readonly containers = new ContainerIndex();
  private readonly clock: () => number;
  private readonly pods = new Map<string, PodInfo>();
  private readonly ipPods = new Map<string, Set<string>>();
  private readonly services = new Map<string, { ips: string[]; claim: Claim }>();
  private readonly ipService = new Map<string, string>();
  private readonly slices = new Map<string, SliceInfo>();
  private readonly ipSlices = new Map<string, Set<string>>();
  private readonly nodes = new Map<string, { ips: string[]; claim: Claim }>();
  private readonly ipNode = new Map<string, string>();
  private readonly podListeners = new Set<PodListener>();
  private readonly knownListeners = new Set<(ip: string) => void>();
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly workloads: Workloads;
  /** Before the first lists are all in, changed addresses wait here (see the module comment). */
  private pendingIps: Set<string> | undefined = new Set();

  private constructor(private readonly opts: KubernetesIdentityOptions, getOwner: Workloads['get']) {
    this.history = new IpHistory(opts.history);
    this.clock = opts.clock ?? (() => Date.now() / 1000);
    this.workloads = new Workloads(getOwner, (uid) => this.ownerLearnt(uid));
  }

  /**
   * Starts the informers and resolves once their first lists are in. Throws
   * KubernetesIdentityError on a refused list or watch (naming the resource and the RBAC verb) or
   * when `syncTimeoutSec` passes first.
   */
  static async start(kc: KubeConfig, opts: KubernetesIdentityOptions): Promise<KubernetesIdentity> {
    if (opts.scope === 'node' && !opts.node) {
      throw new KubernetesIdentityError('scope "node" needs the node name: give --node or set NODE_NAME');
    }
    const k8s = await import('@kubernetes/client-node');
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    const self = new KubernetesIdentity(opts, (kind, namespace, name) =>
      kind === 'ReplicaSet' ? apps.readNamespacedReplicaSet({ name, namespace }) : batch.readNamespacedJob({ name, namespace }),
    );
    const tuning = { ...opts.informer };
    const onError = (e: Error) => opts.onError?.(e);
    const pods = new Informer<V1Pod>(kc, {
      ...tuning, resource: 'pods', group: '', path: '/api/v1/pods', type: 'V1Pod', transform: slim,
      fieldSelector: opts.scope === 'node' ? `spec.nodeName=${opts.node}` : undefined,
      list: (o) => core.listPodForAllNamespaces(o),
    }, (t, p, old) => self.podEvent(t, p, old), onError);
    const services = new Informer<V1Service>(kc, {
      ...tuning, resource: 'services', group: '', path: '/api/v1/services', type: 'V1Service', transform: slim,
      list: (o) => core.listServiceForAllNamespaces(o),
    }, (t, s) => self.serviceEvent(t, s), onError);
    const slices = new Informer<V1EndpointSlice>(kc, {
      ...tuning, resource: 'endpointslices', group: 'discovery.k8s.io', path: '/apis/discovery.k8s.io/v1/endpointslices', type: 'V1EndpointSlice',
      transform: slim, list: (o) => discovery.listEndpointSliceForAllNamespaces(o),
    }, (t, s) => self.sliceEvent(t, s), onError);
    const nodes = new Informer<V1Node>(kc, {
      ...tuning, resource: 'nodes', group: '', path: '/api/v1/nodes', type: 'V1Node', transform: slim,
      list: (o) => core.listNode(o),
    }, (t, n) => self.nodeEvent(t, n), onError);
    const all = [pods, services, slices, nodes] as unknown as Informer<KubernetesObject>[];
    self.informers.push(...all);
    const names = ['pods', 'services', 'endpointslices.discovery.k8s.io', 'nodes'];
    const timeoutSec = opts.syncTimeoutSec ?? 30;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const waiting = names.filter((_n, i) => !all[i]!.isSynced);
        reject(new KubernetesIdentityError(`the Kubernetes API did not answer within ${timeoutSec} s: no first list of ${waiting.join(', ')} (server ${kc.getCurrentCluster()?.server ?? '?'})`));
      }, timeoutSec * 1000);
    });
    try {
      await Promise.race([Promise.all(all.map((i) => i.start())), timeout]);
    } catch (e) {
      self.stop();
      if (e instanceof KubernetesIdentityError) throw e;
      throw new KubernetesIdentityError((e as Error).message);
    } finally {
      clearTimeout(timer);
    }
    self.applyPending();
    return self;
  }

  lookup(ip: string, at?: number): Identity | undefined {
    return this.history.lookup(ip, at);
  }

  /** The pod a process is in, by its container id or pod uid (a watched pod's, now). */
  processIdentity(p: PeerProcess): Identity | undefined {
    const k = this.containers.podOf(p);
    const info = k === undefined ? undefined : this.pods.get(k);
    return info && this.podIdentity(info, undefined);
  }

  /** The history itself (tests, diagnostics). */
  get ipHistory(): IpHistory {
    return this.history;
  }

  /** Hears every pod the informer adds, updates or deletes (relists included). */
  onPod(listener: PodListener): () => void {
    this.podListeners.add(listener);
    return () => this.podListeners.delete(listener);
  }

  onKnown(listener: (ip: string) => void): () => void {
    this.knownListeners.add(listener);
    return () => this.knownListeners.delete(listener);
  }

  /** The pods watched now (this node's, or the cluster's), finished ones included. */
  podList(): V1Pod[] {
    const pods = this.informers[0];
    return pods ? ([...pods.values()] as V1Pod[]) : [];
  }

  stats(): KubernetesIdentityStats {
    const sum: InformerCounters = { lists: 0, watches: 0, restarts: 0, relists: 0, events: 0, bookmarks: 0, errors: 0 };
    for (const inf of this.informers) {
      const c = inf.counters();
      for (const k of Object.keys(sum) as (keyof InformerCounters)[]) sum[k] += c[k];
    }
    return {
      pods: this.informers[0]?.size ?? 0, services: this.services.size, slices: this.slices.size, nodes: this.nodes.size,
      ips: this.history.ips, versions: this.history.versions, ownerGets: this.workloads.stats().gets, ...sum,
    };
  }

  /** Counters of one informer: 'pods', 'services', 'endpointslices', 'nodes'. */
  informerStats(resource: 'pods' | 'services' | 'endpointslices' | 'nodes'): InformerCounters {
    const i = ['pods', 'services', 'endpointslices', 'nodes'].indexOf(resource);
    return this.informers[i]!.counters();
  }

  stop(): void {
    for (const i of this.informers) i.stop();
  }

  // --- events -----------------------------------------------------------------------------

  private podEvent(type: InformerEventType, pod: V1Pod, old?: V1Pod): void {
    const k = objKey(pod);
    const before = this.pods.get(k);
    const touched = new Set(before?.ips ?? []);
    for (const ip of before?.ips ?? []) this.unindex(this.ipPods, ip, k);
    this.pods.delete(k);
    this.containers.set(k, type === 'delete' ? undefined : pod);
    const phase = pod.status?.phase;
    if (type !== 'delete' && phase !== 'Succeeded' && phase !== 'Failed') {
      const ips = addresses([...(pod.status?.podIPs ?? []).map((p) => p.ip), pod.status?.podIP]);
      const info: PodInfo = {
        pod, ips, hostNetwork: pod.spec?.hostNetwork === true,
        ownerUid: controllerOf(pod.metadata?.ownerReferences)?.uid,
        since: seconds(pod.metadata?.creationTimestamp),
      };
      this.pods.set(k, info);
      for (const ip of ips) {
        this.index(this.ipPods, ip, k);
        touched.add(ip);
      }
    }
    this.changed(touched, seconds(pod.metadata?.creationTimestamp));
    for (const l of this.podListeners) {
      try {
        l(type, pod, old);
      } catch (e) {
        this.opts.onError?.(e as Error);
      }
    }
  }

  private serviceEvent(type: InformerEventType, svc: V1Service): void {
    const k = objKey(svc);
    const touched = new Set(this.services.get(k)?.ips ?? []);
    for (const ip of touched) if (this.ipService.get(ip) === k) this.ipService.delete(ip);
    this.services.delete(k);
    if (type !== 'delete') {
      const ips = addresses([...(svc.spec?.clusterIPs ?? []), svc.spec?.clusterIP]);
      const name = svc.metadata?.name;
      const claim: Claim = { identity: { name, namespace: svc.metadata?.namespace, service: name }, since: seconds(svc.metadata?.creationTimestamp) };
      this.services.set(k, { ips, claim });
      for (const ip of ips) {
        this.ipService.set(ip, k);
        touched.add(ip);
      }
    }
    this.changed(touched, seconds(svc.metadata?.creationTimestamp));
  }

  private sliceEvent(type: InformerEventType, slice: V1EndpointSlice): void {
    const k = objKey(slice);
    const touched = new Set(this.slices.get(k)?.endpoints.keys() ?? []);
    for (const ip of touched) this.unindex(this.ipSlices, ip, k);
    this.slices.delete(k);
    if (type !== 'delete') {
      const info: SliceInfo = { service: slice.metadata?.labels?.['kubernetes.io/service-name'], namespace: slice.metadata?.namespace, endpoints: new Map() };
      for (const ep of slice.endpoints ?? []) {
        const pod = ep.targetRef?.kind === 'Pod' ? ep.targetRef.name : undefined;
        for (const ip of addresses(ep.addresses ?? [])) {
          info.endpoints.set(ip, { pod, node: ep.nodeName });
          this.index(this.ipSlices, ip, k);
          touched.add(ip);
        }
      }
      this.slices.set(k, info);
    }
    this.changed(touched, undefined);
  }

  private nodeEvent(type: InformerEventType, node: V1Node): void {
    const name = node.metadata?.name ?? '';
    const touched = new Set(this.nodes.get(name)?.ips ?? []);
    for (const ip of touched) if (this.ipNode.get(ip) === name) this.ipNode.delete(ip);
    this.nodes.delete(name);
    if (type !== 'delete') {
      const ips = addresses((node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address));
      this.nodes.set(name, { ips, claim: { identity: { name, node: name }, since: seconds(node.metadata?.creationTimestamp) } });
      for (const ip of ips) {
        this.ipNode.set(ip, name);
        touched.add(ip);
      }
    }
    this.changed(touched, seconds(node.metadata?.creationTimestamp));
  }

  private ownerLearnt(uid: string): void {
    for (const info of this.pods.values()) {
      if (info.ownerUid !== uid) continue;
      for (const ip of info.ips) {
        const claim = this.claim(ip);
        if (claim && claim.identity.name === info.pod.metadata?.name) this.history.amend(ip, claim.identity);
      }
    }
  }

  // --- identities -------------------------------------------------------------------------

  private changed(ips: Iterable<string>, since: number | undefined): void {
    if (this.pendingIps) {
      for (const ip of ips) this.pendingIps.add(ip);
      return;
    }
    const now = this.clock();
    for (const ip of ips) {
      const claim = this.claim(ip);
      // `since` only matters for an address with no current version (history.set), where the
      // claim's own creation time is the right start.
      if (this.history.set(ip, claim?.identity, now, claim?.since ?? since) && claim) this.tellKnown(ip);
    }
  }

  private applyPending(): void {
    const ips = this.pendingIps;
    this.pendingIps = undefined;
    if (ips) this.changed(ips, undefined);
  }

  private tellKnown(ip: string): void {
    for (const l of this.knownListeners) l(ip);
  }

  /** What `ip` is now, from every object that claims it (see the module comment for the order). */
  private claim(ip: string): Claim | undefined {
    const node = this.ipNode.get(ip);
    if (node !== undefined) return this.nodes.get(node)?.claim;
    const svc = this.ipService.get(ip);
    if (svc !== undefined) return this.services.get(svc)?.claim;
    const service = this.backing(ip);
    const pod = this.podAt(ip);
    if (pod) return { identity: this.podIdentity(pod, service), since: pod.since };
    // A pod this agent does not watch (another node's), known from an EndpointSlice.
    for (const k of this.ipSlices.get(ip) ?? []) {
      const s = this.slices.get(k)!;
      const ep = s.endpoints.get(ip);
      return { identity: strip({ name: ep?.pod, namespace: s.namespace, node: ep?.node, service }) };
    }
    return undefined;
  }

  private podIdentity(pod: PodInfo, service: string | undefined): Identity {
    const p = pod.pod;
    const identity: Identity = {
      name: p.metadata?.name, namespace: p.metadata?.namespace, workload: this.workloads.of(p), node: p.spec?.nodeName,
    };
    if (p.metadata?.labels && Object.keys(p.metadata.labels).length > 0) identity.labels = { ...p.metadata.labels };
    if (service) identity.service = service;
    return strip(identity);
  }

  private podAt(ip: string): PodInfo | undefined {
    let best: PodInfo | undefined;
    for (const k of this.ipPods.get(ip) ?? []) {
      const p = this.pods.get(k)!;
      if (!best || (best.hostNetwork && !p.hostNetwork) || (best.hostNetwork === p.hostNetwork && (p.since ?? 0) > (best.since ?? 0))) best = p;
    }
    return best;
  }

  /** The Services whose EndpointSlices list `ip`, sorted and joined with ",". */
  private backing(ip: string): string | undefined {
    const names = new Set<string>();
    for (const k of this.ipSlices.get(ip) ?? []) {
      const name = this.slices.get(k)?.service;
      if (name) names.add(name);
    }
    return names.size ? [...names].sort().join(',') : undefined;
  }

  private index(map: Map<string, Set<string>>, ip: string, k: string): void {
    let set = map.get(ip);
    if (!set) map.set(ip, (set = new Set()));
    set.add(k);
  }

  private unindex(map: Map<string, Set<string>>, ip: string, k: string): void {
    const set = map.get(ip);
    set?.delete(k);
    if (set?.size === 0) map.delete(ip);
  }
}

function strip(id: Identity): Identity {
  for (const k of Object.keys(id) as (keyof Identity)[]) if (id[k] === undefined) delete id[k];
  return id;
}
