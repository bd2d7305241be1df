import { recordModule, type FlowRecord, type Problem } from '../flows/index.js';
import { callName } from './calls.js';
import type { DetectorThresholds } from './config.js';
import type { DetectContext } from './context.js';
import { evidence, type Finding } from './types.js';
import { endpoint } from '../common/index.js';

/** What went wrong on a flow, or undefined: HTTP 5xx, gRPC non-OK, SQL errors; 4xx separately. */
function problem(r: FlowRecord): Problem | undefined {
  return recordModule(r).problem(r, endpoint(r.dst));
}

/**
 * `error-status`: HTTP 5xx, gRPC non-OK and SQL errors, one finding per endpoint and code, and
 * bursts of 4xx (a lone 404 is often intended). Warnings by default; a spec can raise them.
 */
export function detectErrorStatus(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['error-status']): Finding[] {
  const groups = new Map<string, { label: string; clientError: boolean; flows: FlowRecord[] }>();
  for (const r of flows) {
    const p = problem(r);
    if (!p) continue;
    (groups.get(p.key) ?? groups.set(p.key, { label: p.label, clientError: p.clientError, flows: [] }).get(p.key)!).flows.push(r);
  }
  const out: Finding[] = [];
  for (const g of groups.values()) {
    if (g.clientError && g.flows.length < t.burst4xx) continue;
    const first = g.flows[0]!;
    out.push({
      kind: 'error-status',
      severity: 'warning',
      summary: `${g.flows.length} × ${g.label} from ${callName(first, ctx.names)}`,
      evidence: g.flows.map((r) => evidence(r, g.label)),
      details: { count: g.flows.length, status: g.label },
    });
  }
  return out;
}
