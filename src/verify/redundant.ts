import type { FlowRecord } from '../flows/record.js';
import { callKey, callName, failed, isHealthCheck, isTransactionControl } from './calls.js';
import { attribute } from './group.js';
import { evidence, type Finding } from './types.js';

export interface RedundantOptions {
  /** Identical calls at which a finding is raised, and at which it becomes an error (issue 5: 10). */
  minCount: number;
  errorCount: number;
  /** Evidence entries listed per finding (the total is always stated). */
  maxEvidence: number;
}

export const DEFAULT_REDUNDANT: RedundantOptions = { minCount: 3, errorCount: 10, maxEvidence: 20 };

/**
 * Identical calls repeated: same method+path+body, or same query fingerprint and parameters, that
 * did not fail (repeats after failures are retries). Only calls a service made while handling an
 * inbound request count: the traffic under test itself (a test driver, a load generator) repeats by
 * design. Transaction control and health checks are not redundant.
 */
export function detectRedundant(flows: readonly FlowRecord[], opts: RedundantOptions = DEFAULT_REDUNDANT): Finding[] {
  const parents = attribute(flows);
  const byKey = new Map<string, FlowRecord[]>();
  for (const r of flows) {
    if (!parents.has(r) || failed(r) || isTransactionControl(r) || isHealthCheck(r)) continue;
    const k = callKey(r);
    if (k) (byKey.get(k) ?? byKey.set(k, []).get(k)!).push(r);
  }
  const out: Finding[] = [];
  for (const calls of byKey.values()) {
    if (calls.length < opts.minCount) continue;
    calls.sort((a, b) => a.start - b.start);
    const first = calls[0]!;
    const params = first.protocol === 'postgres' ? ` with parameters ${JSON.stringify((first.request as { params?: unknown[] }).params ?? [])}` : '';
    out.push({
      kind: 'redundant-call',
      severity: calls.length >= opts.errorCount ? 'error' : 'warning',
      summary: `${calls.length} identical calls: ${callName(first)}${params}`,
      evidence: calls.slice(0, opts.maxEvidence).map((r, i) => evidence(r, `call ${i + 1}`)),
      details: {
        count: calls.length, evidenceTotal: calls.length, windowMs: Math.round((calls[calls.length - 1]!.end - first.start) * 1000),
        inboundRequests: new Set(calls.map((c) => parents.get(c)!.parent.id)).size,
      },
    });
  }
  return out;
}
