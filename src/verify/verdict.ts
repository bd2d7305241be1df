import { countsText, endpoint, notDecodedParts, plural } from '../common/index.js';
import type { FlowRecord } from '../flows/index.js';
import { ENCRYPTED_REASON, type CoverageServer, type DecodeCoverage } from '../pipeline/index.js';
import { DEFAULT_MAX_EVIDENCE, DETECTOR_KINDS, type DetectorConfig } from './config.js';
import { detectContext, type DetectContext } from './context.js';
import { runDetectors } from './detectors.js';
import { findingEventsClause, markFindings, partialReason, usageLines, verdictEvents, type PartialData, type VerdictEvent, type WindowContext } from './events.js';
import type { UsageAnswer } from '../enrich/index.js';
import { ServiceNames } from './services.js';
import { hasTls, namedNotDecrypted, tlsConnections, tlsCoverageLines, tlsCoverageOf, type TlsCoverage } from './tls-coverage.js';
import type { Finding } from './types.js';

export type VerdictName = 'pass' | 'fail' | 'inconclusive';

/** The JSON contract of `tapwire verify --format json` (issue 5). */
export interface Verdict {
  verdict: VerdictName;
  findings: Finding[];
  /** Why the verdict is inconclusive, and how whole the evidence was. */
  reason?: string;
  /**
   * One line saying what was judged: flows by protocol, inbound requests and the downstream calls
   * attributed to them, detectors and spec checks run, connections not decoded. verify() always
   * sets it (a pass says what it passed), and so does unjudged() for a verdict that judged nothing.
   */
  summary: string;
  coverage: {
    flows: number;
    incomplete: number;
    byReason: Record<string, number>;
    /**
     * What the flows' source saw but did not decode (issue 12). Absent when the source cannot say:
     * flows read from an agent's API.
     */
    undecoded?: UndecodedCoverage;
    /**
     * TLS coverage of the flows judged (issue 17, src/verify/tls-coverage.ts): TLS connections on the
     * wire, decrypted, and not decrypted with why; plaintext flows. Absent when the flows hold no TLS.
     */
    tls?: TlsCoverage;
  };
  /**
   * The cluster events that touched the pods of the flows during the window (issue 16), oldest
   * first, at most MAX_VERDICT_EVENTS. Absent where the source keeps no events (a capture file).
   */
  events?: VerdictEvent[];
  /** Events that touched the pods but were not listed (past MAX_VERDICT_EVENTS). */
  eventsOmitted?: number;
  /** Why the events may be missing or incomplete, as the source said ("this agent does not watch Kubernetes"). */
  eventsNote?: string;
  /** The CPU and memory of the pods during the window, or `{ unavailable: why }`; absent where not asked. */
  usage?: UsageAnswer;
  /** The flows came back without some agents' (the hub): which, and why. */
  partial?: PartialData;
}

/** `coverage.undecoded` of a verdict: connections and UDP flows seen but not decoded, and their servers. */
export interface UndecodedCoverage {
  /** TCP connections that carried payload no decoder took. */
  connections: number;
  /** UDP flows seen (no protocol over UDP is decoded yet). */
  udpFlows: number;
  /** TCP connections by why: tls, ssh, mysql, redis, kafka, amqp, dns (told by their first bytes), gap (no byte captured), unknown. */
  byReason: Record<string, number>;
  /** UDP flows by what their first datagram is: dns, quic, unknown. */
  udpByReason: Record<string, number>;
  /** Their servers, most connections first, at most MAX_UNDECODED_LISTED. */
  servers: UndecodedServerEntry[];
  /** Connections and flows to servers not listed. */
  serversOmitted: number;
}

export interface UndecodedServerEntry {
  /** "ip:port" ("[v6]:port"). */
  server: string;
  transport: 'tcp' | 'udp';
  reason: string;
  /** Connections (UDP: flows). */
  connections: number;
  /** The service's name, when the spec's `services:` names this address. */
  service?: string;
}

/** Servers of undecoded traffic listed in a verdict. */
export const MAX_UNDECODED_LISTED = 20;

