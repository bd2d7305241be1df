import {
  applyIdentity, enrichers, IdentityFileError, IdentityMap, KubeConfigError, KubernetesIdentity, KubernetesIdentityError, loadKubeConfig, type Enricher, type IdentitySource, type IpHistory,
} from '../enrich/index.js';

/** Where `analyze` and `verify` learn who the peers of a capture were. */
export interface IdentityCliOptions {
  /** A JSON file of ip → identity (--identities). */
  identities?: string;
  /** A kubeconfig (--kubeconfig): the cluster's pods, services and nodes, listed once. */
  kubeconfig?: string;
}

export interface OpenIdentities {
  /** Undefined when no identity source was asked for. */
  enricher?: Enricher;
  /** Stops what watches the cluster. */
  stop(): void;
}

/**
 * What an address was at a capture's time, from what the cluster remembers now: the version that
 * covered that time; for a time before the address's first known holder (a capture older than
 * the pods, which the API shows only from their creation on), that first holder; nothing for a
 * time after its last holder ended. The API keeps no history of deleted pods, so an address
 * reused before the cluster was asked may be named by its later holder: docs/kubernetes.md says so.
 */
function pastOf(history: IpHistory): IdentitySource {
  return {
    lookup(ip, at) {
      const hit = history.lookup(ip, at);
      if (hit || at === undefined) return hit;
      const first = history.versionsOf(ip)[0];
      return first && at < first.from ? first.identity : undefined;
    },
  };
}

/**
 * The identity sources a capture command asked for, as one enricher, or undefined after printing
 * why one cannot be opened (the caller exits 2). The static file names first: what someone wrote
 * by hand overrides what the cluster says, as in the agent.
 */
export async function openIdentities(o: IdentityCliOptions, say: (line: string) => void): Promise<OpenIdentities | undefined> {
  const list: Enricher[] = [];
  let stop = () => undefined as void;
  if (o.kubeconfig !== undefined) {
    try {
      const kc = await loadKubeConfig({ kubeconfig: o.kubeconfig });
      // A capture is of the past: every pod the cluster still knows, each from its creation on.
      const cluster = await KubernetesIdentity.start(kc, { scope: 'cluster' });
      list.push({ name: 'kubernetes', enrich: (r) => applyIdentity(pastOf(cluster.ipHistory), r) });
      stop = () => cluster.stop();
    } catch (e) {
      if (!(e instanceof KubeConfigError || e instanceof KubernetesIdentityError)) throw e;
      // A kubeconfig's own errors start with its path; the API's do not.
      say(e instanceof KubeConfigError ? `--kubeconfig ${e.message}` : `--kubeconfig ${o.kubeconfig}: ${e.message}`);
      return undefined;
    }
  }
  if (o.identities !== undefined) {
    try {
      list.push(IdentityMap.load(o.identities));
    } catch (e) {
      if (!(e instanceof IdentityFileError)) throw e;
      stop();
      say(`--identities ${e.message}`);
      return undefined;
    }
  }
  return { enricher: list.length === 0 ? undefined : list.length === 1 ? list[0] : enrichers(list), stop };
}
