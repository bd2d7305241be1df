/**
 * Objects for tests against the real API server, created the way a cluster's controllers and
 * kubelets would (none run here): ownerReferences set by hand, pod IPs written through the
 * status subresource, EndpointSlices written as the EndpointSlice controller would.
 */
import * as k8s from '@kubernetes/client-node';

export interface Apis {
  kc: k8s.KubeConfig;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  batch: k8s.BatchV1Api;
  discovery: k8s.DiscoveryV1Api;
  rbac: k8s.RbacAuthorizationV1Api;
}

export function apis(kubeconfig: string): Apis {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    kc,
    core: kc.makeApiClient(k8s.CoreV1Api),
    apps: kc.makeApiClient(k8s.AppsV1Api),
    batch: kc.makeApiClient(k8s.BatchV1Api),
    discovery: kc.makeApiClient(k8s.DiscoveryV1Api),
    rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
  };
}

export async function namespace(a: Apis, name: string): Promise<void> {
  await a.core.createNamespace({ body: { metadata: { name } } });
}

export async function node(a: Apis, name: string, internalIp: string): Promise<void> {
  await a.core.createNode({ body: { metadata: { name } } });
  const n = await a.core.readNode({ name });
  n.status = { ...n.status, addresses: [{ type: 'InternalIP', address: internalIp }, { type: 'Hostname', address: name }] };
  await a.core.replaceNodeStatus({ name, body: n });
}

export type Owner = { kind: string; name: string; uid: string; apiVersion: string };

export const ownerOf = (o: { metadata?: k8s.V1ObjectMeta }, kind: string, apiVersion: string): Owner =>
  ({ kind, name: o.metadata!.name!, uid: o.metadata!.uid!, apiVersion });

export interface PodSpec {
  node: string;
  ips?: string[];
  labels?: Record<string, string>;
  owner?: Owner;
  hostNetwork?: boolean;
}

export async function pod(a: Apis, ns: string, name: string, spec: PodSpec): Promise<k8s.V1Pod> {
  const created = await a.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name, labels: spec.labels,
        ownerReferences: spec.owner ? [{ ...spec.owner, controller: true, blockOwnerDeletion: true }] : undefined,
      },
      spec: { nodeName: spec.node, hostNetwork: spec.hostNetwork, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
    },
  });
  if (spec.ips) await podIps(a, ns, name, spec.ips);
  return created;
}

/** What the kubelet does once the sandbox has its addresses. */
export async function podIps(a: Apis, ns: string, name: string, ips: string[], phase = 'Running'): Promise<void> {
  const p = await a.core.readNamespacedPod({ name, namespace: ns });
  p.status = { ...p.status, phase, podIP: ips[0], podIPs: ips.map((ip) => ({ ip })), hostIP: undefined };
  await a.core.replaceNamespacedPodStatus({ name, namespace: ns, body: p });
}

export async function podLabels(a: Apis, ns: string, name: string, labels: Record<string, string>): Promise<void> {
  const p = await a.core.readNamespacedPod({ name, namespace: ns });
  p.metadata!.labels = labels;
  await a.core.replaceNamespacedPod({ name, namespace: ns, body: p });
}

export async function deletePod(a: Apis, ns: string, name: string): Promise<void> {
  // No kubelet runs to finish a graceful deletion: delete at once.
  await a.core.deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 0 });
}

/** A Service; the API server allots its ClusterIP. Returns it. */
export async function service(a: Apis, ns: string, name: string): Promise<string> {
  const s = await a.core.createNamespacedService({
    namespace: ns,
    body: { metadata: { name }, spec: { ports: [{ port: 80, protocol: 'TCP' }], selector: { app: name } } },
  });
  return s.spec!.clusterIP!;
}

/** The EndpointSlice the controller would write for `svc`, listing `ips` (pods on `node`). */
export async function slice(a: Apis, ns: string, svc: string, ips: { ip: string; pod?: string; node?: string }[], name = `${svc}-abcde`): Promise<void> {
  const body: k8s.V1EndpointSlice = {
    metadata: { name, labels: { 'kubernetes.io/service-name': svc, 'endpointslice.kubernetes.io/managed-by': 'tapwire-test' } },
    addressType: ips.some((e) => e.ip.includes(':')) ? 'IPv6' : 'IPv4',
    endpoints: ips.map((e) => ({
      addresses: [e.ip], nodeName: e.node, conditions: { ready: true },
      targetRef: e.pod ? { kind: 'Pod', name: e.pod, namespace: ns } : undefined,
    })),
    ports: [{ port: 80, protocol: 'TCP', name: '' }],
  };
  try {
    const old = await a.discovery.readNamespacedEndpointSlice({ name, namespace: ns });
    body.metadata!.resourceVersion = old.metadata!.resourceVersion;
    await a.discovery.replaceNamespacedEndpointSlice({ name, namespace: ns, body });
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
    await a.discovery.createNamespacedEndpointSlice({ namespace: ns, body });
  }
}

/** A Deployment and the ReplicaSet its controller would make, owned by hand. */
export async function deployment(a: Apis, ns: string, name: string, hash: string): Promise<{ rs: Owner }> {
  const labels = { app: name };
  const template = { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] } };
  const d = await a.apps.createNamespacedDeployment({ namespace: ns, body: { metadata: { name }, spec: { selector: { matchLabels: labels }, template } } });
  const rs = await a.apps.createNamespacedReplicaSet({
    namespace: ns,
    body: {
      metadata: { name: `${name}-${hash}`, labels: { ...labels, 'pod-template-hash': hash }, ownerReferences: [{ ...ownerOf(d, 'Deployment', 'apps/v1'), controller: true }] },
      spec: { selector: { matchLabels: { ...labels, 'pod-template-hash': hash } }, template: { ...template, metadata: { labels: { ...labels, 'pod-template-hash': hash } } } },
    },
  });
  return { rs: ownerOf(rs, 'ReplicaSet', 'apps/v1') };
}

/** Waits until `cond()` holds (polling every 20 ms), or fails naming `what`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
