import type { FlowRecord } from '../flows/record.js';
import { callKey, isHealthCheck, isTransactionControl } from './calls.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { endpointKey, operation } from './endpoint.js';
import { evidence, type Finding } from './types.js';

/**
 * `n-plus-one`: one inbound request causing N downstream calls of one operation that differ only
 * in a parameter — `SELECT … WHERE order_id = $1` for each of 12 ids, `GET /products/{id}` per item.
 * Identical repeats are `redundant-call`, not this. One finding per (inbound endpoint, downstream
 * operation), reporting the worst request; `details.count` is its number of calls.
 */
export function detectNPlusOne(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['n-plus-one']): Finding[] {
  const byPair = new Map<string, NPlusOne[]>();
  for (const c of nPlusOneGroups(flows, ctx, t.minCount)) {
    const pair = `${endpointKey(c.parent)} → ${endpointKey(c.calls[0]!)}`;
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
      summary: `${worst.calls.length} calls of ${describe(sample, ctx)} for one ${operation(worst.parent)} request on ${ctx.names.name(worst.parent.dst)}, differing only in a parameter${cases.length > 1 ? ` (${cases.length} such requests)` : ''}`,
      evidence: [evidence(worst.parent, 'the inbound request'), ...worst.calls.map((r, i) => evidence(r, `call ${i + 1}${paramText(r)}`))],
      details: {
        count: worst.calls.length, distinctParameters: distinct, requests: cases.length,
        operation: operation(sample), inbound: operation(worst.parent), perRequest: cases.map((c) => c.calls.length),
      },
    });
  }
  return out;
}

/** One inbound request and its calls of one operation that differ only in a parameter. */
export interface NPlusOne { parent: FlowRecord; calls: FlowRecord[] }

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
    for (const same of groupBy(calls, (r) => endpointKey(r)).values()) {
      if (same.length >= minCount && new Set(same.map(callKey)).size >= 2) out.push({ parent, calls: same });
    }
  }
  return out;
}

function describe(r: FlowRecord, ctx: DetectContext): string {
  return r.protocol === 'postgres' ? `postgres "${operation(r)}"` : `${operation(r)} on ${ctx.names.name(r.dst)}`;
}

function paramText(r: FlowRecord): string {
  const q = r.request as { params?: unknown[]; path?: string } | undefined;
  if (q?.params) return ` with ${JSON.stringify(q.params)}`;
  return q?.path ? `: ${q.path}` : '';
}
