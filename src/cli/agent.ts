import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../agent/index.js';
import { CaptureOpenError, SOURCE_CHOICES, sourceUnavailable, tlsProbesUnavailable, type SourceChoice } from '../capture/index.js';
import { loadRedactKey } from '../pipeline/index.js';
import { loadStandingSpecs, parseDuration } from './watch.js';
import { CLI_DEFAULTS } from './defaults.js';
import { plural } from '../common/index.js';

export interface AgentCliOptions {
  interface: string[];
  filter?: string;
  listen: string;
  dataDir?: string;
  retention: string;
  identities?: string;
  bodyLimit: number;
  token?: string;
  /** Standing specs (--spec, repeatable) and the window they judge (--spec-window). */
  spec: string[];
  specWindow: string;
  /** Pod identity and events from the Kubernetes API (issue 16): in-cluster, or --kubeconfig. */
  kubernetes?: boolean;
  kubeconfig?: string;
  node?: string;
  clusterEvents?: boolean;
  /** TLS plaintext through eBPF uprobes (issue 17). */
  tls?: 'auto' | 'uprobe' | 'off';
  /** --no-processes: false. */
  processes?: boolean;
  /** The packet source (issue 18). */
  source?: string;
  /** --ring-size: the eBPF source's ring buffer. */
  ringSize?: string;
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };
const AGE_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `--retention <size>/<age>`, either part optional: `2GiB/24h`, `500MB`, `/6h`. Throws naming the part. */
export function parseRetention(v: string, defaults = { maxBytes: 1024 ** 3, maxAgeSec: 86400 }): { maxBytes: number; maxAgeSec: number } {
  const [size, age, extra] = v.split('/');
  if (extra !== undefined) throw new Error(`--retention "${v}": expected <size>/<age>, e.g. 2GiB/24h`);
  const out = { ...defaults };
  for (const [part, units, key, example] of [[size, SIZE_UNITS, 'maxBytes', '2GiB, 500MB'], [age, AGE_UNITS, 'maxAgeSec', '24h, 90m, 7d']] as const) {
    if (part === undefined || part === '') continue;
    const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(part.trim());
    const unit = m ? (m[2]!.toLowerCase() || (key === 'maxBytes' ? 'b' : 's')) : '';
    if (!m || !(unit in units) || Number(m[1]) <= 0) throw new Error(`--retention "${v}": "${part}" is not ${key === 'maxBytes' ? 'a size' : 'an age'} (e.g. ${example})`);
    out[key] = Number(m[1]) * units[unit]!;
  }
  return out;
}

/** `--ring-size`: a power of two from 4KiB to 1GiB, e.g. 8MiB. Throws naming the value. */
export function parseRingSize(v: string): number {
  const m = /^(\d+)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m ? (m[2]!.toLowerCase() || 'b') : '';
  const n = m && unit in SIZE_UNITS ? Number(m[1]) * SIZE_UNITS[unit]! : NaN;
  if (!(n >= 4096 && n <= 1024 ** 3) || (n & (n - 1)) !== 0) throw new Error(`--ring-size "${v}": expected a power of two from 4KiB to 1GiB, e.g. 8MiB`);
  return n;
}

