import { httpHalves, recordModule, type FlowRecord } from '../flows/index.js';
import { cacheKeyStats, type CacheKeyStats } from './cache-hits.js';
import { endpointKey } from './endpoint.js';
import { attribute } from './group.js';
import { jsonBody, jsonShape } from './shape.js';
import { ServiceNames } from './services.js';
import type { Finding } from './types.js';
import { verify } from './verdict.js';
import { plural } from '../common/index.js';

/**
 * `tapwire diff`: what changed between two sets of flows (two captures now, live snapshots later).
 * Pure: the CLI reads the flows, this compares them. A regression is something a reviewer must
 * look at before merging (new error findings, more calls per request, new error statuses); the rest
 * is reported for context, because a latency wobble or a new endpoint is usually intended.
 */

/** One side of the comparison: a name to show (a file, a snapshot id) and its flows. */
export interface DiffSide {
  label: string;
  flows: readonly FlowRecord[];
}

export interface DiffOptions {
  /** Names servers in endpoint keys; unknown addresses stay "ip:port". */
  names: ServiceNames;
  /** More (or fewer) calls per request: the mean must move by more than this many calls… */
  callsMinDelta: number;
  /** …and by at least this fraction, so that noise in load tests is not a regression. */
  callsMinRatio: number;
  /** A latency percentile changed when it moved by at least this many ms and this fraction. */
  latencyMinMs: number;
  latencyMinRatio: number;
  /** A cache hit ratio changed when it moved by at least this much (0–1); a fall this large is a regression too… */
  cacheMinDelta: number;
  /** …when both sides read the pattern at least this many times (a handful of reads is not a ratio). */
  cacheMinReads: number;
}

export const DEFAULT_DIFF: DiffOptions = {
  names: new ServiceNames(), callsMinDelta: 0.5, callsMinRatio: 0.1, latencyMinMs: 1, latencyMinRatio: 0.2, cacheMinDelta: 0.1, cacheMinReads: 10,
};

export interface Latency { p50: number; p95: number; p99: number; max: number }

export interface EndpointStats {
  count: number;
  /** HTTP status, "grpc <n> <NAME>", SQLSTATE or "ok", "no-response": how many of each. */
  statuses: Record<string, number>;
  /** Over flows with a response; absent when none had one. */
  latencyMs?: Latency;
}

export type CallsChange = 'more' | 'fewer' | 'same' | 'added' | 'removed';

export interface CallsPerRequest {
  inbound: string;
  downstream: string;
  before: { mean: number; max: number };
  after: { mean: number; max: number };
  change: CallsChange;
}

export interface ShapeDiff {
  endpoint: string;
  added: string[];
  removed: string[];
  changed: { path: string; before: string; after: string }[];
}

/** One key pattern's cache reads on one side (src/verify/cache-hits.ts). */
export interface CacheSideStats {
  pattern: string;
  reads: number;
  hits: number;
  misses: number;
  sets: number;
  /** hits / reads; absent with no reads. */
  hitRatio?: number;
}

export type CacheChange = 'up' | 'down' | 'same' | 'added' | 'removed';

/**
 * A key pattern's hit ratio before and after. A pattern on one side is paired with one on the other
 * that extends it by more parts ("order:{n}" and "order:{n}:{n}"): the fix that takes a timestamp out
 * of the key changes the pattern, and the cache is still the same one.
 */
export interface CacheDiff {
  /** The pattern after (before, for one that is gone). */
  pattern: string;
  before?: CacheSideStats;
  after?: CacheSideStats;
  change: CacheChange;
}

export interface FlowDiff {
  regression: boolean;
  regressions: string[];
  /** Fewer calls per request, resolved error and warning findings, error statuses gone. */
  improvements: string[];
  before: { label: string; flows: number };
  after: { label: string; flows: number };
  endpoints: {
    added: ({ endpoint: string } & EndpointStats)[];
    removed: ({ endpoint: string } & EndpointStats)[];
    changed: { endpoint: string; before: EndpointStats; after: EndpointStats }[];
  };
  callsPerRequest: CallsPerRequest[];
  payloadShapes: ShapeDiff[];
  findings: { new: Finding[]; resolved: Finding[] };
  /** Redis cache hit ratio per key pattern, for patterns with reads; empty without Redis reads. */
  cache: CacheDiff[];
}

