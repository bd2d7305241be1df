import { plural } from '../common/index.js';
import type { FlowRecord, Peer } from '../flows/index.js';
import type { DecodeCoverage } from '../pipeline/index.js';
import type { PartialData } from './events.js';
import { hasTls, tlsCoverageLines, tlsCoverageOf, tlsServerText, type TlsCoverage, type TlsServerCoverage } from './tls-coverage.js';

/**
 * What is being captured (issue 16, `list_workloads` and `GET /api/workloads`): the workloads the
 * window's flows name (from their peers' identities), per node, with their flows by protocol and
 * how much of their traffic was decoded whole. Built from flows alone, so it answers the same over
 * any source: a capture file, an agent, the hub (whose pages merge the agents').
 *
 * A flow counts for each workload at either end (a call between two workloads counts for both);
 * "node" is the node the identity names for that end. Asking for a workload that no flow names
 * answers in words that it is not captured, and which are (kubeshark/kubeshark#1911: an empty list
 * for a workload that is not captured reads as "it had no traffic").
 */

export interface WorkloadEntry {
  namespace: string;
  /** The top owner (a Deployment …), else the pod's or the Service's name. */
  workload: string;
  /** Pod names seen, sorted; at most MAX_PODS_LISTED (podsOmitted counts the rest). */
  pods: string[];
  podsOmitted?: number;
  /** Services the flows named for it. */
  services?: string[];
  flows: number;
  byProtocol: Record<string, number>;
  /** Flows with incomplete evidence (a gap, an unmatched half), by reason. */
  incomplete: number;
  incompleteByReason: Record<string, number>;
  /** Connections to its addresses that no decoder took (tls, unknown …), where the source can say (a capture file). */
  undecoded?: Record<string, number>;
  /** Its TLS as a server (issue 17): on the wire, decrypted, not decrypted and why; absent when it had none. */
  tls?: TlsServerCoverage;
}

export interface NodeEntry {
  /** The node the identities name; "(node unknown)" when they name none. */
  node: string;
  flows: number;
  byProtocol: Record<string, number>;
  incomplete: number;
  workloads: WorkloadEntry[];
}

export interface WorkloadsAnswer {
  since?: number;
  until?: number;
  /** Flows read. */
  flows: number;
  nodes: NodeEntry[];
  /** Flows neither end of which has an identity (no identities file, no Kubernetes, or an address outside the cluster). */
  unidentified: { flows: number; addresses: number };
  /** Share of the flows read whose evidence is whole (0..1; 1 when there are none). */
  complete: number;
  /** What the source saw but did not decode, in all (a capture file); absent where it cannot say (an agent's API). */
  undecoded?: { connections: number; byReason: Record<string, number>; udpFlows: number };
  /** Set when the source cannot say: why `undecoded` is absent. */
  undecodedNote?: string;
  /** TLS coverage of the window (issue 17, src/verify/tls-coverage.ts); null when its flows hold no TLS (tlsNote says so). */
  tls: TlsCoverage | null;
  tlsNote: string;
  /** The workload asked for (`workload`, `namespace`) that no flow names. */
  notCaptured?: string;
  /** The hub answered without some agents. */
  partial?: PartialData;
  /** The window held more flows than were read. */
  truncated?: string;
}

export const NODE_UNKNOWN = '(node unknown)';
/** tlsNote when the window's flows hold no TLS connection, on the wire or decrypted. */
export const TLS_NOTE = 'no TLS connection in this window: none seen on the wire (a tls record) nor decrypted (a record marked tls.via "uprobe")';
/** tlsNote when they do. */
export const TLS_SEEN_NOTE = 'TLS connections on the wire, decrypted, and not decrypted with why; per workload in its tls';
const MAX_PODS_LISTED = 10;

/** The key of a peer's workload, or undefined for a peer without identity. */
function workloadOf(p: Peer): { namespace: string; workload: string } | undefined {
  const workload = p.workload ?? p.name ?? p.service;
  return workload === undefined ? undefined : { namespace: p.namespace ?? '', workload };
}

/**
 * The workloads of `flows`, per node, busiest first. `ask` narrows to one workload and/or
 * namespace (an answer that names none of them says so in `notCaptured`, with the full list kept).
 */
