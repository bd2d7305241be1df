import type { FlowRecord } from '../flows/record.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { endpointKey, operation } from './endpoint.js';
import { evidence, type Finding } from './types.js';

/** Outliers must also be this much slower than the median: a 3 ms call is not slow next to a 0.5 ms one. */
const MIN_OUTLIER_EXCESS_MS = 50;

/**
 * `slow`: calls over the latency budget, and outliers — calls more than `outlierFactor` times the
 * median of their endpoint (given `minSamples` calls to judge the median by). One finding per
 * endpoint and cause. Long-lived exchanges (upgrades, tunnels, streaming gRPC) are not calls with
 * a latency, and incomplete ones have no true end: both are left out.
 */
export function detectSlow(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['slow']): Finding[] {
  const out: Finding[] = [];
  for (const calls of groupBy(flows.filter(isTimedCall), (r) => endpointKey(r)).values()) {
    const sorted = calls.map((r) => r.durationMs).sort((a, b) => a - b);
    const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
    const name = `${operation(calls[0]!)} on ${ctx.names.name(calls[0]!.dst)}`;
    const over = calls.filter((r) => r.durationMs > t.budgetMs);
    if (over.length > 0) {
      out.push(finding(over, `${over.length} of ${calls.length} calls to ${name} took longer than the ${t.budgetMs} ms budget (${range(over)})`,
        { cause: 'budget', budgetMs: t.budgetMs, count: over.length, calls: calls.length, medianMs: round(median) }));
    }
    if (calls.length < t.minSamples) continue;
    const outliers = calls.filter((r) => r.durationMs > t.outlierFactor * median && r.durationMs - median >= MIN_OUTLIER_EXCESS_MS && r.durationMs <= t.budgetMs);
    if (outliers.length > 0) {
      out.push(finding(outliers, `${outliers.length} of ${calls.length} calls to ${name} took ${range(outliers)}, over ${t.outlierFactor}× the median ${round(median)} ms`,
        { cause: 'outlier', outlierFactor: t.outlierFactor, count: outliers.length, calls: calls.length, medianMs: round(median) }));
    }
  }
  return out;
}

function isTimedCall(r: FlowRecord): boolean {
  if (r.incomplete || !r.request || !r.response || r.upgrade) return false;
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
