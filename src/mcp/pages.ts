import { z } from 'zod';
import { cursorIn, cursorOut, filterArg, filterOf, inWindow, timeArg, window } from './args.js';
import { fitRows, fitsWithin, truncationNote, type Truncation } from './bound.js';
import type { McpContext } from './context.js';
import { ArgError } from './errors.js';
import { flowRow, flowRowSchema, rowLine, type FlowRow } from './rows.js';
import { knownSnapshot, needsSnapshot } from './source.js';
import { plural, truncatedLines } from './text.js';

export const DEFAULT_ROWS = 50;
export const MAX_ROWS = 1000;

export const pageArgs = {
  filter: filterArg.optional(),
  since: timeArg('flows that started at or after this time').optional(),
  until: timeArg('flows that started at or before this time').optional(),
  limit: z.number().int().min(1).max(MAX_ROWS).optional().describe(`rows per page (default ${DEFAULT_ROWS}); a page may end earlier to stay bounded, with a cursor`),
  cursor: z.string().min(1).max(4096).optional().describe('"next" of the previous page'),
  snapshot: z.string().min(1).max(200).optional().describe('the flows of this snapshot (start_snapshot, list_snapshots)'),
};

export interface PageQuery {
  capture?: string;
  /** The flows of one snapshot of the backend. */
  snapshot?: string;
  filter?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export interface FlowPage {
  flows: FlowRow[];
  /** Pass as `cursor` for the next page; absent on the last. */
  next?: string;
  /** Capture files: how many flows match in all. */
  matched?: number;
  truncated?: Truncation;
}

export const pageShape = {
  flows: z.array(flowRowSchema),
  next: z.string().optional().describe('pass as cursor for the next page; absent on the last page'),
  matched: z.number().int().optional().describe('capture files: flows matching in all'),
};

/**
 * One page of flow rows, in start order: from a capture file (offline, cut here, with this
 * server's cursors), else from the backend (its own cursors). A page ends early when its rows
 * would push the result past the bound; `reserved` is what the rest of the result costs.
 */
export async function flowPage(ctx: McpContext, q: PageQuery, reserved: number): Promise<FlowPage> {
  const keep = filterOf(q.filter);
  const win = window(q);
  const limit = q.limit ?? DEFAULT_ROWS;
  // Measured as the page would be sent, with its text copy and a truncation statement.
  const fits = (rows: FlowRow[], extra: Omit<FlowPage, 'flows'>) => (n: number) =>
    fitsWithin(ctx.maxTokens - reserved, () => {
      const page = { flows: rows.slice(0, n), ...extra, truncated: SAMPLE_TRUNCATION };
      return { structured: page, text: pageText(page) };
    })();
  if (q.capture !== undefined) {
    if (q.snapshot !== undefined) throw new ArgError('snapshot', 'give capture or snapshot, not both');
    const c = await ctx.captures.load(q.capture, ctx.cwd);
    const query = { capture: c.path, filter: q.filter, since: q.since, until: q.until };
    const offset = cursorIn(q.cursor, query);
    const matched = c.flows.filter((f) => inWindow(f, win) && (!keep || keep(f)));
    const rows = matched.slice(offset, offset + limit).map(flowRow);
    const n = fitRows(rows.length, fits(rows, { matched: matched.length, next: cursorOut(matched.length, query) }));
    const end = offset + n;
    return {
      flows: rows.slice(0, n), matched: matched.length,
      ...(end < matched.length ? { next: cursorOut(end, query) } : {}),
      ...cut(ctx, rows.length - n),
    };
  }
  const backend = await ctx.backend();
  if (q.snapshot !== undefined) await knownSnapshot(backend, q.snapshot, 'snapshot');
  else needsSnapshot(backend);
  const ask = (n: number) => backend.flows({ snapshot: q.snapshot, filter: q.filter, since: q.since, until: q.until, limit: n, cursor: q.cursor });
  let page = await ask(limit);
  let rows = page.flows.map(flowRow);
  const asked = rows.length;
  const n = fitRows(rows.length, fits(rows, { next: page.next ?? '' }));
  // The backend's cursor marks where its page ended: ask again for the rows that fit, so `next`
  // continues right after the last row returned.
  if (n < asked) {
    page = await ask(n);
    rows = page.flows.map(flowRow);
  }
  return { flows: rows, ...(page.next ? { next: page.next } : {}), ...cut(ctx, asked - rows.length) };
}

/** Stands in for the truncation statement while measuring: as long as the real one. */
const SAMPLE_TRUNCATION = truncationNote(99_999, { rowsOmitted: 999 }, 'pass "next" as cursor for the rest');

function cut(ctx: McpContext, omitted: number): { truncated?: Truncation } {
  return omitted > 0 ? { truncated: truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'pass "next" as cursor for the rest') } : {};
}

/** The text copy of a page: what the counts count, the cursor, every row of the page, what was cut. */
export function pageText(p: FlowPage): string {
  const head = `${plural(p.flows.length, 'flow')} on this page${p.matched !== undefined ? `, of ${p.matched} matching` : ''}; `
    + `${p.next ? `more: pass cursor "${p.next}"` : 'no more pages'}`;
  const legend = p.flows.length ? ['rows: id, start, client → server, protocol and call, status, duration'] : [];
  return [head, ...legend, ...p.flows.map(rowLine), ...truncatedLines(p.truncated)].join('\n');
}
