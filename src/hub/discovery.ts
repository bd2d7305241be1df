import type { V1EndpointSlice } from '@kubernetes/client-node';
import { hostPort } from '../common/index.js';
import { Informer, loadKubeConfig } from '../enrich/index.js';

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
 * The agents of a hub, from their headless Service's EndpointSlices (discovery.k8s.io/v1): the
 * informer the agents use for their own watches (enrich/kubernetes: list, then watch from the
 * list's resourceVersion with bookmarks, backoff on failures, relist on 410 Gone; no polling), over
 * the slices labelled `kubernetes.io/service-name=<service>` in the namespace, as kube-proxy finds a
 * Service's endpoints (https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/).
 * An endpoint is an agent when it is ready — `conditions.ready` unset counts as ready, as the API
 * documents ("nil should be interpreted as true") — at its first address and the slice's port
 * named "api", else its first port.
 */
export async function discoverAgents(o: DiscoveryOptions): Promise<Discovery> {
  const k8s = await import('@kubernetes/client-node');
  const kc = await loadKubeConfig({ kubeconfig: o.kubeconfig });
  const api = kc.makeApiClient(k8s.DiscoveryV1Api);
  let current: string[] = [];
  const update = () => {
    // The first list's objects arrive one by one: the set is told once it is whole.
    if (!informer.isSynced) return;
    const next = agentUrls([...informer.values()]);
    if (next.join(' ') === current.join(' ')) return;
    current = next;
    o.onChange(next);
  };
  const informer: Informer<V1EndpointSlice> = new Informer<V1EndpointSlice>(kc, {
    resource: 'endpointslices', group: 'discovery.k8s.io', type: 'V1EndpointSlice',
    path: `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(o.namespace)}/endpointslices`,
    labelSelector: `kubernetes.io/service-name=${o.service}`,
    list: (q) => api.listNamespacedEndpointSlice({ ...q, namespace: o.namespace }),
  }, update, (e) => o.onError?.(e));
  try {
    await informer.start();
  } catch (e) {
    throw new Error(`--discover ${o.namespace}/${o.service}: cannot list EndpointSlices: ${(e as Error).message}`);
  }
  update();
  return {
    urls: () => current,
    nodeOf: (url) => agentNodes([...informer.values()]).get(url),
    stop: async () => informer.stop(),
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
