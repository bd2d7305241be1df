import { verdictText, type Verdict } from '../verify/verdict.js';
import { compactFinding, fitRows, fitsWithin, shrinkFindings, truncationNote, type Truncation } from './bound.js';

/** Findings shown in a verdict's text copy; all of them are in structuredContent. */
const TEXT_FINDINGS = 12;

/** The verdict's compact text: the verdict line, the first findings with a little evidence each. */
export function compactVerdictText(v: Verdict): string {
  const shown = verdictText({ ...v, findings: v.findings.slice(0, TEXT_FINDINGS) }, 3);
  const more = v.findings.length - TEXT_FINDINGS;
  return more > 0 ? `${shown}  … ${more} more findings in structuredContent\n` : shown;
}

/** Where a page of findings starts, and the cursor that continues from an offset. */
export interface FindingsPage {
  offset?: number;
  cursor?: (offset: number) => string;
}

/**
 * Bounds a result that carries a verdict: evidence first, then all but the top findings (errors
 * first) take a compact form; if even that is too much, the findings are paged: this page holds
 * as many as fit in compact form in three quarters of the bound (the rest is for its top
 * findings' evidence), and `next` continues. A finding is never dropped without a cursor to it.
 * Sets `truncated` when anything was cut. Without `page.cursor` nothing is paged.
 */
export function boundVerdict<T extends Verdict>(value: T, maxTokens: number, text: (v: T) => string = compactVerdictText, page: FindingsPage = {}): T & { truncated?: Truncation; next?: string } {
  const result: T & { truncated?: Truncation; next?: string } = value;
  const all = value.findings, offset = page.offset ?? 0;
  const within = (tokens: number) => fitsWithin(tokens, () => ({ structured: result, text: text(result) }));
  // Copies: bounding cuts in place, and a smaller page starts again from the full findings.
  const take = (n: number) => {
    result.findings = structuredClone(all.slice(offset, offset + n));
    if (offset + n < all.length && page.cursor) result.next = page.cursor(offset + n);
    else delete result.next;
  };
  const rest = all.length - offset;
  take(rest);
  let cut = shrinkFindings(result.findings, within(maxTokens));
  // shrinkFindings answers undefined when the page already fits: no need to measure it again.
  if (page.cursor && cut && !within(maxTokens)()) {
    const n = fitRows(rest, (k) => {
      take(k);
      for (const f of result.findings) compactFinding(f);
      return within(Math.floor(maxTokens * 0.75))();
    });
    take(n);
    cut = { ...shrinkFindings(result.findings, within(maxTokens)), ...(rest > n ? { findingsOmitted: rest - n } : {}) };
  }
  if (cut) result.truncated = truncationNote(maxTokens, cut, 'get_flow on an evidence flow id shows it in full');
  return result;
}