export interface VerifyOptions {
  /** Thresholds, severities and switches per detector (a spec's `detectors:`). */
  detectors?: DetectorConfig;
  names?: ServiceNames;
  /** Evidence entries listed per finding; the total is in details.evidenceTotal. */
  maxEvidence?: number;
  /** A spec's checks: their findings, reasons they could not judge, and how many checks ran. */
  checks?: (flows: readonly FlowRecord[], ctx: DetectContext) => { findings: Finding[]; inconclusive: string[]; ran?: number };
  /** What the flows' source saw but did not decode (undefined: the source cannot say). */
  undecoded?: DecodeCoverage;
  /**
   * The services a spec is about (its `services:` names, the services its checks select): their
   * traffic not decoded makes a pass inconclusive.
   */
  named?: readonly string[];
  /** The window judged and what the source said about it: cluster events, resource use, missing agents. */
  window?: WindowContext;
}

/**
 * Runs the built-in detectors and a spec's checks. Fail when any finding is an error, even if
 * evidence is incomplete; inconclusive when there is no error but evidence is missing (gaps,
 * unmatched halves, statements prepared before the capture, a check with nothing to judge,
 * traffic to a service the spec names that was not decoded) or there are no flows at all; pass
 * otherwise. Every verdict says in `summary` what was judged.
 */
export function verify(flows: readonly FlowRecord[], opts: VerifyOptions = {}): Verdict {
  const names = opts.names ?? new ServiceNames();
  const ctx = detectContext(flows, names);
  const checked = opts.checks?.(flows, ctx) ?? { findings: [], inconclusive: [] };
  const findings = [...runDetectors(flows, ctx, opts.detectors), ...checked.findings]
    .sort((a, b) => rank(a.severity) - rank(b.severity) || (a.evidence[0]?.time ?? 0) - (b.evidence[0]?.time ?? 0));
  const around = windowFields(flows, findings, opts.window);
  for (const f of findings) capEvidence(f, opts.maxEvidence ?? DEFAULT_MAX_EVIDENCE);
  const byReason: Record<string, number> = {};
  let incomplete = 0;
  for (const f of flows) {
    if (!f.incomplete) continue;
    incomplete++;
    const k = f.incompleteReason ?? 'unknown';
    byReason[k] = (byReason[k] ?? 0) + 1;
  }
  const undecoded = opts.undecoded && undecodedCoverage(opts.undecoded, names);
  // A source that can say what it did not decode is a packet capture (a file, a local capture): no uprobes.
  const tlsSource = opts.undecoded ? 'capture-file' : 'unknown';
  const tls = tlsCoverageOf(flows, { source: tlsSource });
  const coverage: Verdict['coverage'] = { flows: flows.length, incomplete, byReason, ...(undecoded ? { undecoded } : {}), ...(hasTls(tls) ? { tls } : {}) };
  const detectors = DETECTOR_KINDS.filter((k) => opts.detectors?.[k]?.enabled !== false).length;
  const summary = summaryLine(flows, ctx, detectors, opts.checks ? checked.ran ?? 0 : undefined, opts.undecoded);
  // An error seen is an error, whatever else is missing: a fail stands over partial data too.
  if (findings.some((f) => f.severity === 'error')) return { verdict: 'fail', findings, summary, coverage, ...around };
  const reasons: string[] = [];
  if (flows.length === 0) reasons.push('no flows to verify');
  else if (incomplete > 0) reasons.push(`${incomplete} of ${plural(flows.length, 'flow')} ${incomplete === 1 ? 'has' : 'have'} incomplete evidence (${Object.entries(byReason).map(([k, n]) => `${k} ×${n}`).join(', ')})`);
  reasons.push(...checked.inconclusive);
  if (opts.named?.length) {
    // TLS to a named service that was not decrypted, with why; a capture's encrypted servers the
    // TLS records explain are said there, not twice.
    const notRead = tls.notDecrypted.connections ? namedNotDecrypted(tlsConnections(flows, tlsSource).wire, opts.named, names) : undefined;
    const told = new Set(notRead?.peers.map((p) => endpoint(p)));
    const unseen = opts.undecoded && namedUndecoded(opts.undecoded, opts.named, names, (s) => s.reason === ENCRYPTED_REASON && told.has(endpoint(s)));
    if (unseen) reasons.push(unseen);
    if (notRead) reasons.push(notRead.text);
  }
  const partial = opts.window?.partial && partialReason(opts.window.partial, flows, opts.named, names);
  if (partial) reasons.push(partial);
  if (reasons.length > 0) return { verdict: 'inconclusive', findings, summary, coverage, reason: reasons.join('; '), ...around };
  return { verdict: 'pass', findings, summary, coverage, ...around };
}

