import { verdictText, type Verdict } from '../verify/verdict.js';
import { fitsWithin, shrinkFindings, truncationNote, type Truncation } from './bound.js';

/** Findings shown in a verdict's text copy; all of them are in structuredContent. */
const TEXT_FINDINGS = 12;

/** The verdict's compact text: the verdict line, the first findings with a little evidence each. */
export function compactVerdictText(v: Verdict): string {
  const shown = verdictText({ ...v, findings: v.findings.slice(0, TEXT_FINDINGS) }, 3);
  const more = v.findings.length - TEXT_FINDINGS;
  return more > 0 ? `${shown}  … ${more} more findings in structuredContent\n` : shown;
}

/**
 * Bounds a result that carries a verdict: evidence first, then details; never a finding. Sets
 * `truncated` on the result when anything was cut.
 */
export function boundVerdict<T extends Verdict>(value: T, maxTokens: number, text: (v: T) => string = compactVerdictText): T & { truncated?: Truncation } {
  const result: T & { truncated?: Truncation } = value;
  const cut = shrinkFindings(result.findings, fitsWithin(maxTokens, () => ({ structured: result, text: text(result) })));
  if (cut) result.truncated = truncationNote(maxTokens, cut, 'get_flow on an evidence flow id shows it in full');
  return result;
}
