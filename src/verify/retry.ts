import type { FlowRecord } from '../flows/record.js';
import { callKey, callName, failed } from './calls.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { evidence, type Finding } from './types.js';

export type BackoffPattern = 'constant' | 'linear' | 'exponential' | 'jittered' | 'single';

/**
 * How delays between attempts grow. Constant: all within 15 % of their mean. Exponential: each about
 * double the last (ratio 1.6–2.6). Linear: about equal steps. Anything else that grows is jittered;
 * anything that does not grow is constant.
 */
export function backoffPattern(delaysMs: number[]): BackoffPattern {
  if (delaysMs.length < 2) return 'single';
  const mean = delaysMs.reduce((a, b) => a + b, 0) / delaysMs.length;
  if (delaysMs.every((d) => Math.abs(d - mean) <= 0.15 * mean)) return 'constant';
  const ratios = delaysMs.slice(1).map((d, i) => d / delaysMs[i]!);
  if (ratios.every((q) => q >= 1.6 && q <= 2.6)) return 'exponential';
  const steps = delaysMs.slice(1).map((d, i) => d - delaysMs[i]!);
  const step = steps.reduce((a, b) => a + b, 0) / steps.length;
  if (step > 0 && steps.every((s) => Math.abs(s - step) <= 0.2 * step)) return 'linear';
  const grows = delaysMs[delaysMs.length - 1]! > delaysMs[0]! * 1.3;
  return grows ? 'jittered' : 'constant';
}

/**
 * The same logical call repeated after a failure: attempts, the delays between them, and the
 * pattern. Delays that do not grow are errors ("retries without backoff"); growing ones are info.
 */
export function detectRetries(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['retry']): Finding[] {
  const byKey = groupBy(flows, callKey);
  const findings: Finding[] = [];
  for (const calls of byKey.values()) {
    calls.sort((a, b) => a.start - b.start);
    let run: FlowRecord[] = [];
    const flush = () => {
      if (run.length >= 2) findings.push(finding(run, ctx));
      run = [];
    };
    for (const c of calls) {
      const prev = run[run.length - 1];
      // A retry follows a failed attempt, within the gap.
      if (prev && failed(prev) && (c.start - prev.start) * 1000 <= t.maxGapMs) run.push(c);
      else {
        flush();
        run = [c];
      }
    }
    flush();
  }
  return findings;
}

function finding(run: FlowRecord[], ctx: DetectContext): Finding {
  const delaysMs = run.slice(1).map((r, i) => Math.round((r.start - run[i]!.end) * 1000 * 100) / 100);
  const pattern = backoffPattern(delaysMs);
  const grows = pattern === 'exponential' || pattern === 'linear' || pattern === 'jittered';
  // One retry has one delay: there is no growth to judge, so it is worth a look, not an error.
  const severity = grows ? 'info' : pattern === 'single' ? 'warning' : 'error';
  const secs = delaysMs.map((d) => `${(d / 1000).toFixed(2)} s`).join(', ');
  const last = run[run.length - 1]!;
  return {
    kind: 'retry',
    severity,
    summary: `${run.length} attempts of ${callName(run[0]!, ctx.names)}; retries at ${secs} (${pattern}${severity === 'error' ? ': delays do not grow' : ''})${failed(last) ? '; the last attempt failed too' : ''}`,
    evidence: run.map((r, i) => evidence(r, `attempt ${i + 1}${failed(r) ? ', failed' : ', succeeded'}`)),
    details: { attempts: run.length, delaysMs, pattern, succeeded: !failed(last) },
  };
}