/**
 * The verdict's fields from its window (issue 16): the events that touched its pods (and each
 * finding they overlap marked), the events note, resource use, missing agents. Nothing where the
 * source said nothing, so a capture file's verdict is as it was.
 */
function windowFields(flows: readonly FlowRecord[], findings: Finding[], w: WindowContext | undefined): Pick<Verdict, 'events' | 'eventsOmitted' | 'eventsNote' | 'usage' | 'partial'> {
  if (!w) return {};
  const listed = w.events && verdictEvents(w.events, flows, w);
  if (listed) markFindings(findings, flows, listed.events);
  return {
    ...(listed ? { events: listed.events } : {}), ...(listed?.omitted ? { eventsOmitted: listed.omitted } : {}),
    ...(w.eventsNote ? { eventsNote: w.eventsNote } : {}), ...(w.usage ? { usage: w.usage } : {}),
    ...(w.partial?.missing.length ? { partial: w.partial } : {}),
  };
}

/**
 * An inconclusive verdict on flows that were not judged (a cancelled run, a snapshot that could
 * not be read, a verification that failed): the same shape as verify()'s, summary included.
 */
export function unjudged(flows: number, reason: string, undecoded?: DecodeCoverage): Verdict {
  const u = undecoded && undecodedCoverage(undecoded, new ServiceNames());
  return {
    verdict: 'inconclusive', findings: [], reason,
    summary: `nothing was judged (${plural(flows, 'flow')} read)${undecoded ? notDecodedText(undecoded, '; ') : ''}`,
    coverage: { flows, incomplete: 0, byReason: {}, ...(u ? { undecoded: u } : {}) },
  };
}

/**
 * `judged 29 flows (http 17, postgres 12); 5 inbound requests made 21 downstream calls; 11
 * detectors and 3 spec checks ran; 2 connections not decoded (tls 2)`. `checks` is undefined
 * without a spec.
 */
function summaryLine(flows: readonly FlowRecord[], ctx: DetectContext, detectors: number, checks: number | undefined, undecoded?: DecodeCoverage): string {
  const byProtocol: Record<string, number> = {};
  for (const f of flows) byProtocol[f.protocol] = (byProtocol[f.protocol] ?? 0) + 1;
  const parts = [`judged ${plural(flows.length, 'flow')}${flows.length ? ` (${countsText(byProtocol)})` : ''}`];
  const calls = ctx.parents.size;
  const inbound = new Set([...ctx.parents.values()].map((a) => a.parent)).size;
  parts.push(calls > 0 ? `${plural(inbound, 'inbound request')} made ${plural(calls, 'downstream call')}` : 'no downstream calls attributed to inbound requests');
  parts.push(checks === undefined ? `${plural(detectors, 'detector')} ran (no spec)` : `${plural(detectors, 'detector')} and ${plural(checks, 'spec check')} ran`);
  return parts.join('; ') + (undecoded ? notDecodedText(undecoded, '; ') : '');
}

/** "; 2 connections not decoded (tls 2); 3 UDP flows not decoded (dns 3)", or '' when everything was decoded. */
function notDecodedText(u: DecodeCoverage, lead: string): string {
  const parts = notDecodedParts(u);
  return parts.length ? lead + parts.join('; ') : '';
}

/** A source's decode coverage as the verdict lists it: servers by "ip:port", named where the spec names them, bounded. */
export function undecodedCoverage(c: DecodeCoverage, names: ServiceNames): UndecodedCoverage {
  const servers = c.servers.slice(0, MAX_UNDECODED_LISTED).map((s): UndecodedServerEntry => {
    const server = endpoint(s);
    const name = names.name({ ip: s.ip, port: s.port });
    return { server, transport: s.transport, reason: s.reason, connections: s.connections, ...(name !== server ? { service: name } : {}) };
  });
  const omitted = c.servers.slice(MAX_UNDECODED_LISTED).reduce((n, s) => n + s.connections, 0);
  return {
    connections: c.connections, udpFlows: c.udpFlows, byReason: { ...c.byReason }, udpByReason: { ...c.udpByReason },
    servers, serversOmitted: c.serversOmitted + omitted,
  };
}

/**
 * Why a pass cannot stand: traffic to services the spec names was seen but not decoded, so its
 * checks and the detectors could not see it. Undefined when there is none.
 */