export function workloadsOf(flows: readonly FlowRecord[], o: {
  since?: number; until?: number; undecoded?: DecodeCoverage; tlsSource?: 'capture-file'; ask?: { workload?: string; namespace?: string }; partial?: PartialData; truncated?: string;
} = {}): WorkloadsAnswer {
  const entries = new Map<string, { node: string; e: WorkloadEntry; pods: Set<string>; services: Set<string> }>();
  const byIp = new Map<string, string>();
  let unidentified = 0, incomplete = 0;
  const bare = new Set<string>();
  for (const f of flows) {
    if (f.incomplete) incomplete++;
    let named = false;
    // One count per workload per flow, even when both ends are the same workload.
    const counted = new Set<string>();
    for (const p of [f.src, f.dst]) {
      const w = workloadOf(p);
      if (!w) { bare.add(p.ip); continue; }
      named = true;
      const node = p.node ?? NODE_UNKNOWN;
      const key = `${node}\0${w.namespace}\0${w.workload}`;
      byIp.set(p.ip, key);
      let x = entries.get(key);
      if (!x) entries.set(key, (x = { node, e: { ...w, pods: [], flows: 0, byProtocol: {}, incomplete: 0, incompleteByReason: {} }, pods: new Set(), services: new Set() }));
      if (p.name !== undefined) x.pods.add(p.name);
      if (p.service !== undefined) x.services.add(p.service);
      if (counted.has(key)) continue;
      counted.add(key);
      x.e.flows++;
      x.e.byProtocol[f.protocol] = (x.e.byProtocol[f.protocol] ?? 0) + 1;
      if (f.incomplete) {
        x.e.incomplete++;
        const r = f.incompleteReason ?? 'unknown';
        x.e.incompleteByReason[r] = (x.e.incompleteByReason[r] ?? 0) + 1;
      }
    }
    if (!named) unidentified++;
  }
  // Undecoded connections to an address a flow named belong to that workload.
  for (const s of o.undecoded?.servers ?? []) {
    const x = entries.get(byIp.get(s.ip) ?? '');
    if (!x) continue;
    x.e.undecoded ??= {};
    x.e.undecoded[s.reason] = (x.e.undecoded[s.reason] ?? 0) + s.connections;
  }
  const nodes = new Map<string, NodeEntry>();
  for (const { node, e, pods, services } of entries.values()) {
    const sorted = [...pods].sort();
    e.pods = sorted.slice(0, MAX_PODS_LISTED);
    if (sorted.length > MAX_PODS_LISTED) e.podsOmitted = sorted.length - MAX_PODS_LISTED;
    if (services.size) e.services = [...services].sort();
    let n = nodes.get(node);
    if (!n) nodes.set(node, (n = { node, flows: 0, byProtocol: {}, incomplete: 0, workloads: [] }));
    n.workloads.push(e);
  }
  // A node's totals count each flow once, however many of its workloads it touched.
  for (const f of flows) {
    const touched = new Set([f.src, f.dst].filter((p) => workloadOf(p)).map((p) => p.node ?? NODE_UNKNOWN));
    for (const node of touched) {
      const n = nodes.get(node)!;
      n.flows++;
      n.byProtocol[f.protocol] = (n.byProtocol[f.protocol] ?? 0) + 1;
      if (f.incomplete) n.incomplete++;
    }
  }
  // TLS per server workload: the coverage's servers keyed as "namespace/workload" (or the workload alone).
  const tls = tlsCoverageOf(flows, { since: o.since, until: o.until, source: o.tlsSource ?? (o.undecoded ? 'capture-file' : 'unknown') });
  const tlsBy = new Map(tls.servers.filter((s) => s.workload !== undefined).map((s) => [`${s.namespace ?? ''}\0${s.workload}`, s]));
  for (const { e } of entries.values()) {
    const t = tlsBy.get(`${e.namespace}\0${e.workload}`);
    if (t) e.tls = t;
  }
  const list = [...nodes.values()].sort((a, b) => b.flows - a.flows || a.node.localeCompare(b.node));
  for (const n of list) n.workloads.sort((a, b) => b.flows - a.flows || `${a.namespace}/${a.workload}`.localeCompare(`${b.namespace}/${b.workload}`));
  const ask = o.ask && (o.ask.workload !== undefined || o.ask.namespace !== undefined) ? o.ask : undefined;
  const matches = (e: WorkloadEntry) => (ask?.workload === undefined || e.workload === ask.workload || e.pods.includes(ask.workload))
    && (ask?.namespace === undefined || e.namespace === ask.namespace);
  const hit = ask ? list.map((n) => ({ ...n, workloads: n.workloads.filter(matches) })).filter((n) => n.workloads.length > 0) : list;
  const u = o.undecoded;
  return {
    ...(o.since !== undefined ? { since: o.since } : {}), ...(o.until !== undefined ? { until: o.until } : {}),
    flows: flows.length,
    nodes: ask && hit.length > 0 ? hit : list,
    unidentified: { flows: unidentified, addresses: [...bare].filter((ip) => !byIp.has(ip)).length },
    complete: flows.length ? Math.round(((flows.length - incomplete) / flows.length) * 1000) / 1000 : 1,
    ...(u ? { undecoded: { connections: u.connections, byReason: { ...u.byReason }, udpFlows: u.udpFlows } } : { undecodedNote: 'traffic not decoded is known only for a capture file: an agent\'s API does not say' }),
    ...(hasTls(tls) ? { tls, tlsNote: TLS_SEEN_NOTE } : { tls: null, tlsNote: TLS_NOTE }),
    ...(ask && hit.length === 0 ? { notCaptured: notCapturedText(ask, list, flows.length) } : {}),
    ...(o.partial?.missing.length ? { partial: o.partial } : {}),
    ...(o.truncated ? { truncated: o.truncated } : {}),
  };
}

