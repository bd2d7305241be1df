import type { KubeConfig } from '@kubernetes/client-node';
import * as http from 'node:http';
import * as https from 'node:https';
import { bytes, millicores } from './quantity.js';

/**
 * Pod CPU and memory from the resource metrics API (metrics.k8s.io/v1beta1 PodMetrics, served by
 * metrics-server through the aggregation layer). That API has no watch and keeps no history: it
 * answers with the latest sample metrics-server took from each kubelet (every 15 s by default,
 * its --metric-resolution), so "was there a memory spike during the run" needs samples taken
 * while the run went on. A UsageSampler takes them and keeps a bounded ring per pod.
 *
 * Request cost: one discovery request (`GET /apis/metrics.k8s.io/v1beta1`) at start, then one
 * `LIST /apis/metrics.k8s.io/v1beta1/pods` per interval (at most every 15 s: 4 requests a minute
 * per agent). Where discovery finds no metrics API, it is asked again only every 5 minutes. The list is cluster-wide, because the metrics API's field selectors know only
 * metadata.name and metadata.namespace, not spec.nodeName (kubernetes/kubectl#1741); it is
 * filtered here to the node's pods. metrics-server answers it from memory, not from etcd; its
 * size grows with the cluster's pods (226 bytes a pod with two containers). Kept: a full node (110
 * pods) over an hour (240 samples each) holds 3.7 MB of heap, and usageOver for all of it takes
 * 5 ms (bench/usage/sampler.mjs).
 */

/** What one pod used during a window: CPU in millicores, memory (working set) in bytes. */
export interface PodUsage {
  cpu: { max: number; mean: number };
  memory: { max: number; mean: number };
  /** Samples that overlap the window (each covers metrics-server's own window before its timestamp). */
  samples: number;
}

/** Resource use of the pods involved in a window, as verdicts and runs carry it. */
export interface UsageReport {
  /** By "namespace/name". */
  pods: Record<string, PodUsage>;
  /** Pods involved that no sample covers (the window fell between samples, or before the ring). */
  unsampled?: string[];
  /** Seconds between samples. */
  interval: number;
  /** Samples left out because a quantity or a time could not be read. */
  skipped?: number;
  note?: string;
}

/** Usage where it could be read, else why not, in plain words. */
export type UsageAnswer = UsageReport | { unavailable: string };

/** Anything that answers for the resource use of pods over a window (a sampler, an agent over HTTP). */
export interface UsageSource {
  usageOver(pods: Iterable<string>, since: number, until: number): UsageAnswer | Promise<UsageAnswer>;
}

export interface UsageSamplerOptions {
  /** The cluster and credentials (the same KubeConfig the informers use). */
  kubeconfig: KubeConfig;
  /** Milliseconds between reads; never less than MIN_INTERVAL_MS (metrics-server resamples no faster). */
  intervalMs?: number;
  /** The pods to keep ("namespace/name"): the node's (the identity informer knows them); absent: all. */
  pods?: () => ReadonlySet<string>;
  /** Samples kept per pod (default 240: an hour at 15 s). */
  maxSamples?: number;
  /** Pods kept at once (default 2000); past it, new pods are not kept and counted in `dropped`. */
  maxPods?: number;
  /** Epoch seconds (tests). */
  now?: () => number;
  /** Seconds before discovery is asked again after it found no metrics API (default 300). */
  rediscoverSec?: number;
}

/** After discovery found no metrics API (404) or no right to it (403), how long before it is asked again. */
const REDISCOVER_SEC = 300;

/** metrics-server's default resolution: reading faster only repeats its last sample. */
export const MIN_INTERVAL_MS = 15_000;
const DEFAULT_MAX_SAMPLES = 240;
const DEFAULT_MAX_PODS = 2000;
/** Largest answer read: a PodMetricsList of about 100 000 pods. */
const MAX_BODY = 32 << 20;
const REQUEST_TIMEOUT_MS = 10_000;
const GROUP_VERSION = 'metrics.k8s.io/v1beta1';

interface Sample {
  /** metrics-server's timestamp, epoch seconds: the end of the sample's window. */
  at: number;
  /** Seconds the CPU rate was averaged over, ending at `at`. */
  window: number;
  cpu: number;
  memory: number;
}

type State = { kind: 'starting' } | { kind: 'ok' } | { kind: 'unavailable'; why: string };

export class UsageSampler implements UsageSource {
  private readonly rings = new Map<string, Sample[]>();
  private state: State = { kind: 'starting' };
  private timer?: NodeJS.Timeout;
  private inFlight?: Promise<void>;
  private discovered = false;
  /** Before this time (epoch seconds) discovery is not asked again: it said the API is not there. */
  private rediscoverAt = 0;
  /** Requests made, by kind (the cost stated above, measured). */
  readonly requests = { discovery: 0, list: 0 };
  /** Pod samples left out: a quantity, timestamp or window that could not be read. */
  skipped = 0;
  /** New pods not kept because maxPods were kept already. */
  dropped = 0;
  private readonly intervalMs: number;