/** Everything diff needs from one side, computed once. */
interface Profile {
  endpoints: Map<string, { stats: EndpointStats; errors: Set<string>; shape: Map<string, Set<string>> }>;
  /** "inbound\u0000downstream" → calls per inbound request. */
  calls: Map<string, { inbound: string; downstream: string; mean: number; max: number }>;
  findings: Finding[];
  cache: CacheKeyStats[];
}

export function diffFlows(before: DiffSide, after: DiffSide, options: Partial<DiffOptions> = {}): FlowDiff {
  const o = { ...DEFAULT_DIFF, ...options };
  const b = profile(before.flows, o), a = profile(after.flows, o);
  const regressions: string[] = [], improvements: string[] = [];

  const findings = compareFindings(b.findings, a.findings);
  for (const f of findings.new) if (f.severity === 'error') regressions.push(`new error finding: ${f.kind}: ${f.summary}`);
  for (const f of findings.resolved) if (f.severity !== 'info') improvements.push(`resolved ${f.severity} finding: ${f.kind}: ${f.summary}`);

  const callsPerRequest = compareCalls(b, a, o);
  for (const c of callsPerRequest) {
    const line = `${c.inbound} → ${c.downstream}: mean ${c.before.mean.toFixed(2)} → ${c.after.mean.toFixed(2)} per request (max ${c.before.max} → ${c.after.max})`;
    if (c.change === 'more') regressions.push(`more calls per request: ${line}`);
    if (c.change === 'fewer') improvements.push(`fewer calls per request: ${line}`);
  }

  const cache = compareCache(b.cache, a.cache);
  for (const c of cache) {
    const line = cacheLine(c);
    const enough = (c.before?.reads ?? 0) >= o.cacheMinReads && (c.after?.reads ?? 0) >= o.cacheMinReads;
    const d = (c.after?.hitRatio ?? 0) - (c.before?.hitRatio ?? 0);
    if (c.before && c.after && Math.abs(d) >= o.cacheMinDelta) c.change = d > 0 ? 'up' : 'down';
    if (c.change === 'up' && (c.before?.reads ?? 0) > 0) improvements.push(`cache hit ratio up: ${line}`);
    if (c.change === 'down' && enough) regressions.push(`cache hit ratio down: ${line}`);
  }

  const endpoints: FlowDiff['endpoints'] = { added: [], removed: [], changed: [] };
  const payloadShapes: ShapeDiff[] = [];
  for (const key of [...new Set([...b.endpoints.keys(), ...a.endpoints.keys()])].sort()) {
    const eb = b.endpoints.get(key), ea = a.endpoints.get(key);
    // An endpoint that is new and fails is a new error status too: it did not fail before.
    for (const s of ea?.errors ?? []) if (!eb?.errors.has(s)) regressions.push(`new error status ${s} on ${key} (${ea!.stats.statuses[s]} of ${ea!.stats.count} calls)`);
    for (const s of eb?.errors ?? []) if (ea && !ea.errors.has(s)) improvements.push(`error status ${s} no longer seen on ${key}`);
    if (!eb) endpoints.added.push({ endpoint: key, ...ea!.stats });
    else if (!ea) endpoints.removed.push({ endpoint: key, ...eb.stats });
    else {
      if (statsChanged(eb.stats, ea.stats, o)) endpoints.changed.push({ endpoint: key, before: eb.stats, after: ea.stats });
      const shape = compareShapes(eb.shape, ea.shape);
      if (shape) payloadShapes.push({ endpoint: key, ...shape });
    }
  }

  return {
    regression: regressions.length > 0, regressions, improvements,
    before: { label: before.label, flows: before.flows.length }, after: { label: after.label, flows: after.flows.length },
    endpoints, callsPerRequest, payloadShapes, findings, cache,
  };
}

