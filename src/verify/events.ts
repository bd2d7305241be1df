import type { ClusterEvent, UsageAnswer } from '../enrich/index.js';
import type { FlowRecord, Peer } from '../flows/index.js';
import { plural } from '../common/index.js';
import type { ServiceNames } from './services.js';
import type { Finding } from './types.js';

/**
 * What a verdict is told about its window besides the flows (issue 16): the cluster events that
 * touched the pods involved, their resource use, and whether the flows came back whole. "The pods
 * involved" are the peers the flows name with a namespace (`name` is the pod, `workload` its top
 * owner), on either side.
 */

/** A cluster event as a verdict lists it: where it fell in the window, and one line for people. */
export interface VerdictEvent extends ClusterEvent {
  /** Seconds from the window's start to the event (negative: before it), one decimal. */
  at: number;
  /** "payment-7f9c restarted (OOMKilled, exit 137) 2.1 s into the run". */
  text: string;
}

/** The hub's `partial` (service/query.ts FlowPage.partial): agents that did not answer. */
export interface PartialData {
  /** `node`, where the hub knows which node the agent captures on. */
  missing: { agent: string; error: string; node?: string }[];
}

/** The window a verdict judges, and what its source said about it beyond the flows. */
export interface WindowContext {
  /** Start, epoch seconds: a run's snapshot, a verify's `since`; else the first flow's start. */
  since?: number;
  until?: number;
  /** How the text names the window: "2.1 s into the run", "… into the window". */
  label?: 'run' | 'window';
  /** The source's cluster events of the window; undefined where the source has none (a capture file). */
  events?: readonly ClusterEvent[];
  /** Why the events may be missing or incomplete (an agent without --kubernetes). */
  eventsNote?: string;
  /** The pods' CPU and memory, or why not; undefined where nothing was asked (a capture file). */
  usage?: UsageAnswer;
  /** The flows came back without some agents' (the hub). */
  partial?: PartialData;
}

/** Events listed in one verdict; the rest are counted in `eventsOmitted`. */
export const MAX_VERDICT_EVENTS = 20;
/**
 * Kubernetes stamps events and container exits in whole seconds (RFC 3339 without a fraction:
 * Event lastTimestamp, ContainerStateTerminated finishedAt), so an event stamped t happened in
 * [t, t + 1): that second is what overlaps a finding's flows.
 */
const EVENT_RESOLUTION_SEC = 1;

/** The earliest start of `flows` (a loop: a window holds up to 200 000, too many to spread into Math.min). */
export function firstStart(flows: readonly FlowRecord[]): number | undefined {
  let t: number | undefined;
  for (const f of flows) if (t === undefined || f.start < t) t = f.start;
  return t;
}

/** The latest end of `flows`. */
export function lastEnd(flows: readonly FlowRecord[]): number | undefined {
  let t: number | undefined;
  for (const f of flows) if (t === undefined || f.end > t) t = f.end;
  return t;
}

/** "namespace/name" of every pod a flow names, either side. */
export function podsInvolved(flows: readonly FlowRecord[]): Set<string> {
  const out = new Set<string>();
  for (const f of flows) for (const p of [f.src, f.dst]) { const k = podKey(p); if (k) out.add(k); }
  return out;
}

function podKey(p: Peer): string | undefined {
  return p.name !== undefined && p.namespace !== undefined ? `${p.namespace}/${p.name}` : undefined;
}

function workloadKey(p: Peer): string | undefined {
  return p.workload !== undefined && p.namespace !== undefined ? `${p.namespace}/${p.workload}` : undefined;
}

/** Does the event touch a pod of `pods`, or (a rollout, with no pod) a workload of `workloads`? */
function touches(e: ClusterEvent, pods: ReadonlySet<string>, workloads: ReadonlySet<string>): boolean {
  if (e.pod !== undefined) return pods.has(`${e.namespace}/${e.pod}`);
  const w = e.workload ?? e.object?.split('/')[1];
  return w !== undefined && workloads.has(`${e.namespace}/${w}`);
}

/**
 * The events that touched the flows' pods, oldest first, as a verdict lists them (at most
 * MAX_VERDICT_EVENTS; `omitted` counts the rest).
 */
