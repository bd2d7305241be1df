import type { FlowRecord } from '../flows/record.js';
import { DEFAULT_MAX_EVIDENCE, type DetectorConfig } from './config.js';
import { detectContext, type DetectContext } from './context.js';
import { runDetectors } from './detectors.js';
import { ServiceNames } from './services.js';
import type { Finding } from './types.js';

export type VerdictName = 'pass' | 'fail' | 'inconclusive';

/** The JSON contract of `tapwire verify --format json` (issue 5). */
export interface Verdict {
  verdict: VerdictName;
  findings: Finding[];
  /** Why the verdict is inconclusive, and how whole the evidence was. */
  reason?: string;
  coverage: { flows: number; incomplete: number; byReason: Record<string, number> };
}

export interface VerifyOptions {
  /** Thresholds, severities and switches per detector (a spec's `detectors:`). */
  detectors?: DetectorConfig;
  names?: ServiceNames;
  /** Evidence entries listed per finding; the total is in details.evidenceTotal. */
  maxEvidence?: number;
  /** A spec's checks: their findings, and reasons they could not judge. */
  checks?: (flows: readonly FlowRecord[], ctx: DetectContext) => { findings: Finding[]; inconclusive: string[] };
}

/**
 * Runs the built-in detectors and a spec's checks. Fail when any finding is an error, even if
 * evidence is incomplete; inconclusive when there is no error but evidence is missing (gaps,
 * unmatched halves, statements prepared before the capture, a check with nothing to judge) or
 * there are no flows at all; pass otherwise.
 */
export function verify(flows: readonly FlowRecord[], opts: VerifyOptions = {}): Verdict {
  const ctx = detectContext(flows, opts.names ?? new ServiceNames());
  const checked = opts.checks?.(flows, ctx) ?? { findings: [], inconclusive: [] };
  const findings = [...runDetectors(flows, ctx, opts.detectors), ...checked.findings]
    .sort((a, b) => rank(a.severity) - rank(b.severity) || (a.evidence[0]?.time ?? 0) - (b.evidence[0]?.time ?? 0));
  for (const f of findings) capEvidence(f, opts.maxEvidence ?? DEFAULT_MAX_EVIDENCE);
  const byReason: Record<string, number> = {};
  let incomplete = 0;
  for (const f of flows) {
    if (!f.incomplete) continue;
    incomplete++;
    const k = f.incompleteReason ?? 'unknown';
    byReason[k] = (byReason[k] ?? 0) + 1;
  }
  const coverage = { flows: flows.length, incomplete, byReason };
  if (findings.some((f) => f.severity === 'error')) return { verdict: 'fail', findings, coverage };
  const reasons: string[] = [];
  if (flows.length === 0) reasons.push('no flows to verify');
  else if (incomplete > 0) reasons.push(`${incomplete} of ${flows.length} flows have incomplete evidence (${Object.entries(byReason).map(([k, n]) => `${k} ×${n}`).join(', ')})`);
  reasons.push(...checked.inconclusive);
  if (reasons.length > 0) return { verdict: 'inconclusive', findings, coverage, reason: reasons.join('; ') };
  return { verdict: 'pass', findings, coverage };
}

/** Evidence lists are capped per finding, the total stated; a finding itself is never dropped. */
function capEvidence(f: Finding, max: number): void {
  if (f.details.evidenceTotal === undefined) f.details.evidenceTotal = f.evidence.length;
  if (f.evidence.length > max) f.evidence = f.evidence.slice(0, max);
}

function rank(s: Finding['severity']): number {
  return s === 'error' ? 0 : s === 'warning' ? 1 : 2;
}

/** Human text: the verdict, then each finding with its evidence (capped, total stated). */
export function verdictText(v: Verdict, maxEvidence = 5): string {
  const lines = [`verdict: ${v.verdict.toUpperCase()}${v.reason ? ` (${v.reason})` : ''}`];
  for (const f of v.findings) {
    lines.push(`  ${f.severity.toUpperCase().padEnd(7)} ${f.kind}: ${f.summary}`);
    for (const e of f.evidence.slice(0, maxEvidence)) {
      lines.push(`           flow ${e.flowId}${e.frames ? ` frames ${e.frames[0]}-${e.frames[1]}` : ''} at ${new Date(e.time * 1000).toISOString()}: ${e.summary}`);
    }
    const total = typeof f.details.evidenceTotal === 'number' ? f.details.evidenceTotal : f.evidence.length;
    if (total > maxEvidence) lines.push(`           … ${total - Math.min(maxEvidence, f.evidence.length)} more (${total} in all)`);
  }
  if (v.findings.length === 0) lines.push('  no findings');
  return `${lines.join('\n')}\n`;
}
