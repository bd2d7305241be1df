import { findingEventsClause, tlsCoverageLines, windowLines, type Verdict } from '../verify/index.js';
import { compactFinding, fitRows, fitsWithin, shrinkFindings, truncationNote, type Truncation } from './bound.js';
import type { SourceLabel } from './source.js';
import { findingLines, findingsCount, plural, scalar, sourceWhere, tally, truncatedLines, undecodedServersText } from './text.js';

/** A result that carries a verdict, as its text copy sees it. */
export interface VerdictResult extends Verdict {
  source?: SourceLabel;
  spec?: { name: string; hash: string };
  next?: string;
  truncated?: { note: string };
}

/**
 * The text copy of a verdict: the verdict line (with why, when inconclusive), what was judged
 * (flows, incomplete evidence, the source, the spec when there is one), then every finding on
 * this page with its details and the evidence the result kept, the cursor to the next page, and
 * what the bound cut. `ownKeys` are the fields of a larger result (run_and_verify) its caller shows.
 */
export function verdictResultText(v: VerdictResult, cursorTo = 'verify with the same arguments', ownKeys: readonly string[] = []): string {
  const c = v.coverage;
  const incomplete = c.incomplete ? ` (${tally(c.byReason)})` : '';
  // Fields a newer verdict has that this text does not know yet are still shown, as `name: value`.
  const known = new Set([...VERDICT_KEYS, ...ownKeys]);
  const more = [
    ...Object.entries(v).filter(([k]) => !known.has(k)).map(([k, x]) => `${k}: ${scalar(x)}`),
    ...Object.entries(c).filter(([k]) => !COVERAGE_KEYS.includes(k)).map(([k, x]) => `coverage ${k}: ${scalar(x)}`),
  ];
  const lines = [
    `verdict: ${v.verdict.toUpperCase()}${v.reason ? ` (${v.reason})` : ''}`,
    `judged ${plural(c.flows, 'flow')}${v.source ? ` from ${sourceWhere(v.source)}` : ''}, ${c.incomplete} with incomplete evidence${incomplete}`
      + `${v.spec ? `; spec ${v.spec.name} (hash ${v.spec.hash})` : ''}`,
    ...(v.summary ? [v.summary] : []),
    ...(c.undecoded && c.undecoded.servers.length ? [`not decoded: ${undecodedServersText(c.undecoded)}`] : []),
    ...(c.tls ? tlsCoverageLines(c.tls) : []),
    ...more,
    ...windowLines(v),
    ...(v.partial ? [`partial: ${v.partial.missing.map((m) => `${m.agent} did not answer (${m.error})`).join('; ')}`] : []),
    `${findingsCount(v.findings)}${v.next ? ' on this page' : ''}${v.findings.length ? ':' : ''}`,
    ...v.findings.flatMap((f) => {
      const during = findingEventsClause(f, v.events);
      return [...findingLines(f), ...(during ? [`      ${during}`] : [])];
    }),
    ...(v.next ? [`more findings: pass cursor "${v.next}" to ${cursorTo}`] : []),
    ...truncatedLines(v.truncated),
  ];
  return `${lines.join('\n')}\n`;
}

const VERDICT_KEYS = ['verdict', 'findings', 'reason', 'summary', 'coverage', 'source', 'spec', 'next', 'truncated', 'events', 'eventsOmitted', 'eventsNote', 'usage', 'partial'];
const COVERAGE_KEYS = ['flows', 'incomplete', 'byReason', 'undecoded', 'tls'];

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
export function boundVerdict<T extends Verdict>(value: T, maxTokens: number, text: (v: T) => string = verdictResultText, page: FindingsPage = {}): T & { truncated?: Truncation; next?: string } {
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
