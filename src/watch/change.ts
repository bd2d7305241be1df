import { findingFingerprint, type Finding, type VerdictName } from '../verify/index.js';

/**
 * What makes a standing spec's verdict change, and the one line that tells a person (or an agent
 * that just redeployed) about it. Findings are compared by fingerprint (numbers masked, as `tapwire
 * diff` does), so "12 identical calls" becoming "13 identical calls" is the same problem, not news.
 */

/** Findings that can change a verdict or deserve attention: info findings come and go silently. */
export function notable(fs: readonly Finding[]): Map<string, Finding> {
  const out = new Map<string, Finding>();
  for (const f of fs) {
    if (f.severity === 'info') continue;
    const fp = findingFingerprint(f);
    if (!out.has(fp)) out.set(fp, f);
  }
  return out;
}

export interface FindingDelta {
  appeared: Finding[];
  /** "kind: summary" of each finding gone, as it read when last seen. */
  resolved: string[];
}

export function findingDelta(before: Map<string, Finding>, after: Map<string, Finding>): FindingDelta {
  return {
    appeared: [...after].filter(([fp]) => !before.has(fp)).map(([, f]) => f),
    resolved: [...before].filter(([fp]) => !after.has(fp)).map(([, f]) => headline(f)),
  };
}

/** The state a summary line describes. */
export interface SummaryInput {
  spec: string;
  previous: VerdictName | null;
  verdict: VerdictName;
  reason?: string;
  flows: number;
  windowSec: number;
  /** Error and warning findings now, in verify()'s order (errors first). */
  current: Finding[];
}

/**
 * One line: `demo.yaml: now FAILING — retry: 4 attempts of POST /payments … (evidence flow
 * cd357717c2fd-1 at 2026-11-21T12:15:35.728Z)`, `demo.yaml: now passing (82 flows in the last
 * 5m; 6 findings resolved)`, or `still FAILING — new warning: …` when only the findings moved.
 */
export function summaryLine(s: SummaryInput, d: FindingDelta): string {
  const state = s.verdict === 'pass' ? 'passing' : s.verdict === 'fail' ? 'FAILING' : 'INCONCLUSIVE';
  const moved = s.previous === null ? '' : s.previous === s.verdict ? 'still ' : 'now ';
  const head = `${s.spec}: ${moved}${state}`;
  const more = (n: number, what: string) => (n > 0 ? `; ${n} more ${what}` : '');
  const resolved = d.resolved.length > 0 ? `${d.resolved.length} finding${d.resolved.length > 1 ? 's' : ''} resolved` : '';
  if (s.verdict === 'fail' && moved !== 'still ') {
    const errors = s.current.filter((f) => f.severity === 'error');
    const lead = d.appeared.find((f) => f.severity === 'error') ?? errors[0]!;
    return `${head} — ${withEvidence(lead)}${more(errors.length - 1, `error${errors.length > 2 ? 's' : ''}`)}`;
  }
  if (moved === 'still ' && d.appeared.length > 0) {
    const lead = d.appeared[0]!;
    return `${head} — new ${lead.severity}: ${withEvidence(lead)}${more(d.appeared.length - 1, 'new')}${resolved ? `; ${resolved}` : ''}`;
  }
  if (moved === 'still ') return `${head} — resolved: ${d.resolved[0]}${more(d.resolved.length - 1, 'resolved')}`;
  if (s.verdict === 'inconclusive') return `${head} — ${s.reason ?? 'evidence is incomplete'}`;
  const facts = [`${s.flows} flow${s.flows === 1 ? '' : 's'} in the last ${duration(s.windowSec)}`, resolved].filter(Boolean).join('; ');
  const warnings = s.current.filter((f) => f.severity === 'warning');
  const warned = warnings.length > 0 ? ` — warning: ${withEvidence(warnings[0]!)}${more(warnings.length - 1, 'warnings')}` : '';
  return `${head} (${facts})${warned}`;
}

/** "kind: summary", without repeating a kind the summary already starts with (`check "…": …`). */
export function headline(f: Finding): string {
  return f.summary.startsWith(`${f.kind} `) ? f.summary : `${f.kind}: ${f.summary}`;
}

function withEvidence(f: Finding): string {
  const e = f.evidence[0];
  return e ? `${headline(f)} (evidence flow ${e.flowId} at ${new Date(e.time * 1000).toISOString()})` : headline(f);
}

/** 300 → "5m", 90 → "90s", 7200 → "2h". */
export function duration(sec: number): string {
  if (sec >= 3600 && sec % 3600 === 0) return `${sec / 3600}h`;
  if (sec >= 60 && sec % 60 === 0) return `${sec / 60}m`;
  return `${sec}s`;
}
