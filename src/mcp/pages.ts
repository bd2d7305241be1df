import { z } from 'zod';
import { filterOf, window } from './args.js';
import { flowQueryFields } from '../requests/index.js';
import { cursorAfter, MAX_PAGE, type FlowPage } from '../service/index.js';
import { fitRows, fitsWithin, truncationNote, type Truncation } from './bound.js';
import type { McpContext } from './context.js';
import { ArgError } from './errors.js';
import { flowRow, flowRowSchema, rowLine, type FlowRow } from './rows.js';
import { knownSnapshot, needsSnapshot } from './source.js';
import { plural, truncatedLines } from './text.js';

export const DEFAULT_ROWS = 50;
export const MAX_ROWS = MAX_PAGE;

/** The flow query both front doors take (service/query.ts FlowQuery), as tool arguments. */
export const pageArgs = {
  filter: flowQueryFields.filter.optional(),
  since: flowQueryFields.since.optional(),
  until: flowQueryFields.until.optional(),
  limit: flowQueryFields.limit.optional().describe(`rows per page (default ${DEFAULT_ROWS}); a page may end earlier to stay bounded, with a cursor`),
  cursor: flowQueryFields.cursor.optional(),
  snapshot: flowQueryFields.snapshot.optional(),
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

/** A page of flow rows as list_flows and analyze_capture send it. */
export interface RowPage {
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
 * One page of flow rows, in start order, from a FlowSource: a capture file (offline, decoded here)
 * or the backend. Both cut pages with the same cursors (service/query.ts). A page ends early when
 * its rows would push the result past the bound; `reserved` is what the rest of the result costs.
 */
export async function flowPage(ctx: McpContext, q: PageQuery, reserved: number): Promise<RowPage> {
  filterOf(q.filter);
  window(q);
  const limit = q.limit ?? DEFAULT_ROWS;
  // Measured as the page would be sent, with its text copy and a truncation statement.
  const fits = (rows: FlowRow[], extra: Omit<RowPage, 'flows'>) => (n: number) =>
    fitsWithin(ctx.maxTokens - reserved, () => {
      const page = { flows: rows.slice(0, n), ...extra, truncated: SAMPLE_TRUNCATION };
      return { structured: page, text: pageText(page) };
    })();
  const query = { filter: q.filter, since: q.since, until: q.until, cursor: q.cursor };
  let ask: (n: number) => Promise<FlowPage>;
  if (q.capture !== undefined) {
    if (q.snapshot !== undefined) throw new ArgError('snapshot', 'give capture or snapshot, not both');
    const c = await ctx.captures.load(q.capture, ctx.cwd);
    ask = (n) => c.source.query({ ...query, limit: n });
  } else {
    const backend = await ctx.backend();
    if (q.snapshot !== undefined) await knownSnapshot(backend, q.snapshot, 'snapshot');
    else needsSnapshot(backend);
    ask = (n) => backend.query({ ...query, snapshot: q.snapshot, limit: n });
  }
  let page = await ask(limit);
  let rows = page.flows.map(flowRow);
  const asked = rows.length;
  const matched = page.matched !== undefined ? { matched: page.matched } : {};
  const last = page.flows.at(-1);
  const n = fitRows(rows.length, fits(rows, { ...matched, next: page.next ?? (last ? cursorAfter(last) : '') }));
  // The cursor marks where the page ended: ask again for the rows that fit, so `next` continues
  // right after the last row returned.
  if (n < asked) {
    page = await ask(n);
    rows = page.flows.map(flowRow);
  }
  return { flows: rows, ...matched, ...(page.next ? { next: page.next } : {}), ...cut(ctx, asked - rows.length) };
}

/** Stands in for the truncation statement while measuring: as long as the real one. */
const SAMPLE_TRUNCATION = truncationNote(99_999, { rowsOmitted: 999 }, 'pass "next" as cursor for the rest');

function cut(ctx: McpContext, omitted: number): { truncated?: Truncation } {
  return omitted > 0 ? { truncated: truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'pass "next" as cursor for the rest') } : {};
}

/** The text copy of a page: what the counts count, the cursor, every row of the page, what was cut. */
export function pageText(p: RowPage): string {
  const head = `${plural(p.flows.length, 'flow')} on this page${p.matched !== undefined ? `, of ${p.matched} matching` : ''}; `
    + `${p.next ? `more: pass cursor "${p.next}"` : 'no more pages'}`;
  const legend = p.flows.length ? ['rows: id, start, client → server, protocol and call, status, duration'] : [];
  return [head, ...legend, ...p.flows.map(rowLine), ...truncatedLines(p.truncated)].join('\n');
}