function namedUndecoded(c: DecodeCoverage, named: readonly string[], names: ServiceNames, told?: (s: CoverageServer) => boolean): string | undefined {
  const hits = c.servers.filter((s) => named.some((n) => names.matches({ ip: s.ip, port: s.port }, n)) && !told?.(s));
  if (hits.length === 0) return undefined;
  const tcp = hits.filter((s) => s.transport === 'tcp').reduce((n, s) => n + s.connections, 0);
  const udp = hits.filter((s) => s.transport === 'udp').reduce((n, s) => n + s.connections, 0);
  const what = [tcp ? plural(tcp, 'connection') : '', udp ? plural(udp, 'UDP flow') : ''].filter(Boolean).join(' and ');
  const listed = hits.slice(0, 3).map((s) => {
    const server = endpoint(s);
    const name = names.name({ ip: s.ip, port: s.port });
    return `${name !== server ? `${name} ${server}` : server} (${s.reason} ×${s.connections})`;
  });
  return `${what} to services the spec names ${tcp + udp === 1 ? 'was' : 'were'} not decoded, so not judged: ${listed.join(', ')}${hits.length > 3 ? `, and ${plural(hits.length - 3, 'more server')}` : ''}`;
}

/** Evidence lists are capped per finding, the total stated; a finding itself is never dropped. */
function capEvidence(f: Finding, max: number): void {
  if (f.details.evidenceTotal === undefined) f.details.evidenceTotal = f.evidence.length;
  if (f.evidence.length > max) f.evidence = f.evidence.slice(0, max);
}

function rank(s: Finding['severity']): number {
  return s === 'error' ? 0 : s === 'warning' ? 1 : 2;
}

/**
 * Human text: the verdict, what was judged, the servers of traffic not decoded, then each finding
 * with its evidence (capped, total stated).
 */
export function verdictText(v: Verdict, maxEvidence = 5): string {
  const lines = [`verdict: ${v.verdict.toUpperCase()}${v.reason ? ` (${v.reason})` : ''}`];
  if (v.summary) lines.push(`  ${v.summary}`);
  const u = v.coverage.undecoded;
  if (u && u.servers.length > 0) {
    const shown = u.servers.slice(0, 5).map((s) => `${s.service ? `${s.service} ` : ''}${s.server}${s.transport === 'udp' ? '/udp' : ''} (${s.reason} ×${s.connections})`);
    const rest = u.servers.length - shown.length;
    lines.push(`  not decoded: ${shown.join(', ')}${rest > 0 || u.serversOmitted > 0 ? ', …' : ''}`);
  }
  if (v.coverage.tls) lines.push(...tlsCoverageLines(v.coverage.tls).slice(0, 4).map((l) => `  ${l}`));
  lines.push(...windowLines(v).map((l) => `  ${l}`));
  for (const f of v.findings) {
    lines.push(`  ${f.severity.toUpperCase().padEnd(7)} ${f.kind}: ${f.summary}`);
    const during = findingEventsClause(f, v.events);
    if (during) lines.push(`           ${during}`);
    for (const e of f.evidence.slice(0, maxEvidence)) {
      lines.push(`           flow ${e.flowId}${e.frames ? ` frames ${e.frames[0]}-${e.frames[1]}` : ''} at ${new Date(e.time * 1000).toISOString()}: ${e.summary}`);
    }
    const total = typeof f.details.evidenceTotal === 'number' ? f.details.evidenceTotal : f.evidence.length;
    if (total > maxEvidence) lines.push(`           … ${total - Math.min(maxEvidence, f.evidence.length)} more (${total} in all)`);
  }
  if (v.findings.length === 0) lines.push('  no findings');
  return `${lines.join('\n')}\n`;
}

/**
 * The lines a verdict's window adds to its text (CLI, run, MCP): each event that touched the pods,
 * the events note, resource use. None for a verdict without them.
 */
export function windowLines(v: Pick<Verdict, 'events' | 'eventsOmitted' | 'eventsNote' | 'usage'>): string[] {
  const lines: string[] = [];
  if (v.events) {
    if (v.events.length === 0 && !v.eventsNote) lines.push('cluster events: none touched the pods of these flows');
    for (const e of v.events) lines.push(`cluster event: ${e.text}`);
    if (v.eventsOmitted) lines.push(`cluster events: ${v.eventsOmitted} more not listed`);
  }
  if (v.eventsNote) lines.push(`cluster events: ${v.eventsNote}`);
  if (v.usage) lines.push(...usageLines(v.usage));
  return lines;
}
