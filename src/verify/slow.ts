import { recordModule, type FlowRecord } from '../flows/index.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { endpointKey, operation } from './endpoint.js';
import { evidence, type Finding } from './types.js';
import { plural } from '../common/index.js';

/** Outliers must also be this much slower than the median: a 3 ms call is not slow next to a 0.5 ms one. */
const MIN_OUTLIER_EXCESS_MS = 50;

/**
 * `slow`: calls over the latency budget, and outliers — calls more than `outlierFactor` times the
 * median of their endpoint (given `minSamples` calls to judge the median by). One finding per
 * endpoint and cause. Long-lived exchanges (upgrades, tunnels, streaming gRPC) and calls that wait
 * by design (a Redis BLPOP: the module's `blocking`) are not calls with a latency, and incomplete
 * ones have no true end: all are left out.
 */
export function detectSlow(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['slow']): Finding[] {
  type Slow = { calls: FlowRecord[]; all: number; median: number; cause: 'budget' | 'outlier' };
  const found: Slow[] = [];
  for (const calls of groupBy(flows.filter(isTimedCall), (r) => endpointKey(r)).values()) {
    const sorted = calls.map((r) => r.durationMs).sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    found.push({ calls: calls.filter((r) => r.durationMs > t.budgetMs), all: calls.length, median, cause: 'budget' });
    if (calls.length < t.minSamples) continue;
    const outliers = calls.filter((r) => r.durationMs > t.outlierFactor * median && r.durationMs - median >= MIN_OUTLIER_EXCESS_MS && r.durationMs <= t.budgetMs);
    found.push({ calls: outliers, all: calls.length, median, cause: 'outlier' });
  }
  // A request that was slow because a call it made was slow is not a second problem: the finding
  // names the call. Its callers are counted there.
  const flagged = new Set(found.flatMap((f) => f.calls));
  const slowBecause = new Set<FlowRecord>();
  for (const c of flagged) {
    const p = ctx.parents.get(c)?.parent;
    if (p && flagged.has(p)) slowBecause.add(p);
  }
  const out: Finding[] = [];
  for (const f of found) {
    const own = f.calls.filter((r) => !slowBecause.has(r));
    if (own.length === 0) continue;
    const name = nameOf(own[0]!, ctx);
    const callers = own.filter((r) => slowBecause.has(ctx.parents.get(r)?.parent as FlowRecord)).length;
    const summary = f.cause === 'budget'
      ? `${own.length} of ${plural(f.all, 'call')} to ${name} took longer than the ${t.budgetMs} ms budget (${range(own)})`
      : `${own.length} of ${plural(f.all, 'call')} to ${name} took ${range(own)}, over ${t.outlierFactor}× the median ${round(f.median)} ms`;
    out.push(finding(own, `${summary}${callers ? `, making ${callers} inbound request${callers > 1 ? 's' : ''} slow too` : ''}`, {
      cause: f.cause, ...(f.cause === 'budget' ? { budgetMs: t.budgetMs } : { outlierFactor: t.outlierFactor }),
      count: own.length, calls: f.all, medianMs: round(f.median), slowCallers: callers,
    }));
  }
  return out;
}

/** The operation as its protocol names it ("GET /index", `redis EVAL report:{n}`), and the server. */
function nameOf(r: FlowRecord, ctx: DetectContext): string {
  const server = ctx.names.name(r.dst);
  const named = recordModule(r).operationName(operation(r)!, server);
  return named.includes(server) ? named : `${named} on ${server}`;
}

function isTimedCall(r: FlowRecord): boolean {
  if (r.incomplete || !r.request || !r.response || ('upgrade' in r && r.upgrade)) return false;
  if (recordModule(r).blocking?.(r)) return false;
  const q = r.request as { messages?: unknown[] };
  const s = r.response as { messages?: unknown[] };
  // A stream of several messages lasts as long as the conversation, not as long as a call.
  return (q.messages?.length ?? 0) <= 1 && (s.messages?.length ?? 0) <= 1;
}

function finding(calls: FlowRecord[], summary: string, details: Record<string, unknown>): Finding {
  const slowest = [...calls].sort((a, b) => b.durationMs - a.durationMs);
  return {
    kind: 'slow', severity: 'warning', summary,
    evidence: slowest.map((r) => evidence(r, `${round(r.durationMs)} ms`)),
    details: { ...details, maxMs: round(slowest[0]!.durationMs) },
  };
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
function range(calls: FlowRecord[]): string {
  const ds = calls.map((r) => r.durationMs);
  const lo = Math.min(...ds), hi = Math.max(...ds);
  return lo === hi ? `${round(lo)} ms` : `${round(lo)}–${round(hi)} ms`;
}
