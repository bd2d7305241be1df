import { plural } from './text.js';

/**
 * Every tool result fits a model's context: about 20 000 tokens by default (`--max-tokens`).
 * Tokens are estimated as JSON characters / 4, the usual rule of thumb for JSON and English.
 *
 * What gives way, in order: evidence lists (each finding keeps its own count of evidence in
 * `details.evidenceTotal`), then all but the top findings' evidence and details (a compact form),
 * then findings or rows beyond a page, reachable with a cursor. A finding is never silently
 * dropped. Whatever was cut is stated in the result as `truncated`.
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
  /** Fields of a flow (long strings, long lists) cut to fit, besides its bodies. */
  fieldsCut?: number;
  /** Characters left out of those fields' strings. */
  charsOmitted?: number;
  /** Findings shown in a compact form: kind, severity, a one-line summary, their evidence count. */
  findingsCompacted?: number;
  /** Findings not on this page: `next` (a verify cursor) reaches them. */
  findingsOmitted?: number;
}

/** Whether a result (its structured content and its text copy) fits the budget. */
export type Fits = () => boolean;

export function fitsWithin(maxTokens: number, result: () => { structured: unknown; text: string }): Fits {
  return () => {
    const r = result();
    // The text travels as a JSON string too: measured escaped, as it is sent.
    return tokens(r.structured) + tokens(JSON.stringify(r.text)) + MARGIN <= maxTokens;
  };
}

/** A finding as the bound sees it: its evidence list, and details it may cut. */
export interface EvidenceHolder {
  evidence: unknown[];
  details?: Record<string, unknown>;
  severity?: string;
  summary?: unknown;
}

/** Evidence kept by each of the top findings once the others are compacted. */
const TOP_EVIDENCE = 10;
const SUMMARY_CHARS = 200;
const RANK: Record<string, number> = { error: 0, warning: 1, info: 2 };

/**
 * A finding in its compact form, in place: kind and severity as they were, the summary cut to its
 * first line (at most 200 characters), no evidence, details only `evidenceTotal`.
 */
export function compactFinding(f: EvidenceHolder, evidenceTotal = f.evidence.length): void {
  f.details = { evidenceTotal: f.details?.evidenceTotal ?? evidenceTotal };
  f.evidence = [];
  if (typeof f.summary === 'string') {
    const line = f.summary.split('\n', 1)[0]!;
    f.summary = line.length > SUMMARY_CHARS ? `${line.slice(0, SUMMARY_CHARS - 1)}…` : line;
  }
}

/**
 * Shrinks the findings in place until `fits()`. First one cap on every evidence list (the largest,
 * of at least one entry, that fits, found by bisection). When even one entry each is too much, the
 * top findings (errors first, then in order) keep up to 10 entries and their details, as many of
 * them as fit, and the rest take their compact form. Returns what was cut, or undefined when
 * nothing had to be; if even every finding compact does not fit, the caller pages them.
 */
export function shrinkFindings(findings: EvidenceHolder[], fits: Fits): Omit<Truncation, 'note'> | undefined {
  if (fits()) return undefined;
  const full = findings.map((f) => ({ evidence: f.evidence, details: f.details, summary: f.summary }));
  const total = full.reduce((n, f) => n + f.evidence.length, 0);
  const kept = () => total - findings.reduce((n, f) => n + f.evidence.length, 0);
  const capAt = (cap: number) => findings.forEach((f, i) => { f.evidence = full[i]!.evidence.slice(0, cap); });
  capAt(1);
  if (fits()) {
    // fits() grows with the cap: the largest cap that still fits.
    capAt(fitRows(full.reduce((m, f) => Math.max(m, f.evidence.length), 0), (cap) => { capAt(cap); return fits(); }));
    return { evidenceOmitted: kept() };
  }
  // The order in which findings keep their evidence: errors, then warnings, then the rest.
  const order = findings.map((_, i) => i).sort((a, b) => (RANK[findings[a]!.severity ?? ''] ?? 3) - (RANK[findings[b]!.severity ?? ''] ?? 3) || a - b);
  const topK = (k: number) => order.forEach((i, rank) => {
    const f = findings[i]!;
    Object.assign(f, full[i]);
    if (rank < k) f.evidence = full[i]!.evidence.slice(0, TOP_EVIDENCE);
    else compactFinding(f, full[i]!.evidence.length);
  });
  topK(0);
  const k = fits() ? largest(0, findings.length, (n) => { topK(n); return fits(); }) : 0;
  topK(k);
  const compacted = order.slice(k);
  const detailsOmitted = compacted.filter((i) => Object.keys(full[i]!.details ?? {}).some((key) => key !== 'evidenceTotal')).length;
  return { evidenceOmitted: kept(), ...(detailsOmitted ? { detailsOmitted } : {}), ...(compacted.length ? { findingsCompacted: compacted.length } : {}) };
}

/**
 * The most rows of `count` (at least one, so a cursor always moves on) for which `fits(n)` holds.
 * `fits` must not hold again once it failed for a smaller n.
 */
export function fitRows(count: number, fits: (n: number) => boolean): number {
  return count === 0 ? 0 : largest(1, count, fits);
}

/** The largest n in [lo, hi] for which ok(n) holds (ok holds for all smaller n); lo when none does. */
export function largest(lo: number, hi: number, ok: (n: number) => boolean): number {
  if (ok(hi)) return hi;
  hi--;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
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
  if (cut.evidenceOmitted) parts.push(`${plural(cut.evidenceOmitted, 'evidence entry', 'evidence entries')} left out (every finding is kept; details.evidenceTotal has each one's count)`);
  if (cut.detailsOmitted) parts.push(`details of ${plural(cut.detailsOmitted, 'finding')} cut`);
  if (cut.rowsOmitted) parts.push(`page ended ${plural(cut.rowsOmitted, 'row')} early`);
  if (cut.bodyBytesOmitted) parts.push(`${plural(cut.bodyBytesOmitted, 'body byte')} left out`);
  if (cut.fieldsCut) parts.push(`${plural(cut.fieldsCut, 'long field')} cut (${plural(cut.charsOmitted ?? 0, 'character')} left out; payloads names them)`);
  if (cut.findingsCompacted) parts.push(`${plural(cut.findingsCompacted, 'finding')} in compact form (kind, severity, one-line summary, details.evidenceTotal; errors keep their evidence first)`);
  if (cut.findingsOmitted) parts.push(`${plural(cut.findingsOmitted, 'more finding')} on the next pages (verify with cursor = next)`);
  const note = `result bounded to about ${maxTokens} tokens: ${parts.join('; ') || 'cut'}${more ? `; ${more}` : ''}`;
  return { note, ...cut };
}