/** "workload payments in namespace shop is not captured in this window: no flow names it. Captured: …". */
function notCapturedText(ask: { workload?: string; namespace?: string }, list: readonly NodeEntry[], flows: number): string {
  const what = [ask.workload !== undefined ? `workload "${ask.workload}"` : 'any workload', ask.namespace !== undefined ? `in namespace "${ask.namespace}"` : ''].filter(Boolean).join(' ');
  const captured = list.flatMap((n) => n.workloads.map((w) => `${w.namespace ? `${w.namespace}/` : ''}${w.workload} (${n.node})`));
  const shown = captured.slice(0, 20).join(', ') + (captured.length > 20 ? `, and ${captured.length - 20} more` : '');
  return `${what} is not captured in this window: none of its ${plural(flows, 'flow')} names it `
    + '(its node may have no agent, its traffic may not be decoded, e.g. TLS, or it made no calls in the window). '
    + (captured.length ? `Captured: ${shown}.` : 'No workload is captured: no flow carries an identity (is --kubernetes or --identities set?).');
}

/** The answer in lines for people (MCP text, CLI). */
export function workloadsText(a: WorkloadsAnswer): string {
  const lines: string[] = [];
  if (a.notCaptured) lines.push(a.notCaptured);
  if (a.partial) lines.push(`partial: ${a.partial.missing.map((m) => `${m.agent} did not answer (${m.error})`).join('; ')}`);
  lines.push(`${plural(a.flows, 'flow')} read, ${Math.round(a.complete * 1000) / 10}% with whole evidence; ${plural(a.nodes.length, 'node')}`
    + `${a.unidentified.flows ? `; ${plural(a.unidentified.flows, 'flow')} between addresses without identity (${plural(a.unidentified.addresses, 'address', 'addresses')})` : ''}`);
  for (const n of a.nodes) {
    lines.push(`node ${n.node}: ${plural(n.flows, 'flow')} (${counts(n.byProtocol)}), ${n.incomplete} incomplete`);
    for (const w of n.workloads) {
      const pods = w.pods.length ? `; pods ${w.pods.join(', ')}${w.podsOmitted ? ` and ${w.podsOmitted} more` : ''}` : '';
      const inc = w.incomplete ? ` (${counts(w.incompleteByReason)})` : '';
      const und = (w.undecoded ? `; not decoded: ${counts(w.undecoded)} connections` : '') + (w.tls ? `; TLS ${tlsServerText(w.tls).slice(w.tls.server.length + 2)}` : '');
      lines.push(`  ${w.namespace ? `${w.namespace}/` : ''}${w.workload}: ${plural(w.flows, 'flow')} (${counts(w.byProtocol)}), ${w.incomplete} incomplete${inc}${und}${pods}${w.services ? `; services ${w.services.join(', ')}` : ''}`);
    }
  }
  lines.push(a.undecoded ? `not decoded in all: ${plural(a.undecoded.connections, 'connection')}${a.undecoded.connections ? ` (${counts(a.undecoded.byReason)})` : ''}, ${plural(a.undecoded.udpFlows, 'UDP flow')}` : `not decoded: ${a.undecodedNote}`);
  lines.push(...(a.tls ? tlsCoverageLines(a.tls) : [`TLS: ${a.tlsNote}`]));
  if (a.truncated) lines.push(`truncated: ${a.truncated}`);
  return `${lines.join('\n')}\n`;
}

function counts(c: Record<string, number>): string {
  return Object.entries(c).map(([k, n]) => `${k} ${n}`).join(', ');
}
