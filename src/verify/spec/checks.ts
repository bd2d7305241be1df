import { httpHalves, sqlHalves, type FlowRecord, type HttpFlowRecord, type RecordRequest, type RecordResponse } from '../../flows/index.js';
import { cacheOps, keyPattern, type CacheOp } from '../cache-hits.js';
import { isTransactionControl } from '../calls.js';
import { DEFAULT_MAX_EVIDENCE, thresholds } from '../config.js';
import { groupBy } from '../context.js';
import { operation } from '../endpoint.js';
import { attribute, type Attribution } from '../group.js';
import { findForwardedSecrets } from '../secrets.js';
import { evidence, type Finding } from '../types.js';
import { selectFlows } from './selector.js';
import type { Backoff, CacheExpect, Check, Expect, HeaderExpect, MessageExpect, Range, ResponseExpect, Selector, Spec } from './types.js';

export interface CheckResults {
  findings: Finding[];
  /** Why some checks could not be decided: nothing matched, or the deciding evidence is missing. */
  inconclusive: string[];
}

/** A failed assertion, before it becomes a finding. */
interface Failure {
  assertion: string;
  what: string;
  expected: unknown;
  actual: unknown;
  evidence: [FlowRecord, string][];
}

/** What one assertion concluded: nothing (it held), a failure, or why it cannot tell. */
type Outcome = Failure | { unknown: string } | undefined;

/** What the assertions of one run share: the flows, names, and causal grouping (computed once, on demand). */
interface Env {
  flows: readonly FlowRecord[];
  spec: Spec;
  parents(): Map<FlowRecord, Attribution>;
}

/**
 * Evaluates a spec's checks over a capture's flows. Each failed assertion is its own finding of kind
 * `check`; a check that cannot be decided is an inconclusive reason, never a failure.
 */
export function runChecks(spec: Spec, flows: readonly FlowRecord[], opts: { maxEvidence?: number; parents?: Map<FlowRecord, Attribution> } = {}): CheckResults {
  // Causal grouping is computed once per verification: the detectors' context passes it in.
  let parents = opts.parents;
  const env: Env = { flows, spec, parents: () => (parents ??= attribute(flows)) };
  const max = opts.maxEvidence ?? spec.maxEvidence ?? DEFAULT_MAX_EVIDENCE;
  const out: CheckResults = { findings: [], inconclusive: [] };
  for (const check of spec.checks) {
    for (const o of evaluate(check, env)) {
      if (!o) continue;
      if ('unknown' in o) out.inconclusive.push(`check "${check.name}": ${o.unknown}`);
      else out.findings.push(toFinding(check, o, max));
    }
  }
  return out;
}

function toFinding(check: Check, f: Failure, max: number): Finding {
  return {
    kind: 'check',
    severity: check.severity,
    summary: `check "${check.name}": ${f.what}`,
    evidence: f.evidence.slice(0, max).map(([r, s]) => evidence(r, s)),
    details: { check: check.name, assertion: f.assertion, expected: f.expected, actual: f.actual, evidenceTotal: f.evidence.length },
  };
}

function evaluate(check: Check, env: Env): Outcome[] {
  if (check.noSecretLeaves) return [noSecretLeaves(check.noSecretLeaves, env)];
  if (check.order) return [order(check.order, env)];
  if (check.cache) return [cache(check.cache, env)];
  const { flows: matched, unknown } = selectFlows(check.select!, env.flows, env.spec.names);
  const x = check.expect!;
  if (matched.length === 0) {
    // Only a count can be judged on nothing; the other assertions would hold vacuously.
    if (x.count) return [count(x.count, matched, unknown)];
    return [{ unknown: `no matching flows for ${check.select!.text}${unknown.length ? ` (${unknown.length} flows could not be told: the half the selector reads was not seen)` : ''}` }];
  }
  return [
    x.count && count(x.count, matched, unknown),
    x.backoff && backoff(x.backoff, matched, env),
    x.latency && latency(x.latency, matched),
    ...(x.request ? message('request', x.request, matched) : []),
    ...(x.response ? message('response', x.response, matched) : []),
    ...perRequest(x.perRequest, matched, env),
  ];
}

function inRange(r: Range, n: number): boolean {
  return (r.exactly === undefined || n === r.exactly) && (r.atLeast === undefined || n >= r.atLeast) && (r.atMost === undefined || n <= r.atMost);
}

