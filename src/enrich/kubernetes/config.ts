/**
 * Where the Kubernetes API is and who we are to it: the in-cluster service account by default
 * (the agent's pod: KUBERNETES_SERVICE_HOST/PORT and the token mounted at
 * /var/run/secrets/kubernetes.io/serviceaccount, https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/),
 * or a kubeconfig file (--kubeconfig) from outside. The client library is loaded here, lazily,
 * so that tapwire commands without Kubernetes never load it.
 */
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';

/** A configuration that cannot be used: the message names the file (or the variable) and what was wrong. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigOptions {
  /** A kubeconfig file; without it, the in-cluster service account. */
  kubeconfig?: string;
  /** The environment to read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Prefix of the service-account directory (tests). */
  root?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function named(list: unknown, name: string): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined;
  const hit = list.find((e) => isObject(e) && e.name === name);
  return isObject(hit) ? hit : undefined;
}

/** Checks what the client library would accept silently, so the error names the file and the field. */
function checkKubeconfig(file: string, text: string, parseYaml: (text: string) => unknown): void {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new KubeConfigError(`${file}: not YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isObject(doc)) throw new KubeConfigError(`${file}: not a kubeconfig (expected a YAML mapping with clusters, users, contexts)`);
  const current = doc['current-context'];
  if (typeof current !== 'string' || current === '') {
    throw new KubeConfigError(`${file}: no current-context (set one with kubectl config use-context)`);
  }
  const ctx = named(doc.contexts, current);
  if (!ctx) throw new KubeConfigError(`${file}: current-context "${current}" is not in contexts`);
  const ctxBody = isObject(ctx.context) ? ctx.context : {};
  const clusterName = ctxBody.cluster;
  if (typeof clusterName !== 'string') throw new KubeConfigError(`${file}: context "${current}" names no cluster`);
  const cluster = named(doc.clusters, clusterName);
  if (!cluster) throw new KubeConfigError(`${file}: context "${current}" names cluster "${clusterName}", which is not in clusters`);
  const server = isObject(cluster.cluster) ? cluster.cluster.server : undefined;
  if (typeof server !== 'string' || !/^https?:\/\//.test(server)) {
    throw new KubeConfigError(`${file}: cluster "${clusterName}" has no server URL (clusters[].cluster.server)`);
  }
}

/**
 * The API's address and credentials: `kubeconfig` when given, else the pod's service account.
 * Throws KubeConfigError naming the file or variable and what was wrong.
 */
export async function loadKubeConfig(opts: KubeConfigOptions = {}): Promise<KubeConfig> {
  const env = opts.env ?? process.env;
  if (opts.kubeconfig !== undefined) {
    const file = opts.kubeconfig;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new KubeConfigError(`${file}: cannot read the kubeconfig: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`);
    }
    const { parse: parseYaml } = await import('yaml');
    checkKubeconfig(file, text, parseYaml);
    const kc = new (await import('@kubernetes/client-node')).KubeConfig();
    try {
      kc.loadFromFile(file);
    } catch (e) {
      throw new KubeConfigError(`${file}: ${(e as Error).message}`);
    }
    return kc;
  }
  const host = env.KUBERNETES_SERVICE_HOST, port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError(`not in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set): give --kubeconfig`);
  }
  const root = opts.root ?? '';
  const token = `${root}${SERVICE_ACCOUNT_DIR}/token`;
  try {
    readFileSync(token);
  } catch (e) {
    throw new KubeConfigError(`${token}: cannot read the service-account token (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is automountServiceAccountToken off?`);
  }
  const kc = new (await import('@kubernetes/client-node')).KubeConfig();
  // loadFromCluster reads these variables from process.env only.
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = host;
  process.env.KUBERNETES_SERVICE_PORT = port;
  try {
    kc.loadFromCluster(root);
  } finally {
    restore('KUBERNETES_SERVICE_HOST', saved.host);
    restore('KUBERNETES_SERVICE_PORT', saved.port);
  }
  return kc;
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

/**
 * The node this agent runs on: `--node`, else NODE_NAME (the DaemonSet sets it from the
 * downward API, fieldRef spec.nodeName). Throws when neither is set.
 */
export function nodeName(opts: { node?: string } = {}, env: NodeJS.ProcessEnv = process.env): string {
  const name = opts.node ?? env.NODE_NAME;
  if (name === undefined || name.trim() === '') {
    throw new KubeConfigError(`no node name: give --node <name> or set NODE_NAME (downward API: fieldRef spec.nodeName)`);
  }
  return name.trim();
}
