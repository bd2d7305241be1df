import { httpHalves, recordModule, type FlowRecord, type HttpFlowRecord } from '../flows/index.js';
import { callKey, isHealthCheck, isTransactionControl } from './calls.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { endpointKey, operation } from './endpoint.js';
import { evidence, type Finding } from './types.js';
import { endpoint } from '../common/index.js';

/**
 * `n-plus-one`: one inbound request causing N downstream calls of one operation that differ only
 * in a parameter — `SELECT … WHERE order_id = $1` for each of 12 ids, `GET /products/{id}` per item.
 * Identical repeats are `redundant-call`, not this. One finding per (inbound endpoint, downstream
 * operation), reporting the worst request; `details.count` is its number of calls.
 */
export function detectNPlusOne(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['n-plus-one']): Finding[] {
  const byPair = new Map<string, NPlusOne[]>();
  for (const c of nPlusOneGroups(flows, ctx, t.minCount)) {
    const pair = `${endpointKey(c.parent)} → ${c.calls[0]!.protocol} ${endpoint(c.calls[0]!.dst)} ${c.operation}`;
    (byPair.get(pair) ?? byPair.set(pair, []).get(pair)!).push(c);
  }
  const out: Finding[] = [];
  for (const cases of byPair.values()) {
    const worst = cases.reduce((a, b) => (b.calls.length > a.calls.length ? b : a));
    const sample = worst.calls[0]!;
    const distinct = new Set(worst.calls.map(callKey)).size;
    out.push({
      kind: 'n-plus-one',
      severity: worst.calls.length >= t.errorCount ? 'error' : 'warning',
      summary: `${worst.calls.length} calls of ${describe(sample, worst.operation, ctx)} for one ${operation(worst.parent)} request on ${ctx.names.name(worst.parent.dst)}, differing only in a parameter${cases.length > 1 ? ` (${cases.length} such requests)` : ''}`,
      evidence: [evidence(worst.parent, 'the inbound request'), ...worst.calls.map((r, i) => evidence(r, `call ${i + 1}${paramText(r)}`))],
      details: {
        count: worst.calls.length, distinctParameters: distinct, requests: cases.length,
        operation: worst.operation, inbound: operation(worst.parent), perRequest: cases.map((c) => c.calls.length),
      },
    });
  }
  return out;
}

/** One inbound request and its calls of one operation that differ only in a parameter. */
export interface NPlusOne { parent: FlowRecord; calls: FlowRecord[]; /** The operation, parameter masked: `GET /products/{id}`, `GET /products/{param}`, a fingerprint. */ operation: string }

/**
 * Every inbound request's groups of at least `minCount` downstream calls of one operation with at
 * least two distinct parameter sets. redundant-call uses it too: a call that is part of an N+1 is
 * reported once, as that.
 */
export function nPlusOneGroups(flows: readonly FlowRecord[], ctx: DetectContext, minCount: number): NPlusOne[] {
  const perParent = groupBy(flows, (r) => (ctx.parents.has(r) && !isTransactionControl(r) && !isHealthCheck(r) ? ctx.parents.get(r)!.parent.id : undefined));
  const out: NPlusOne[] = [];
  for (const calls of perParent.values()) {
    const parent = ctx.parents.get(calls[0]!)!.parent;
    const grouped = new Set<FlowRecord>();
    for (const same of groupBy(calls, (r) => endpointKey(r)).values()) {
      if (same.length >= minCount && new Set(same.map(callKey)).size >= 2) {
        out.push({ parent, calls: same, operation: operation(same[0]!)! });
        for (const c of same) grouped.add(c);
      }
    }
    out.push(...slugGroups(calls.filter((c) => !grouped.has(c)), minCount).map((g) => ({ parent, ...g })));
  }
  return out;
}

/**
 * HTTP calls whose paths differ in one segment that is not a number or an id — a slug, a name,
 * `/products/apple-pie` then `/products/plum-jam` — are one operation too: for each segment
 * position, mask it and group. A group needs `minCount` calls with that many distinct values.
 */
function slugGroups(calls: FlowRecord[], minCount: number): { calls: FlowRecord[]; operation: string }[] {
  const out: { calls: FlowRecord[]; operation: string }[] = [];
  const http = calls.filter(httpHalves).filter((c) => recordModule(c).pathParams && c.request);
  const taken = new Set<FlowRecord>();
  const segs = (c: HttpFlowRecord) => c.request!.path.split('?')[0]!.split('/');
  for (const group of groupBy(http, (c) => `${endpoint(c.dst)} ${c.request!.method} ${segs(c).length}`).values()) {
    if (group.length < minCount) continue;
    for (let i = 1; i < segs(group[0]!).length; i++) {
      for (const same of groupBy(group.filter((c) => !taken.has(c)), (c) => segs(c).map((x, j) => (j === i ? '*' : x)).join('/')).values()) {
        if (same.length < minCount || new Set(same.map((c) => segs(c)[i])).size < minCount) continue;
        out.push({ calls: same, operation: `${same[0]!.request!.method} ${segs(same[0]!).map((x, j) => (j === i ? '{param}' : x)).join('/')}` });
        for (const c of same) taken.add(c);
      }
    }
  }
  return out;
}

function describe(r: FlowRecord, op: string, ctx: DetectContext): string {
  return recordModule(r).operationName(op, ctx.names.name(r.dst));
}

function paramText(r: FlowRecord): string {
  // SQL bind parameters, a REST path, or a command's arguments (Redis: the key first)
  const q = r.request as { params?: unknown[]; path?: string; args?: string[] } | undefined;
  if (q?.params) return ` with ${JSON.stringify(q.params)}`;
  if (q?.args) return ` with ${JSON.stringify(q.args)}`;
  return q?.path ? `: ${q.path}` : '';
}