function rangeText(r: Range): string {
  if (r.exactly !== undefined) return `exactly ${r.exactly}`;
  if (r.atLeast !== undefined && r.atMost !== undefined) return `between ${r.atLeast} and ${r.atMost}`;
  return r.atLeast !== undefined ? `at least ${r.atLeast}` : `at most ${r.atMost}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Milliseconds as summaries show them: seconds from 100 ms up (as the retry detector does), else ms. */
function ms(v: number): string {
  return v >= 100 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;
}

function count(range: Range, matched: FlowRecord[], unknown: FlowRecord[]): Outcome {
  const n = matched.length;
  if (inRange(range, n)) return undefined;
  const low = range.exactly ?? range.atLeast ?? 0;
  if (n < low && n + unknown.length >= low) {
    return { unknown: `${plural(n, 'matching flow')} where ${rangeText(range)} was expected, but ${unknown.length} more could match (the half the selector reads was not seen)` };
  }
  return {
    assertion: 'count', what: `${plural(n, 'matching flow')} where ${rangeText(range)} was expected`, expected: range, actual: n,
    evidence: n > low ? matched.map((r, i) => [r, `match ${i + 1} of ${n}`]) : [],
  };
}

/**
 * Delays between consecutive attempts (end of one to start of the next), per inbound request that
 * made them: retries of two different checkouts are two sequences, and the pause between the
 * checkouts is no delay of either. Calls no request caused (a test driver) are sequenced per client.
 */
function backoff(b: Backoff, matched: FlowRecord[], env: Env): Outcome {
  const parents = env.parents();
  const runs = [...groupBy(matched, (r) => parents.get(r)?.parent.id ?? `client ${r.src.ip}`).values()].filter((run) => run.length > 1);
  const failing: { run: FlowRecord[]; delays: number[] }[] = [];
  let undecided = 0;
  for (const run of runs) {
    const delays = run.slice(1).map((r, i) => Math.round((r.start - run[i]!.end) * 1e5) / 100);
    if (delays.every((d, i) => Math.abs(d - b.expectedMs(i)) <= b.tolerance * b.expectedMs(i))) continue;
    // A lost response moves an attempt's end: its delays are not evidence.
    if (run.some((r) => r.incomplete)) undecided++;
    else failing.push({ run, delays });
  }
  if (failing.length === 0) return undecided ? { unknown: `${plural(undecided, 'retry sequence')} with incomplete flows (a lost response moves an attempt's end) did not match the schedule` } : undefined;
  const { delays } = failing[0]!;
  const want = delays.map((_, i) => b.expectedMs(i));
  const more = failing.length > 1 ? ` (${failing.length} of ${runs.length} sequences)` : '';
  return {
    assertion: 'backoff',
    what: `delays ${delays.map(ms).join(', ')} where ${want.map(ms).join(', ')} ±${Math.round(b.tolerance * 100)} % was expected${more}`,
    expected: { ...b.spec, tolerance: b.tolerance, delaysMs: want },
    actual: { delaysMs: delays, sequences: failing.map((f) => f.delays) },
    evidence: failing.flatMap(({ run, delays: d }) => run.map((r, i): [FlowRecord, string] =>
      [r, i === 0 ? 'attempt 1' : `attempt ${i + 1}, ${ms(d[i - 1]!)} after attempt ${i} (expected ${ms(b.expectedMs(i - 1))})`])),
  };
}

const PERCENTILE = { p50: 50, p90: 90, p95: 95, p99: 99 } as const;

/** Latency budgets over the flows whose whole exchange was seen: a lost response has no duration. */
function latency(budget: NonNullable<Expect['latency']>, matched: FlowRecord[]): Outcome {
  const timed = matched.filter((r) => r.response && r.request && !r.incomplete).sort((a, b) => b.durationMs - a.durationMs);
  if (timed.length === 0) return { unknown: 'no matched flow has a complete exchange to time' };
  const asc = timed.map((r) => r.durationMs).reverse();
  const actual: Record<string, number> = {};
  const over: string[] = [];
  let tightest = Infinity;
  for (const [stat, limit] of Object.entries(budget) as [keyof typeof budget, number][]) {
    const v = stat === 'max' ? asc[asc.length - 1]! : asc[Math.max(0, Math.ceil((PERCENTILE[stat] / 100) * asc.length) - 1)]!;
    actual[stat] = v;
    if (v > limit) {
      over.push(`${stat} latency ${ms(v)} where at most ${ms(limit)} was expected`);
      tightest = Math.min(tightest, limit);
    }
  }
  if (over.length === 0) return undefined;
  const slow = timed.filter((r) => r.durationMs > tightest);
  return {
    assertion: 'latency', what: `${over.join('; ')} (${slow.length} of ${timed.length} flows over ${ms(tightest)})`, expected: budget, actual,
    evidence: slow.map((r) => [r, `${ms(r.durationMs)}`]),
  };
}

/** Request or response expectations, one outcome per part (status, headers, body), judged flow by flow. */
function message(which: 'request' | 'response', x: MessageExpect | ResponseExpect, matched: FlowRecord[]): Outcome[] {
  /** Judges the half of an HTTP-like flow; a half not seen cannot be judged. */
  const onHalf = (judge: (h: RecordRequest | RecordResponse, r: HttpFlowRecord) => Judgement) => (r: FlowRecord): Judgement => {
    if (!httpHalves(r)) return { problems: [`${r.protocol} has no HTTP ${which}`] };
    const h = r[which];
    return h ? judge(h, r) : { unknown: `${which} not seen` };
  };
  const out: Outcome[] = [];
  if (which === 'response') {
    const rx = x as ResponseExpect;
    for (const [key, label, st] of [['status', 'status', rx.status], ['grpcStatus', 'gRPC status', rx.grpcStatus]] as const) {
      if (!st) continue;
      out.push(perFlow(`${which}.${key}`, { text: `${label} ${st.text}`, value: st.text }, matched, onHalf((h, r) => {
        const v = (h as RecordResponse)[key];
        if (key === 'grpcStatus' && r.protocol !== 'grpc') return { problems: [`${r.protocol} has no gRPC status`] };
        return v === undefined ? { unknown: `${label} not seen` } : { problems: st.test(v) ? [] : [`${label} ${v}`] };
      })));
    }
  }
  if (x.headers) {
    const hs = x.headers;
    out.push(perFlow(`${which}.headers`, { text: hs.map(headerText).join(', '), value: hs.map(headerText) }, matched,
      onHalf((h, r) => headerProblems(hs, h.headers, 'headersPartial' in r && r.headersPartial === true))));
  }
  if (x.body) {
    const body = x.body;
    out.push(perFlow(`${which}.body`, { value: x.bodySpec }, matched, onHalf((h, r) => body.check(h, r))));
  }
  return out;
}

function headerText(e: HeaderExpect): string {
  if (e.absent) return `no ${e.name}`;
  return e.equals !== undefined ? `${e.name}: ${e.equals}` : e.matches ? `${e.name} matching /${e.matches.source}/` : `${e.name} present`;
}

function headerProblems(exps: HeaderExpect[], headers: Record<string, string>, partial: boolean): Judgement {
  const problems: string[] = [];
  let unknown: string | undefined;
  for (const e of exps) {
    const v = headers[e.name];
    if (v === undefined) {
      // A header block that was only partly decoded may hold it.
      if (partial && !e.absent) unknown = 'headers only partly decoded';
      else if (!e.absent) problems.push(`${e.name} missing`);
      continue;
    }
    const shown = JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
    if (e.absent) problems.push(`${e.name} present (${shown})`);
    if (e.equals !== undefined && v !== e.equals) problems.push(`${e.name} is ${shown}`);
    if (e.matches && !e.matches.test(v)) problems.push(`${e.name} ${shown} does not match`);
  }
  return { problems, ...(unknown ? { unknown } : {}) };
}

/** One flow judged: what is wrong with it, or why it cannot be told. */
type Judgement = { problems?: string[]; unknown?: string };

/**
 * Judges each matched flow; fails with the flows that break it, grouped by problem in the summary.
 * Flows that cannot be judged (a half not seen, a body cut off) make it inconclusive only when no
 * flow fails outright.
 */
function perFlow(assertion: string, expected: { text?: string; value: unknown }, matched: FlowRecord[], judge: (r: FlowRecord) => Judgement): Outcome {
  const bad: [FlowRecord, string][] = [];
  const tally = new Map<string, number>();
  let undecided: string | undefined;
  let undecidedCount = 0;
  for (const r of matched) {
    const { problems = [], unknown } = judge(r);
    if (problems.length) {
      bad.push([r, problems.join('; ')]);
      for (const p of problems) tally.set(p, (tally.get(p) ?? 0) + 1);
    } else if (unknown) {
      undecided ??= unknown;
      undecidedCount++;
    }
  }
  if (bad.length === 0) return undecidedCount ? { unknown: `${assertion} could not be judged on ${plural(undecidedCount, 'flow')}: ${undecided}` } : undefined;
  const top = [...tally].sort((a, b) => b[1] - a[1]);
  const listed = top.slice(0, 3).map(([p, n]) => `${p}${n > 1 ? ` (×${n})` : ''}`).join(', ') + (top.length > 3 ? `, and ${top.length - 3} more problems` : '');
  return {
    assertion, what: `${bad.length} of ${matched.length} matched flows break ${assertion}${expected.text ? ` (expected ${expected.text})` : ''}: ${listed}`,
    expected: expected.value, actual: Object.fromEntries(top), evidence: bad,
  };
}

/** Downstream work attributed to each matched inbound request (group.ts): SQL statements and calls. */
function perRequest(x: Expect['perRequest'], matched: FlowRecord[], env: Env): Outcome[] {
  if (!x) return [];
  const children = groupBy(env.parents(), ([, a]) => a.parent.id);
  const kids = (r: FlowRecord) => (children.get(r.id) ?? []).map(([c]) => c);
  const kinds = [
    ['sql', x.sql, 'SQL statement', (c: FlowRecord) => sqlHalves(c) && !isTransactionControl(c)],
    ['calls', x.calls, 'call', (c: FlowRecord) => !sqlHalves(c)],
  ] as const;
  return kinds.map(([key, range, noun, counted]): Outcome => {
    if (!range) return undefined;
    const n = new Map(matched.map((r) => [r, kids(r).filter(counted)]));
    const bad = matched.filter((r) => !inRange(range, n.get(r)!.length));
    // A request whose exchange was not seen whole may have made calls outside the part seen.
    const real = bad.filter((r) => !(r.incomplete && n.get(r)!.length < (range.exactly ?? range.atLeast ?? 0)));
    if (real.length === 0) return bad.length ? { unknown: `${plural(bad.length, 'incomplete request')} made fewer ${noun}s than expected` } : undefined;
    const counts = real.map((r) => n.get(r)!.length);
    const lo = Math.min(...counts), hi = Math.max(...counts);
    return {
      assertion: `perRequest.${key}`,
      what: `${real.length} of ${matched.length} matched requests made ${lo === hi ? plural(lo, noun) : `${lo} to ${hi} ${noun}s`} each, where ${rangeText(range)} was expected`,
      expected: range, actual: Object.fromEntries(real.map((r) => [r.id, n.get(r)!.length])),
      evidence: real.map((r) => [r, `${plural(n.get(r)!.length, noun)}${n.get(r)!.length ? `: ${[...new Set(n.get(r)!.map((c) => operation(c) ?? c.protocol))].join(', ')}` : ''}`]),
    };
  });
}

/** Each selector's first flow starts before the next selector's. */
function order(sels: Selector[], env: Env): Outcome {
  const firsts = sels.map((s) => selectFlows(s, env.flows, env.spec.names).flows[0]);
  const missing = sels.filter((_, i) => !firsts[i]).map((s) => s.text);
  if (missing.length) return { unknown: `no matching flows for ${missing.join(', ')}` };
  for (let i = 0; i + 1 < sels.length; i++) {
    const a = firsts[i]!, b = firsts[i + 1]!;
    if (a.start < b.start) continue;
    return {
      assertion: 'order',
      what: `${sels[i + 1]!.text} started ${ms((a.start - b.start) * 1000)} before ${sels[i]!.text}`,
      expected: sels.map((s) => s.text), actual: sels.map((s, j) => ({ s, f: firsts[j]! })).sort((p, q) => p.f.start - q.f.start).map((p) => p.s.text),
      evidence: [[b, `${sels[i + 1]!.text}, expected after`], [a, sels[i]!.text]],
    };
  }
  return undefined;
}

/** Credentials received by a service that appear on calls it made (secrets.ts), except to allowed services. */
function noSecretLeaves(x: NonNullable<Check['noSecretLeaves']>, env: Env): Outcome {
  const { names, detectors } = env.spec;
  if (!env.flows.some((r) => names.matches(r.dst, x.service))) return { unknown: `no flows to ${x.service}` };
  const leaks = findForwardedSecrets(env.flows, { headers: thresholds('secret-forwarded', detectors).headers, parents: env.parents() })
    .filter((l) => names.matches(l.inbound.dst, x.service) && !x.allowTo.some((s) => names.matches(l.outbound.dst, s)));
  if (leaks.length === 0) return undefined;
  const routes = groupBy(leaks, (l) => `${l.arrivedIn} sent in ${l.sentIn} of ${operation(l.outbound)} to ${names.name(l.outbound.dst)}`);
  return {
    assertion: 'noSecretLeaves',
    what: `credentials received by ${x.service} left it on ${plural(leaks.length, 'call')}: ${[...routes].map(([k, v]) => `${k}${v.length > 1 ? ` (×${v.length})` : ''}`).join('; ')}`,
    expected: { service: x.service, allowTo: x.allowTo }, actual: [...routes].map(([route, v]) => ({ route, calls: v.length })),
    evidence: leaks.map((l) => [l.outbound, `credential from the ${l.arrivedIn} of ${l.inbound.id} sent in ${l.sentIn} to ${names.name(l.outbound.dst)}`]),
  };
}

/**
 * The hit ratio of Redis reads of keys matching the glob (a nil reply is a miss; src/verify/cache-hits.ts
 * classifies commands, so this agrees with the cache-aside detector and `tapwire diff`). Reads whose
 * reply was not seen count neither way: when they could lift the ratio over the minimum, the check
 * cannot tell. No matching read at all fails: a spec that names a cache expects it to be used.
 */
function cache(x: CacheExpect, env: Env): Outcome {
  const names = env.spec.names;
  const ops = cacheOps(env.flows).filter((o) => x.service === undefined || names.matches(o.flow.dst, x.service));
  const reads = ops.filter((o) => o.kind === 'read' && x.match.test(o.key));
  const known = reads.filter((o) => o.hit !== undefined);
  const hits = known.filter((o) => o.hit).length;
  const unseen = reads.length - known.length;
  const where = `Redis keys matching "${x.key}"${x.service !== undefined ? ` on ${x.service}` : ''}`;
  const expected = { key: x.key, minHitRatio: x.minHitRatio, ...(x.service !== undefined ? { service: x.service } : {}) };
  const writes = ops.filter((o) => o.kind === 'write' && x.match.test(o.key));
  if (known.length === 0) {
    if (unseen > 0) return { unknown: `${plural(unseen, 'read')} of ${where}, none with its reply seen` };
    return {
      assertion: 'cache',
      what: `no reads of ${where} were seen${writes.length ? ` (${plural(writes.length, 'write')}, never read)` : ''}: the cache this check names was never used${otherReads(ops, x.service)}`,
      expected, actual: { reads: 0, hits: 0, misses: 0, writes: writes.length },
      evidence: writes.map((o) => [o.flow, `${o.flow.request!.command} ${o.key}: written, never read`]),
    };
  }
  const ratio = hits / known.length;
  if (ratio >= x.minHitRatio) return undefined;
  const round = (v: number) => Math.round(v * 1000) / 1000;
  const actual = { reads: known.length, hits, misses: known.length - hits, hitRatio: round(ratio), writes: writes.length, ...(unseen ? { readsWithoutReply: unseen } : {}) };
  if ((hits + unseen) / (known.length + unseen) >= x.minHitRatio) {
    return { unknown: `hit ratio ${round(ratio)} (${hits}/${known.length}) of ${where} is under ${x.minHitRatio}, but ${plural(unseen, 'read')} without a reply seen could make up the difference` };
  }
  return {
    assertion: 'cache',
    what: `hit ratio ${round(ratio)} (${plural(hits, 'hit')} of ${plural(known.length, 'read')}) of ${where}, where at least ${x.minHitRatio} was expected`,
    expected, actual, evidence: misses(known),
  };
}

/** Each flow with a missed read once (MGET misses several keys in one flow). */
function misses(reads: CacheOp[]): [FlowRecord, string][] {
  const by = groupBy(reads.filter((o) => o.hit === false), (o) => o.flow.id);
  return [...by.values()].map((os) => {
    const flow = os[0]!.flow;
    return [flow, `${flow.request!.command} ${os.map((o) => o.key).join(', ')}: miss (${flow.response?.type ?? 'no'} reply)`];
  });
}

/** The key patterns that were read, for a check whose glob matched none: most often a typo in it. */
function otherReads(ops: CacheOp[], service: string | undefined): string {
  const patterns = [...groupBy(ops.filter((o) => o.kind === 'read'), (o) => keyPattern(o.key))].sort((a, b) => b[1].length - a[1].length);
  if (patterns.length === 0) return ops.length ? '' : service !== undefined ? ` (no Redis cache commands to ${service})` : ' (no Redis cache commands in the capture)';
  const shown = patterns.slice(0, 3).map(([p, os]) => `${p} ×${os.length}`).join(', ');
  return ` (keys read: ${shown}${patterns.length > 3 ? `, and ${patterns.length - 3} more patterns` : ''})`;
}
