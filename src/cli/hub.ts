import { Hub } from '../hub/index.js';
import { KubeConfigError } from '../enrich/index.js';
import { parseListen } from './agent.js';

export interface HubCliOptions {
  /** Comma-separated agent URLs. */
  agents?: string;
  /** namespace/service of the agents' headless Service. */
  discover?: string;
  kubeconfig?: string;
  listen: string;
  token?: string;
  agentToken?: string;
  /** Per-agent timeout, seconds. */
  timeout: number;
  /** Watch the cluster's Events (default: with --discover or --kubeconfig); --no-cluster-events turns it off. */
  clusterEvents: boolean;
}

/** A Kubernetes object name as namespaces and Services use it (RFC 1123 label). */
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `--agents a,b`: each an http(s) URL. Throws naming the one that is not. */
export function parseAgents(v: string): string[] {
  const urls = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (urls.length === 0) throw new Error(`--agents "${v}": expected one or more agent URLs, comma-separated, e.g. http://10.0.0.5:8899,http://10.0.0.6:8899`);
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`--agents: "${u}" is not a URL (expected e.g. http://10.0.0.5:8899)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--agents: "${u}" is not an http(s) URL`);
  }
  return [...new Set(urls.map((u) => new URL(u).origin))];
}

/** `--discover namespace/service`. */
export function parseDiscover(v: string): { namespace: string; service: string } {
  const [namespace, service, extra] = v.split('/');
  if (extra !== undefined || !namespace || !service || !LABEL.test(namespace) || !LABEL.test(service)) {
    throw new Error(`--discover "${v}": expected namespace/service (the agents' headless Service), e.g. tapwire/tapwire-agent`);
  }
  return { namespace, service };
}

/** `tapwire hub`: runs until SIGINT/SIGTERM. Resolves with the exit status. */
export async function runHub(o: HubCliOptions): Promise<number> {
  let agents: string[] | undefined, discover: { namespace: string; service: string } | undefined, listen: { host: string; port: number };
  try {
    if (o.agents === undefined && o.discover === undefined) throw new Error('give the agents with --agents url,… or find them with --discover namespace/service');
    agents = o.agents === undefined ? undefined : parseAgents(o.agents);
    discover = o.discover === undefined ? undefined : parseDiscover(o.discover);
    listen = parseListen(o.listen);
  } catch (e) {
    process.stderr.write(`tapwire hub: ${(e as Error).message}\n`);
    return 2;
  }
  let hub: Hub;
  try {
    hub = await Hub.start({
      agents, listen, token: o.token, agentToken: o.agentToken, timeoutMs: o.timeout * 1000,
      discover: discover && { ...discover, kubeconfig: o.kubeconfig },
      onAgents: (urls) => process.stderr.write(`tapwire hub: agents now ${urls.length ? urls.join(', ') : 'none'}\n`),
      onDiscoveryError: (e) => process.stderr.write(`tapwire hub: discovery: ${e.message}; retrying\n`),
      // With a cluster to ask (in-cluster for --discover, or --kubeconfig), the hub watches its Events.
      clusterEvents: o.clusterEvents && (discover !== undefined || o.kubeconfig !== undefined) ? { kubeconfig: o.kubeconfig } : undefined,
      onEventsError: (e) => process.stderr.write(`tapwire hub: cluster events: ${e.message}; retrying\n`),
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? `--listen ${o.listen}: address already in use`
      : err.code === 'EACCES' ? `--listen ${o.listen}: permission denied`
      : e instanceof KubeConfigError ? `--kubeconfig ${err.message}` : err.message;
    process.stderr.write(`tapwire hub: ${why}\n`);
    return 2;
  }
  const found = (discover ? `; agents of ${discover.namespace}/${discover.service} found from its EndpointSlices` : '')
    + (hub.clusterEvents ? '; watching the cluster\'s Events' : '');
  process.stderr.write(`tapwire hub: API on ${hub.address}; ${hub.source.describe()}${found}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('tapwire hub: stopping\n');
  await hub.stop();
  return 0;
}