export function verdictEvents(events: readonly ClusterEvent[], flows: readonly FlowRecord[], w: WindowContext): { events: VerdictEvent[]; omitted: number } {
  const pods = podsInvolved(flows);
  const workloads = new Set<string>();
  for (const f of flows) for (const p of [f.src, f.dst]) { const k = workloadKey(p); if (k) workloads.add(k); }
  const since = w.since ?? firstStart(flows);
  const hit = events.filter((e) => touches(e, pods, workloads)).sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : 1));
  const listed = hit.slice(0, MAX_VERDICT_EVENTS).map((e): VerdictEvent => {
    const at = since === undefined ? 0 : Math.round((e.time - since) * 10) / 10;
    return { ...copied(e), at, text: `${happened(e)} ${when(e, at, since, w)}` };
  });
  return { events: listed, omitted: hit.length - listed.length };
}

/**
 * The fields of an event a verdict carries: ClusterEvent's, plus `probe` (which probe failed) that
 * the cluster events code adds. Listed, so the verdict's JSON stays within its schema (the MCP
 * output schema is closed) when events gain fields.
 */
const EVENT_FIELDS = ['id', 'time', 'kind', 'namespace', 'pod', 'workload', 'node', 'container', 'object', 'reason', 'message', 'exitCode', 'count', 'source', 'probe'] as const;

function copied(e: ClusterEvent): ClusterEvent {
  const from = e as unknown as Record<string, unknown>, out: Record<string, unknown> = {};
  for (const k of EVENT_FIELDS) if (from[k] !== undefined) out[k] = from[k];
  return out as unknown as ClusterEvent;
}

/** What happened, in words: "payment-7f9c restarted (OOMKilled, exit 137)". */
export function happened(e: ClusterEvent): string {
  const who = e.pod ?? e.object ?? e.workload ?? e.namespace;
  const exit = e.exitCode !== undefined ? `, exit ${e.exitCode}` : '';
  const said = clip(e.message ?? e.reason);
  const times = e.count !== undefined && e.count > 1 ? ` (${e.count} times)` : '';
  switch (e.kind) {
    case 'restart':
    case 'oom-killed': return `${who} restarted (${e.kind === 'oom-killed' && e.reason !== 'OOMKilled' ? 'OOMKilled' : e.reason}${exit})${times}`;
    case 'evicted': return `${who} was evicted (${said})`;
    case 'probe-failed': return `${who} failed a probe (${said})${times}`;
    case 'image-pull': return `${who} could not pull its image (${e.reason})${times}`;
    case 'rollout': return `${who} rolled out (${said})`;
    case 'pod-started': return `${who} started`;
    case 'pod-deleted': return `${who} was deleted`;
    case 'other': return `${who}: ${e.reason}${e.message ? ` (${said})` : ''}${times}`;
  }
}

/** "2.1 s into the run", "0.4 s before the run", "1.0 s after the run". */
function when(e: ClusterEvent, at: number, since: number | undefined, w: WindowContext): string {
  const label = w.label ?? 'window';
  if (since === undefined) return `during the ${label}`;
  if (at < 0) return `${(-at).toFixed(1)} s before the ${label}`;
  if (w.until !== undefined && e.time > w.until) return `${(e.time - w.until).toFixed(1)} s after the ${label}`;
  return `${at.toFixed(1)} s into the ${label}`;
}

/**
 * Marks each finding whose evidence overlaps an event: the event touched a pod of the finding's
 * flows, within their time span (start of the first to end of the last, the event's second
 * included). Sets `finding.events` to their ids. Call before the evidence is capped, so every
 * piece of evidence counts.
 */
export function markFindings(findings: Finding[], flows: readonly FlowRecord[], events: readonly VerdictEvent[]): void {
  if (events.length === 0) return;
  const byId = new Map(flows.map((f) => [f.id, f]));
  for (const f of findings) {
    const fs = f.evidence.map((e) => byId.get(e.flowId)).filter((x): x is FlowRecord => x !== undefined);
    if (fs.length === 0) continue;
    let start = Infinity, end = -Infinity;
    for (const x of fs) { start = Math.min(start, x.start); end = Math.max(end, x.end); }
    const pods = podsInvolved(fs);
    const workloads = new Set(fs.flatMap((x) => [workloadKey(x.src), workloadKey(x.dst)]).filter((k): k is string => k !== undefined));
    const ids = events.filter((e) => touches(e, pods, workloads) && e.time <= end && e.time + EVENT_RESOLUTION_SEC > start).map((e) => e.id);
    if (ids.length) f.events = ids;
  }
}

