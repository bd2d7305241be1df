import type { V1EndpointSlice } from '@kubernetes/client-node';
import { hostPort } from '../common/index.js';
import { loadKubeConfig } from '../enrich/index.js';

export interface DiscoveryOptions {
  namespace: string;
  /** The agents' headless Service. */
  service: string;
  /** Out-of-cluster use; in a pod the service account is used. */
  kubeconfig?: string;
  /** The agent set changed (ready endpoints only), as sorted URLs. */
  onChange: (urls: string[]) => void;
  /** A watch failed; it is restarted after a backoff. */
  onError?: (e: Error) => void;
}

export interface Discovery {
  /** The agents' URLs now. */
  urls(): string[];
  /** The node of an agent found (its endpoint's nodeName), while its endpoint is known. */
  nodeOf(url: string): string | undefined;
  stop(): Promise<void>;
}

/** Name of the EndpointSlice port the agent API is served on, when a slice has several. */
const API_PORT = 'api';

/**
 * The agents of a hub, from their headless Service's EndpointSlices (discovery.k8s.io/v1): an
 * informer (list, then watch from the list's resourceVersion; no polling) over the slices labelled
 * `kubernetes.io/service-name=<service>` in the namespace, as kube-proxy finds a Service's
 * endpoints (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/). An endpoint
 * is an agent when it is ready — `conditions.ready` unset counts as ready, as the API documents
 * ("nil should be interpreted as true") — at its first address and the slice's port named "api",
 * else its first port. The library's informer relists on 410 Gone by itself, but stops on any
 * other error: it is restarted here after a backoff (1 s doubling to 30 s).
 */
export async function discoverAgents(o: DiscoveryOptions): Promise<Discovery> {
  const k8s = await import('@kubernetes/client-node');
  const kc = await loadKubeConfig({ kubeconfig: o.kubeconfig });
  const api = kc.makeApiClient(k8s.DiscoveryV1Api);
  const labelSelector = `kubernetes.io/service-name=${o.service}`;
  const informer = k8s.makeInformer<V1EndpointSlice>(
    kc, `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(o.namespace)}/endpointslices`,
    () => api.listNamespacedEndpointSlice({ namespace: o.namespace, labelSelector }), labelSelector,
  );
  let current: string[] = [];
  const update = () => {
    const next = agentUrls(informer.list(o.namespace));
    if (next.join(' ') === current.join(' ')) return;
    current = next;
    o.onChange(next);
  };
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, update);
  let stopped = false, backoff = 1000, timer: NodeJS.Timeout | undefined;
  informer.on('connect', () => { backoff = 1000; });
  informer.on('error', (e: unknown) => {
    if (stopped) return;
    o.onError?.(e instanceof Error ? e : new Error(String(e)));
    timer = setTimeout(() => {
      informer.start().then(update, () => undefined);
    }, backoff);
    backoff = Math.min(backoff * 2, 30_000);
  });
  try {
    await informer.start();
  } catch (e) {
    throw new Error(`--discover ${o.namespace}/${o.service}: cannot list EndpointSlices: ${(e as { body?: { message?: string } }).body?.message ?? (e as Error).message}`);
  }
  update();
  return {
    urls: () => current,
    nodeOf: (url) => agentNodes(informer.list(o.namespace)).get(url),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await informer.stop();
    },
  };
}

/** The ready endpoints of the slices, as agent URLs, sorted and once each. */
export function agentUrls(slices: readonly V1EndpointSlice[]): string[] {
  return [...agentNodes(slices).keys()].sort();
}

/** Each ready endpoint's agent URL, with its node (nodeName) where the slice says. */
function agentNodes(slices: readonly V1EndpointSlice[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const s of slices) {
    const port = (s.ports ?? []).find((p) => p.name === API_PORT) ?? s.ports?.[0];
    if (port?.port === undefined) continue;
    for (const e of s.endpoints ?? []) {
      if (e.conditions?.ready === false) continue;
      const ip = e.addresses[0];
      if (ip !== undefined) out.set(`http://${hostPort(ip, port.port)}`, e.nodeName);
    }
  }
  return out;
}