/** `host:port`, `[v6]:port` or `:port` (loopback). */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen "${v}": expected host:port, e.g. 127.0.0.1:8899`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** What is wrong with the Kubernetes flags, before anything starts ('' when nothing). */
function kubernetesUsage(o: AgentCliOptions): string {
  const k8s = o.kubernetes || o.kubeconfig !== undefined;
  if (!k8s && o.node !== undefined) return '--node names the node for --kubernetes; give --kubernetes too';
  if (!k8s && o.clusterEvents) return '--cluster-events needs --kubernetes';
  return '';
}

/** `tapwire agent`: runs until SIGINT/SIGTERM. Resolves with the exit status. */
export async function runAgent(o: AgentCliOptions): Promise<number> {
  // A bad spec or window stops the agent before it captures anything.
  let specWindowSec: number;
  try {
    specWindowSec = parseDuration('--spec-window', o.specWindow);
  } catch (e) {
    process.stderr.write(`tapwire agent: ${(e as Error).message}\n`);
    return 2;
  }
  const specs = await loadStandingSpecs(o.spec);
  if (!specs) return 2;
  const usage = kubernetesUsage(o);
  if (usage) {
    process.stderr.write(`tapwire agent: ${usage}\n`);
    return 2;
  }
  const kubernetes = o.kubernetes || o.kubeconfig !== undefined;
  const interfaces = o.interface.length ? o.interface : [...CLI_DEFAULTS.captureInterfaces];
  const source = (o.source ?? CLI_DEFAULTS.source) as SourceChoice;
  if (!SOURCE_CHOICES.includes(source)) {
    process.stderr.write(`tapwire agent: --source "${o.source}": expected one of ${SOURCE_CHOICES.join(', ')}\n`);
    return 2;
  }
  let ringBytes: number | undefined;
  try {
    ringBytes = o.ringSize === undefined ? undefined : parseRingSize(o.ringSize);
  } catch (e) {
    process.stderr.write(`tapwire agent: ${(e as Error).message}\n`);
    return 2;
  }
  // --source ebpf and both insist: what is missing is said before anything is opened.
  if (source === 'ebpf' || source === 'both') {
    const missing = sourceUnavailable(source, interfaces);
    if (missing) {
      process.stderr.write(`tapwire agent: --source ${source}: ${missing}\n`);
      return 2;
    }
  }
  // --tls uprobe insists: what is missing is said before anything is opened.
  if (o.tls === 'uprobe') {
    const missing = tlsProbesUnavailable();
    if (missing.length) {
      process.stderr.write(`tapwire agent: --tls uprobe: ${missing.join('; ')}\n`);
      return 2;
    }
  }
  let agent: Agent;
  try {
    agent = await Agent.start({
      specs,
      specWindowSec,
      interfaces,
      filter: o.filter,
      source, ringBytes,
      onCapture: (line) => process.stderr.write(`tapwire agent: ${line}\n`),
      listen: parseListen(o.listen),
      dataDir: o.dataDir ?? join(process.env.XDG_DATA_HOME || join(process.env.HOME || homedir(), '.local', 'share'), 'tapwire'),
      retention: parseRetention(o.retention),
      identities: o.identities,
      bodyLimit: o.bodyLimit,
      token: o.token ?? (process.env.TAPWIRE_TOKEN || undefined),
      redactKey: loadRedactKey().key,
      onIdentities: (err) => process.stderr.write(err ? `tapwire agent: ${err.message}; keeping the previous identities\n` : `tapwire agent: identities reloaded from ${o.identities}\n`),
      kubernetes: kubernetes ? { kubeconfig: o.kubeconfig, node: o.node, clusterEvents: o.clusterEvents } : undefined,
      onKubernetesError: (m) => process.stderr.write(`tapwire agent: kubernetes: ${m} (retrying)\n`),
      tls: o.tls,
      onTls: (line) => process.stderr.write(`tapwire agent: ${line}\n`),
      processes: o.processes !== false,
      onProcesses: (line) => process.stderr.write(`tapwire agent: ${line}\n`),
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = e instanceof CaptureOpenError ? err.message
      : err.code === 'EADDRINUSE' ? `--listen ${o.listen}: address already in use`
        : err.code === 'EACCES' ? `--listen ${o.listen}: permission denied` : err.message;
    process.stderr.write(`tapwire agent: ${why}\n`);
    return 2;
  }
  const r = agent.store.recovery;
  const k = agent.kubernetes;
  if (k) {
    const s = k.stats().identity;
    process.stderr.write(`tapwire agent: kubernetes: node ${k.node}: ${plural(s.pods, 'pod')}, ${plural(s.services, 'service')}, ${plural(s.slices, 'endpointslice')}, ${plural(s.nodes, 'node')}${o.clusterEvents ? '; watching cluster events' : ''}\n`);
  }
  process.stderr.write(`tapwire agent: capturing on ${interfaces.join(', ')} with ${agent.recorder.capture.kind === 'ebpf' ? 'eBPF (TC)' : agent.recorder.capture.kind === 'both' ? 'libpcap and eBPF (TC) side by side' : 'libpcap'}; API on ${agent.address}`
    + `; ${plural(r.flows, 'flow')} recovered from ${plural(r.segments, 'segment')}${r.torn.length ? `, ${r.torn.length} torn segment(s): ${r.torn.map((t) => `${t.file} at byte ${t.offset} (${t.reason})`).join('; ')}` : ''}`
    + `${specs.length ? `; ${specs.length} standing spec${specs.length > 1 ? 's' : ''} judged over the last ${o.specWindow}, at /api/verdicts` : ''}\n`);
  // Said once: the last writer of this data dir did not stop cleanly (a crash, a kill, a reboot).
  if (r.staleLock) process.stderr.write(`tapwire agent: ${r.staleLock}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('tapwire agent: stopping\n');
  await agent.stop();
  return 0;
}
