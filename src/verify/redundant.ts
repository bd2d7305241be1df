import type { FlowRecord } from '../flows/record.js';
import type { DetectorThresholds } from './config.js';
import { callKey, callName, failed, isHealthCheck, isTransactionControl } from './calls.js';
import { groupBy, type DetectContext } from './context.js';
import { evidence, type Finding } from './types.js';

/**
 * `redundant-call`: identical calls repeated — same method+path+body, or same query fingerprint
 * and parameters — that did not fail (repeats after failures are retries). Only calls a service
 * made while handling an inbound request count: the traffic under test itself (a test driver, a
 * load generator) repeats by design. Transaction control and health checks are not redundant.
 */
export function detectRedundant(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['redundant-call']): Finding[] {
  const { parents } = ctx;
  const byKey = groupBy(flows, (r) => (!parents.has(r) || failed(r) || isTransactionControl(r) || isHealthCheck(r) ? undefined : callKey(r)));
  const out: Finding[] = [];
  for (const calls of byKey.values()) {
    if (calls.length < t.minCount) continue;
    calls.sort((a, b) => a.start - b.start);
    const first = calls[0]!;
    const params = first.protocol === 'postgres' ? ` with parameters ${JSON.stringify((first.request as { params?: unknown[] }).params ?? [])}` : '';
    const inbound = new Set(calls.map((c) => parents.get(c)!.parent.id)).size;
    out.push({
      kind: 'redundant-call',
      severity: calls.length >= t.errorCount ? 'error' : 'warning',
      summary: `${calls.length} identical calls: ${callName(first, ctx.names)}${params}${inbound > 1 ? ` (across ${inbound} inbound requests)` : ' (within one inbound request)'}`,
      evidence: calls.map((r, i) => evidence(r, `call ${i + 1}`)),
      details: {
        count: calls.length, windowMs: Math.round((calls[calls.length - 1]!.end - first.start) * 1000), inboundRequests: inbound,
      },
    });
  }
  return out;
}