/** The clause a finding's text carries: "while payment-7f9c restarted (OOMKilled, exit 137) 2.1 s into the run". */
export function findingEventsClause(f: Finding, events: readonly VerdictEvent[] | undefined): string | undefined {
  if (!f.events?.length || !events) return undefined;
  const texts = f.events.map((id) => events.find((e) => e.id === id)?.text).filter((t): t is string => t !== undefined);
  return texts.length ? `while ${texts.join('; and ')}` : undefined;
}

/**
 * Why a verdict over partial flows cannot pass, or undefined when the flows it needs are all
 * there. An agent captures its node's pods, so what a missing agent takes away is the traffic
 * between pods that are all on its node; a flow with one end elsewhere was still seen there. The
 * flows a verdict needs are known to be there only when (1) the hub named the node of every
 * missing agent, (2) the spec names the services it is about, (3) flows of those services were
 * seen, and (4) every end of them that is one of those services is on a known node that is not a
 * missing agent's. Otherwise tapwire cannot tell what a missing agent would have seen, and says so.
 * (A pod of a named service that only ever talked on the missing node, and so was never seen, is
 * the case this cannot rule out; the hub naming the missing nodes' pods would.)
 */
export function partialReason(p: PartialData, flows: readonly FlowRecord[], named: readonly string[] | undefined, names: ServiceNames): string | undefined {
  if (p.missing.length === 0) return undefined;
  const agents = p.missing.map((m) => `${m.agent}${m.node ? ` (node ${m.node})` : ''}: ${m.error}`).join('; ');
  const lead = `partial data: ${plural(p.missing.length, 'agent')} did not answer (${agents})`;
  const nodes = p.missing.map((m) => m.node);
  if (!named?.length) return `${lead}; no spec names the services it is about, so every flow is needed and some may be missing`;
  if (nodes.some((n) => n === undefined)) return `${lead}, and which nodes they capture is not known, so flows may be missing`;
  const isNamed = (peer: Peer) => named.some((n) => names.matches(peer, n) || peer.service === n);
  const ends = flows.flatMap((f) => [f.src, f.dst].filter(isNamed).map((peer) => ({ f, peer })));
  if (ends.length === 0) return `${lead}; no flow of ${named.join(', ')} was seen, so they may be on the missing nodes`;
  const off = ends.find(({ peer }) => peer.node === undefined || nodes.includes(peer.node));
  if (off) {
    const where = off.peer.node === undefined ? 'on an unknown node' : `on node ${off.peer.node}, whose agent is missing`;
    return `${lead}; ${names.name(off.peer)} (flow ${off.f.id}) is ${where}, so its flows there may be missing`;
  }
  return undefined;
}

/** One line of usage for people: "payment-7f9c CPU max 1000m (mean 417m), memory max 1000 MiB (mean 419 MiB), 3 samples". */
export function usageLines(u: UsageAnswer): string[] {
  if ('unavailable' in u) return [`resource use: ${u.unavailable}`];
  const lines = Object.entries(u.pods).map(([pod, x]) => `${pod}: CPU max ${x.cpu.max}m (mean ${x.cpu.mean}m), memory max ${mib(x.memory.max)} (mean ${mib(x.memory.mean)}), ${plural(x.samples, 'sample')}`);
  if (u.unsampled?.length) lines.push(`no sample of ${u.unsampled.join(', ')} in the window (one every ${u.interval} s)`);
  if (u.skipped) lines.push(`${plural(u.skipped, 'sample')} skipped (a quantity or time that could not be read)`);
  if (u.note) lines.push(u.note);
  return lines.map((l) => `resource use: ${l}`);
}

function mib(b: number): string {
  return `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 1 : 0)} MiB`;
}

function clip(s: string, n = 160): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