function profile(flows: readonly FlowRecord[], o: DiffOptions): Profile {
  const key = (r: FlowRecord) => endpointKey(r, o.names.name(r.dst));
  const endpoints: Profile['endpoints'] = new Map();
  const durations = new Map<string, number[]>();
  for (const r of flows) {
    const k = key(r);
    if (k === undefined) continue;
    let e = endpoints.get(k);
    if (!e) endpoints.set(k, (e = { stats: { count: 0, statuses: {} }, errors: new Set(), shape: new Map() }));
    const s = status(r);
    e.stats.count++;
    e.stats.statuses[s.label] = (e.stats.statuses[s.label] ?? 0) + 1;
    if (s.error) e.errors.add(s.label);
    if (r.response) (durations.get(k) ?? durations.set(k, []).get(k)!).push(r.durationMs);
    for (const doc of jsonPayloads(r)) addShape(e.shape, doc);
  }
  for (const [k, ms] of durations) endpoints.get(k)!.stats.latencyMs = latency(ms);

  // Calls per inbound request: the denominator is every request to the inbound endpoint, also the
  // ones that made no call, so a cache that hits shows as a mean below 1.
  const perParent = new Map<string, Map<FlowRecord, number>>();
  for (const [call, { parent }] of attribute(flows)) {
    const inbound = key(parent), downstream = key(call);
    if (inbound === undefined || downstream === undefined) continue;
    const pair = `${inbound}\u0000${downstream}`;
    const m = perParent.get(pair) ?? perParent.set(pair, new Map()).get(pair)!;
    m.set(parent, (m.get(parent) ?? 0) + 1);
  }
  const calls: Profile['calls'] = new Map();
  for (const [pair, m] of perParent) {
    const [inbound, downstream] = pair.split('\u0000') as [string, string];
    let total = 0, max = 0;
    // A loop, not Math.max(...): a long capture has more inbound requests than a call has arguments.
    for (const n of m.values()) {
      total += n;
      max = Math.max(max, n);
    }
    calls.set(pair, { inbound, downstream, mean: round(total / endpoints.get(inbound)!.stats.count, 3), max });
  }
  return { endpoints, calls, findings: verify(flows).findings, cache: cacheKeyStats(flows).filter((s) => s.reads > 0) };
}

/** The status label of a flow, and whether it is an error status (HTTP 5xx, gRPC non-OK, SQL error). */
function status(r: FlowRecord): { label: string; error: boolean } {
  return recordModule(r).outcome(r);
}

