import type { FlowRecord } from '../flows/record.js';
import { detectErrorStatus } from './errors.js';
import { detectRedundant } from './redundant.js';
import { detectUnparameterisedSql } from './sql.js';
import { detectRetries } from './retry.js';
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

/**
 * Runs the built-in detectors. Fail when any finding is an error, even if evidence is incomplete;
 * inconclusive when there is no error but evidence is missing (gaps, unmatched halves, statements
 * prepared before the capture) or there are no flows at all; pass otherwise.
 */
export function verify(flows: readonly FlowRecord[]): Verdict {
  const findings = [...detectRetries(flows), ...detectRedundant(flows), ...detectErrorStatus(flows), ...detectUnparameterisedSql(flows)]
    .sort((a, b) => rank(a.severity) - rank(b.severity) || (a.evidence[0]?.time ?? 0) - (b.evidence[0]?.time ?? 0));
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
  if (flows.length === 0) return { verdict: 'inconclusive', findings, coverage, reason: 'no flows to verify' };
  if (incomplete > 0) {
    return { verdict: 'inconclusive', findings, coverage, reason: `${incomplete} of ${flows.length} flows have incomplete evidence (${Object.entries(byReason).map(([k, n]) => `${k} ×${n}`).join(', ')})` };
  }
  return { verdict: 'pass', findings, coverage };
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
    if (f.evidence.length > maxEvidence) lines.push(`           … ${f.evidence.length - maxEvidence} more (${f.evidence.length} in all)`);
  }
  if (v.findings.length === 0) lines.push('  no findings');
  return `${lines.join('\n')}\n`;
}