  constructor(private readonly o: UsageSamplerOptions) {
    this.intervalMs = Math.max(o.intervalMs ?? MIN_INTERVAL_MS, MIN_INTERVAL_MS);
  }

  /** Reads now, then every interval until stop(). A read still running when the next is due is not doubled. */
  start(): void {
    if (this.timer) return;
    void this.poll();
    this.timer = setInterval(() => { void this.poll(); }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Why the metrics API cannot be read, or undefined while it can (or before the first read). */
  get unavailable(): string | undefined {
    return this.state.kind === 'unavailable' ? this.state.why : undefined;
  }

  /** One read: discovery until it succeeds, then the pod metrics list. Never throws. */
  poll(): Promise<void> {
    this.inFlight ??= this.read().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  private async read(): Promise<void> {
    try {
      if (!this.discovered) {
        // A cluster without metrics-server rarely gains one: asking every interval would be
        // polling the API server for an answer that does not change (kubeshark/kubeshark#1500).
        if (this.now() < this.rediscoverAt) return;
        this.requests.discovery++;
        const d = await getJson(this.o.kubeconfig, `/apis/${GROUP_VERSION}`);
        if (d.status !== 200) return this.fail(d.status, 'discovery');
        this.discovered = true;
      }
      this.requests.list++;
      const r = await getJson(this.o.kubeconfig, `/apis/${GROUP_VERSION}/pods`);
      if (r.status !== 200) return this.fail(r.status, 'list');
      this.take(r.body);
      this.state = { kind: 'ok' };
    } catch (e) {
      this.state = { kind: 'unavailable', why: `metrics API not reachable: ${(e as Error).message}` };
    }
  }

  private fail(status: number, what: 'discovery' | 'list'): void {
    // A 404 after discovery succeeded (the APIService removed) is asked about again from discovery.
    if (status === 404) this.discovered = false;
    // Not installed (404) or not allowed (403) lasts; a 503 (metrics-server starting) is asked again soon.
    if (what === 'discovery' && (status === 404 || status === 403)) this.rediscoverAt = this.now() + (this.o.rediscoverSec ?? REDISCOVER_SEC);
    this.state = { kind: 'unavailable', why: `metrics API not reachable: ${GROUP_VERSION} answered ${status} ${statusWords(status, what)}` };
  }

  /** Keeps each pod's sample of a PodMetricsList, once per metrics-server timestamp. */
  private take(body: unknown): void {
    const items = (body as { items?: unknown } | null)?.items;
    if (!Array.isArray(items)) throw new Error(`${GROUP_VERSION}/pods answered without an "items" list`);
    const keep = this.o.pods?.();
    const maxSamples = this.o.maxSamples ?? DEFAULT_MAX_SAMPLES;
    for (const item of items) {
      const key = podKey(item);
      if (key === undefined) { this.skipped++; continue; }
      if (keep && !keep.has(key)) continue;
      const s = sampleOf(item);
      if (!s) { this.skipped++; continue; }
      let ring = this.rings.get(key);
      if (!ring) {
        if (this.rings.size >= (this.o.maxPods ?? DEFAULT_MAX_PODS)) { this.dropped++; continue; }
        this.rings.set(key, (ring = []));
      }
      if (ring.length > 0 && ring[ring.length - 1]!.at >= s.at) continue;
      ring.push(s);
      if (ring.length > maxSamples) ring.splice(0, ring.length - maxSamples);
    }
    // Pods gone for longer than the ring spans are forgotten, so a busy node's churn stays bounded.
    const horizon = this.now() - (maxSamples * this.intervalMs) / 1000;
    for (const [k, ring] of this.rings) if (ring[ring.length - 1]!.at < horizon) this.rings.delete(k);
  }

  /**
   * The CPU and memory of `pods` ("namespace/name") during [since, until], epoch seconds. A sample
   * counts when its own window (metrics-server averages CPU over the seconds before its
   * timestamp) overlaps the asked one, so a run shorter than the interval still gets the sample
   * that covers it. Unavailable, in words, when the metrics API could not be read.
   */
  usageOver(pods: Iterable<string>, since: number, until: number): UsageAnswer {
    if (this.state.kind === 'unavailable' && this.rings.size === 0) return { unavailable: this.state.why };
    if (this.state.kind === 'starting' && this.rings.size === 0) return { unavailable: 'metrics API not read yet (the first sample is taken when the agent starts)' };
    const out: Record<string, PodUsage> = {};
    const unsampled: string[] = [];
    for (const pod of new Set(pods)) {
      const hit = (this.rings.get(pod) ?? []).filter((s) => s.at >= since && s.at - s.window <= until);
      if (hit.length === 0) { unsampled.push(pod); continue; }
      out[pod] = {
        cpu: { max: round(Math.max(...hit.map((s) => s.cpu))), mean: round(mean(hit.map((s) => s.cpu))) },
        memory: { max: Math.max(...hit.map((s) => s.memory)), mean: Math.round(mean(hit.map((s) => s.memory))) },
        samples: hit.length,
      };
    }
    return {
      pods: out, ...(unsampled.length ? { unsampled: unsampled.sort() } : {}), interval: this.intervalMs / 1000,
      ...(this.skipped ? { skipped: this.skipped } : {}),
      ...(this.state.kind === 'unavailable' ? { note: `the latest read failed (${this.state.why}); older samples are shown` } : {}),
    };
  }

  private now(): number {
    return this.o.now?.() ?? Date.now() / 1000;
  }
}

/** Why a status, in the words an operator acts on. */
function statusWords(status: number, what: 'discovery' | 'list'): string {
  if (status === 404) return what === 'discovery' ? '(metrics-server not installed)' : '(the metrics API went away: metrics-server not installed)';
  if (status === 401) return '(the credentials were refused)';
  if (status === 403) return '(RBAC: the agent may not list pods.metrics.k8s.io; grant get and list on "pods" in the "metrics.k8s.io" API group)';
  if (status === 503) return '(the APIService is registered but metrics-server does not answer)';
  return what === 'discovery' ? '(to discovery)' : '(to listing pod metrics)';
}

function podKey(item: unknown): string | undefined {
  const md = (item as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  return typeof md?.name === 'string' && typeof md.namespace === 'string' ? `${md.namespace}/${md.name}` : undefined;
}

/** One PodMetrics as a sample: its containers summed; undefined when any part cannot be read. */
function sampleOf(item: unknown): Sample | undefined {
  const m = item as { timestamp?: unknown; window?: unknown; containers?: unknown };
  const at = typeof m.timestamp === 'string' ? Date.parse(m.timestamp) / 1000 : NaN;
  const window = goDuration(m.window);
  if (!Number.isFinite(at) || window === undefined || !Array.isArray(m.containers)) return undefined;
  let cpu = 0, memory = 0;
  for (const c of m.containers as { usage?: { cpu?: unknown; memory?: unknown } }[]) {
    const mc = millicores(c?.usage?.cpu), b = bytes(c?.usage?.memory);
    if (mc === undefined || b === undefined) return undefined;
    cpu += mc;
    memory += b;
  }
  return { at, window, cpu, memory };
}

/** A Go time.Duration as metav1.Duration writes it ("30s", "15.018s", "1m0s") in seconds. */
export function goDuration(v: unknown): number | undefined {
  if (typeof v !== 'string' || !/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/.test(v)) return undefined;
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  let total = 0;
  for (const [, n, , u] of v.matchAll(/(\d+(\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) total += Number(n) * unit[u!]!;
  return total;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * A GET against the cluster's API server with the kubeconfig's credentials (token, client
 * certificate, CA), the JSON answer bounded. Statuses are answered, not thrown: 404 and 403 mean
 * something here.
 */
async function getJson(kc: KubeConfig, path: string): Promise<{ status: number; body: unknown }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  const opts: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json' }, timeout: REQUEST_TIMEOUT_MS };
  await kc.applyToHTTPSOptions(opts);
  const plain = url.protocol === 'http:';
  // A plain-HTTP server gets no TLS agent (the kubeconfig's is made for https).
  if (plain && opts.agent instanceof https.Agent) delete opts.agent;
  return new Promise((resolve, reject) => {
    const req = (plain ? http : https).request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) { req.destroy(new Error(`${url.origin}${path} answered more than ${MAX_BODY} bytes`)); return; }
        chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return resolve({ status: res.statusCode ?? 0, body: undefined });
        try {
          resolve({ status: 200, body: JSON.parse(text) });
        } catch {
          reject(new Error(`${url.origin}${path} answered 200 with a body that is not JSON`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${url.origin}${path} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    req.on('error', (e) => reject(new Error(`${url.origin}: ${e.message}`)));
    req.end();
  });
}

/**
 * Several sources' answers for the same pods as one (the hub asks every agent; each samples only
 * its node's pods, so a pod is sampled by at most one). A pod is unsampled when no answer sampled
 * it. Answers that could not be had are named in `note`; all of them unavailable is unavailable,
 * with each distinct reason.
 */
export function mergeUsage(answers: readonly UsageAnswer[]): UsageAnswer {
  const reports = answers.filter((a): a is UsageReport => 'pods' in a);
  const why = [...new Set(answers.filter((a): a is { unavailable: string } => 'unavailable' in a).map((a) => a.unavailable))];
  if (reports.length === 0) return { unavailable: why.length ? why.join('; ') : 'no source of resource use answered' };
  const pods: Record<string, PodUsage> = {};
  for (const r of reports) Object.assign(pods, r.pods);
  const unsampled = [...new Set(reports.flatMap((r) => r.unsampled ?? []))].filter((p) => !(p in pods)).sort();
  const skipped = reports.reduce((n, r) => n + (r.skipped ?? 0), 0);
  const notes = [...reports.flatMap((r) => (r.note ? [r.note] : [])), ...(why.length ? [`not every source answered: ${why.join('; ')}`] : [])];
  return {
    pods, ...(unsampled.length ? { unsampled } : {}), interval: Math.max(...reports.map((r) => r.interval)),
    ...(skipped ? { skipped } : {}), ...(notes.length ? { note: notes.join('; ') } : {}),
  };
}
