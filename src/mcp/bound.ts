/**
 * Every tool result fits a model's context: about 20 000 tokens by default (`--max-tokens`).
 * Tokens are estimated as JSON characters / 4, the usual rule of thumb for JSON and English.
 *
 * What gives way, in order: evidence lists (each finding keeps its own count of evidence in
 * `details.evidenceTotal`), then findings' details, then rows, which end the page early with a
 * cursor to the rest. A finding itself is never dropped. Whatever was cut is stated in the result
 * as `truncated`.
 */

export const DEFAULT_MAX_TOKENS = 20_000;

/** Room for the `truncated` statement itself and the JSON-RPC envelope around the result. */
const MARGIN = 400;

export function tokens(v: unknown): number {
  return Math.ceil((typeof v === 'string' ? v.length : JSON.stringify(v).length) / 4);
}

/** What a bounded result left out, stated in the result. */
export interface Truncation {
  /** Plain words: what was cut, and how to get the rest. */
  note: string;
  /** Evidence entries left out across all findings. */
  evidenceOmitted?: number;
  /** Findings whose details were cut to their evidence total. */
  detailsOmitted?: number;
  /** Rows this page ended early by (when known); `next` continues from there. */
  rowsOmitted?: number;
  /** Body bytes left out of the flow. */
  bodyBytesOmitted?: number;
}

/** Whether a result (its structured content and its text copy) fits the budget. */
export type Fits = () => boolean;

export function fitsWithin(maxTokens: number, result: () => { structured: unknown; text: string }): Fits {
  return () => {
    const r = result();
    return tokens(r.structured) + tokens(r.text) + MARGIN <= maxTokens;
  };
}

/** A finding as the bound sees it: its evidence list, and details it may cut. */
export interface EvidenceHolder {
  evidence: unknown[];
  details?: Record<string, unknown>;
}

/**
 * Shrinks the findings in place until `fits()`: first one cap on every evidence list (the largest
 * that fits, found by bisection), then details cut to the evidence total, then summaries cut to a
 * line. Returns what was cut, or undefined when nothing had to be.
 */
export function shrinkFindings(findings: EvidenceHolder[], fits: Fits): Omit<Truncation, 'note'> | undefined {
  if (fits()) return undefined;
  const full = findings.map((f) => f.evidence);
  const total = full.reduce((n, e) => n + e.length, 0);
  const capAt = (cap: number) => findings.forEach((f, i) => { f.evidence = full[i]!.slice(0, cap); });
  let lo = 0, hi = full.reduce((m, e) => Math.max(m, e.length), 0);
  capAt(0);
  if (fits()) {
    // fits() grows with the cap: the largest cap that still fits.
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      capAt(mid);
      if (fits()) lo = mid;
      else hi = mid - 1;
    }
    capAt(lo);
    return { evidenceOmitted: total - findings.reduce((n, f) => n + f.evidence.length, 0) };
  }
  let detailsOmitted = 0;
  for (const f of findings) {
    if (!f.details) continue;
    const kept = f.details.evidenceTotal === undefined ? {} : { evidenceTotal: f.details.evidenceTotal };
    if (Object.keys(f.details).length > Object.keys(kept).length) detailsOmitted++;
    f.details = kept;
  }
  if (!fits()) {
    for (const f of findings as { summary?: unknown }[]) {
      if (typeof f.summary === 'string' && f.summary.length > 200) f.summary = `${f.summary.slice(0, 199)}…`;
    }
  }
  return { evidenceOmitted: total, ...(detailsOmitted ? { detailsOmitted } : {}) };
}

/**
 * The most rows of `count` (at least one, so a cursor always moves on) for which `fits(n)` holds.
 * `fits` must not hold again once it failed for a smaller n.
 */
export function fitRows(count: number, fits: (n: number) => boolean): number {
  if (count === 0 || fits(count)) return count;
  let lo = 1, hi = count - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Shortens a list of the result (through `set`) to the most rows that still let it fit; returns
 * how many rows were left out.
 */
export function cutRows<T>(all: readonly T[], set: (rows: T[]) => void, fits: Fits): number {
  const n = fitRows(all.length, (k) => {
    set(all.slice(0, k));
    return fits();
  });
  set(all.slice(0, n));
  return all.length - n;
}

/** The sentence for a truncation: what was cut, then how to get the rest. */
export function truncationNote(maxTokens: number, cut: Omit<Truncation, 'note'>, more?: string): Truncation {
  const parts: string[] = [];
  if (cut.evidenceOmitted) parts.push(`${cut.evidenceOmitted} evidence entries left out (every finding is kept; details.evidenceTotal has each one's count)`);
  if (cut.detailsOmitted) parts.push(`details of ${cut.detailsOmitted} findings cut`);
  if (cut.rowsOmitted) parts.push(`page ended ${cut.rowsOmitted} rows early`);
  if (cut.bodyBytesOmitted) parts.push(`${cut.bodyBytesOmitted} body bytes left out`);
  const note = `result bounded to about ${maxTokens} tokens: ${parts.join('; ') || 'cut'}${more ? `; ${more}` : ''}`;
  return { note, ...cut };
}
