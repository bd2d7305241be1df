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
  // inbound request → its downstream calls, grouped by the operation they perform
  const perParent = groupBy(flows, (r) => (ctx.parents.has(r) && !isTransactionControl(r) && !isHealthCheck(r) ? ctx.parents.get(r)!.parent.id : undefined));
  type Case = { parent: FlowRecord; calls: FlowRecord[] };
  const byPair = new Map<string, Case[]>();
  for (const calls of perParent.values()) {
    const parent = ctx.parents.get(calls[0]!)!.parent;
    for (const [op, same] of groupBy(calls, (r) => endpointKey(r))) {
      if (same.length < t.minCount) continue;
      // They must differ: at least two distinct parameter sets among them.
      if (new Set(same.map(callKey)).size < 2) continue;
      const pair = `${endpointKey(parent)} → ${op}`;
      (byPair.get(pair) ?? byPair.set(pair, []).get(pair)!).push({ parent, calls: same });
    }
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

function describe(r: FlowRecord, ctx: DetectContext): string {
  return r.protocol === 'postgres' ? `postgres "${operation(r)}"` : `${operation(r)} on ${ctx.names.name(r.dst)}`;
}

function paramText(r: FlowRecord): string {
  const q = r.request as { params?: unknown[]; path?: string } | undefined;
  if (q?.params) return ` with ${JSON.stringify(q.params)}`;
  return q?.path ? `: ${q.path}` : '';
}