function latency(ms: number[]): Latency {
  ms.sort((x, y) => x - y);
  // Nearest rank: always a duration that was actually measured.
  const p = (q: number) => round(ms[Math.max(0, Math.ceil(q * ms.length) - 1)]!, 2);
  return { p50: p(0.5), p95: p(0.95), p99: p(0.99), max: round(ms[ms.length - 1]!, 2) };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function statsChanged(b: EndpointStats, a: EndpointStats, o: DiffOptions): boolean {
  if (b.count !== a.count || JSON.stringify(sortKeys(b.statuses)) !== JSON.stringify(sortKeys(a.statuses))) return true;
  if (!b.latencyMs || !a.latencyMs) return !b.latencyMs !== !a.latencyMs;
  return (['p50', 'p95', 'p99', 'max'] as const).some((q) => {
    const d = Math.abs(a.latencyMs![q] - b.latencyMs![q]);
    return d >= o.latencyMinMs && d >= o.latencyMinRatio * Math.max(a.latencyMs![q], b.latencyMs![q]);
  });
}

function sortKeys(r: Record<string, number>): [string, number][] {
  return Object.entries(r).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

function compareCalls(b: Profile, a: Profile, o: DiffOptions): CallsPerRequest[] {
  const out: CallsPerRequest[] = [];
  const none = { mean: 0, max: 0 };
  for (const pair of [...new Set([...b.calls.keys(), ...a.calls.keys()])].sort()) {
    const cb = b.calls.get(pair), ca = a.calls.get(pair);
    const { inbound, downstream } = (cb ?? ca)!;
    const before = cb ? { mean: cb.mean, max: cb.max } : none, after = ca ? { mean: ca.mean, max: ca.max } : none;
    const d = after.mean - before.mean;
    const moved = Math.abs(d) > o.callsMinDelta && Math.abs(d) >= o.callsMinRatio * before.mean;
    // A pair that exists on one side only is a new or dropped call (reported, not judged): a changed
    // query text alone makes one pair disappear and another appear.
    const change: CallsChange = !cb ? 'added' : !ca ? 'removed' : moved ? (d > 0 ? 'more' : 'fewer') : 'same';
    out.push({ inbound, downstream, before, after, change });
  }
  return out;
}

/**
 * Findings match across captures by kind, severity and summary with numbers folded: counts, delays
 * and ids change between runs, the problem does not. Addresses and status codes are kept, so the
 * same problem on another server, or another status, is another finding. Severity is kept, so a
 * warning that became an error is new.
 */
export function findingFingerprint(f: Finding): string {
  const summary = f.summary
    .replace(/(\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\b(?:HTTP|grpc-status|SQLSTATE) \w+)|\d+(?:\.\d+)?/g, (_, kept: string | undefined) => kept ?? '#')
    // "retries at #s, #s, #s": one more attempt is the same retry problem.
    .replace(/#( \w+)?(?:, #\1?)+/g, '#…$1');
  return `${f.kind} ${f.severity} ${summary}`;
}

function compareFindings(before: Finding[], after: Finding[]): FlowDiff['findings'] {
  const unmatched = (xs: Finding[], ys: Finding[]) => {
    const left = new Map<string, number>();
    for (const y of ys) left.set(findingFingerprint(y), (left.get(findingFingerprint(y)) ?? 0) + 1);
    return xs.filter((x) => {
      const fp = findingFingerprint(x), n = left.get(fp) ?? 0;
      if (n > 0) left.set(fp, n - 1);
      return n === 0;
    });
  };
  return { new: unmatched(after, before), resolved: unmatched(before, after) };
}

function compareCache(before: CacheKeyStats[], after: CacheKeyStats[]): CacheDiff[] {
  const side = (s: CacheKeyStats): CacheSideStats => ({
    pattern: s.pattern, reads: s.reads, hits: s.hits, misses: s.misses, sets: s.sets, ...(s.hitRatio !== undefined ? { hitRatio: s.hitRatio } : {}),
  });
  const a = new Map(after.map((s) => [s.pattern, s]));
  const out: CacheDiff[] = [];
  const paired = new Set<string>();
  for (const b of before) {
    // The same pattern, else one that extends the other at a part boundary, the most reads first.
    const match = a.get(b.pattern) ?? [...a.values()].filter((x) => !paired.has(x.pattern) && !before.some((y) => y.pattern === x.pattern)
      && (extendsPattern(x.pattern, b.pattern) || extendsPattern(b.pattern, x.pattern))).sort((x, y) => y.reads - x.reads)[0];
    if (match && !paired.has(match.pattern)) {
      paired.add(match.pattern);
      out.push({ pattern: match.pattern, before: side(b), after: side(match), change: 'same' });
    } else out.push({ pattern: b.pattern, before: side(b), change: 'removed' });
  }
  for (const x of after) if (!paired.has(x.pattern)) out.push({ pattern: x.pattern, after: side(x), change: 'added' });
  return out.sort((x, y) => (x.pattern < y.pattern ? -1 : x.pattern > y.pattern ? 1 : 0));
}

/** Whether `longer` is `shorter` followed by more parts after a separator: "order:{n}:{n}" extends "order:{n}". */
function extendsPattern(longer: string, shorter: string): boolean {
  return longer.length > shorter.length && longer.startsWith(shorter) && /^[:._\-/|#]/.test(longer.slice(shorter.length));
}

function cacheLine(c: CacheDiff): string {
  const r = (s: CacheSideStats | undefined) => (s ? `${s.hitRatio === undefined ? 'n/a' : `${Math.round(s.hitRatio * 100)}%`} (${s.hits} of ${s.reads} reads)` : '-');
  const name = c.before && c.after && c.before.pattern !== c.after.pattern ? `${c.before.pattern} → ${c.after.pattern}` : c.pattern;
  return `${name}: hit ratio ${r(c.before)} → ${r(c.after)}`;
}

/** JSON documents of a flow's responses: an HTTP body, or gRPC messages decoded with a schema. */
function jsonPayloads(r: FlowRecord): unknown[] {
  if (!httpHalves(r) || !r.response) return [];
  if (r.response.messages) return r.response.messages.flatMap((m) => (m.json === undefined ? [] : [m.json]));
  const j = jsonBody(r.response);
  return j?.ok ? [j.doc] : [];
}

/** Unions one document's shape into the endpoint's: every type seen at each path. */
function addShape(shape: Map<string, Set<string>>, doc: unknown): void {
  for (const [path, types] of jsonShape(doc)) {
    const seen = shape.get(path) ?? shape.set(path, new Set()).get(path)!;
    // 1 and 1.5 are one JSON type: prices that happen to be whole in one capture are no change.
    for (const t of types.split('|')) seen.add(t === 'integer' ? 'number' : t);
  }
}

function compareShapes(b: Map<string, Set<string>>, a: Map<string, Set<string>>): Omit<ShapeDiff, 'endpoint'> | undefined {
  // Without a JSON sample on both sides there is nothing to compare, only a missing preview.
  if (b.size === 0 || a.size === 0) return undefined;
  const t = (s: Set<string>) => [...s].sort().join('|');
  // A field that is null in some responses is optional, not retyped: null matches any type.
  const typed = (s: Set<string>) => t(new Set([...s].filter((x) => x !== 'null')));
  const out: Omit<ShapeDiff, 'endpoint'> = { added: [], removed: [], changed: [] };
  for (const [p, s] of a) if (!b.has(p)) out.added.push(`${p}: ${t(s)}`);
  for (const [p, s] of b) {
    const now = a.get(p);
    if (!now) out.removed.push(`${p}: ${t(s)}`);
    else if (typed(s) && typed(now) && typed(s) !== typed(now)) out.changed.push({ path: p, before: t(s), after: t(now) });
  }
  return out.added.length || out.removed.length || out.changed.length ? out : undefined;
}

/**
 * People's summary: the verdict, regressions, improvements, then the context. Findings and call
 * counts already named as a regression or an improvement are not repeated below it.
 */
export function diffText(d: FlowDiff): string {
  const L: string[] = [`diff ${d.before.label} (${plural(d.before.flows, 'flow')}) → ${d.after.label} (${plural(d.after.flows, 'flow')})`];
  L.push(d.regression ? `REGRESSION: ${d.regressions.length} regression${d.regressions.length === 1 ? '' : 's'}` : 'no regression');
  const section = (title: string, lines: string[], mark = ' ') => {
    if (lines.length > 0) L.push('', `${title}:`, ...lines.map((s) => ` ${mark} ${s}`));
  };
  const finding = (f: Finding) => `${f.severity.toUpperCase().padEnd(7)} ${f.kind}: ${f.summary}`;
  section('regressions', d.regressions, '✗');
  section('improvements', d.improvements, '✓');
  section('other new findings (not regressions)', d.findings.new.filter((f) => f.severity !== 'error').map(finding));
  section('other resolved findings', d.findings.resolved.filter((f) => f.severity === 'info').map(finding));
  section('calls per inbound request, new or gone', d.callsPerRequest.filter((c) => c.change === 'added' || c.change === 'removed').map((c) =>
    `${c.change.padEnd(7)} ${c.inbound} → ${c.downstream}: mean ${c.before.mean.toFixed(2)} → ${c.after.mean.toFixed(2)}, max ${c.before.max} → ${c.after.max}`));
  const named = [...d.regressions, ...d.improvements];
  section('cache hit ratio by key pattern, changed', d.cache.filter((c) => c.change !== 'same' && !named.some((l) => l.endsWith(cacheLine(c))))
    .map((c) => `${c.change.padEnd(7)} ${cacheLine(c)}`));
  section('endpoints added', d.endpoints.added.map((e) => `${e.endpoint}: ${statsText(e)}`), '+');
  section('endpoints removed', d.endpoints.removed.map((e) => `${e.endpoint}: ${statsText(e)}`), '-');
  section('endpoints changed', d.endpoints.changed.flatMap((e) => [e.endpoint, `    before: ${statsText(e.before)}`, `    after:  ${statsText(e.after)}`]));
  section('payload shapes', d.payloadShapes.flatMap((s) => [s.endpoint,
    ...s.added.map((p) => `    + ${p}`), ...s.removed.map((p) => `    - ${p}`), ...s.changed.map((c) => `    ~ ${c.path}: ${c.before} → ${c.after}`)]));
  if (L.length === 2) L.push('no differences');
  return `${L.join('\n')}\n`;
}

function statsText(s: EndpointStats): string {
  const statuses = sortKeys(s.statuses).map(([k, n]) => `${k} ×${n}`).join(', ');
  const l = s.latencyMs;
  return `${s.count} call${s.count === 1 ? '' : 's'} (${statuses})${l ? `; p50 ${l.p50}, p95 ${l.p95}, p99 ${l.p99}, max ${l.max} ms` : ''}`;
}
