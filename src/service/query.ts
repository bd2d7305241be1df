import type { FlowRecord } from '../flows/index.js';
import { compileFilter, FilterError, type FlowPredicate } from '../query/index.js';
import { compareKeys, CursorError, decodeCursor, encodeCursor, type FlowKey } from '../store/index.js';
import { SourceError } from './errors.js';

/** The most flows one page holds; a larger `limit` is clamped (the API) or refused (MCP's schema). */
export const MAX_PAGE = 1000;
/** A page's size when the query gives none. */
export const DEFAULT_PAGE = 100;

/**
 * A query for a page of flows, as both front doors take it: the HTTP API from its query string and
 * the MCP tools from their arguments. Its one schema (zod) is requests/flow-query.ts, which only the
 * front doors load: this stage, and the CLI on top of it, start without zod.
 */
export interface FlowQuery {
  filter?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
  snapshot?: string;
}

/** A page of flows in start order (then id). */
export interface FlowPage {
  flows: FlowRecord[];
  /** Pass as `cursor` for the next page; absent on the last. */
  next?: string;
  /** How many flows match in all, where the source knows it without reading them (a capture file). */
  matched?: number;
  /** Flows of this page's range the source could not read, and why (a store's damaged block). */
  lost?: string;
  /**
   * Set by the hub when agents did not answer: the page holds what the others had. `missing`
   * names each agent (its URL) and why.
   */
  partial?: { missing: { agent: string; error: string }[] };
}

export { timeOf } from './time.js';

/** A CEL filter compiled; a FilterError (its message starts "filter: …") when it does not compile. */
export function predicateOf(expr: string | undefined): FlowPredicate | undefined {
  return expr === undefined || expr.trim() === '' ? undefined : compileFilter(expr);
}

/** Predicates that must all hold, as one (undefined when there are none). */
export function allOf(...ps: (FlowPredicate | undefined)[]): FlowPredicate | undefined {
  const fs = ps.filter((p): p is FlowPredicate => p !== undefined);
  return fs.length === 0 ? undefined : fs.length === 1 ? fs[0] : (r) => fs.every((f) => f(r));
}

/**
 * The one cursor of flow pages, whatever the source: the key (start, id) of the last flow of a
 * page, as the store encodes it (store/keys.ts). A position in a total order, not an offset, so it
 * stays valid while flows arrive and is the same for a capture file, a store and an agent.
 */
export function cursorAfter(last: FlowKey): string {
  return encodeCursor(last);
}

/** The key a cursor points after; a SourceError for a cursor no source gave. */
export function cursorKey(cursor: string): FlowKey {
  try {
    return decodeCursor(cursor);
  } catch (e) {
    if (e instanceof CursorError) throw badCursor(cursor);
    throw e;
  }
}

/** A cursor no source gave, in the words every front door uses. */
export function badCursor(cursor: string): SourceError {
  return new SourceError('bad', `cursor: "${cursor.slice(0, 40)}" is not a cursor this server gave: pass the "next" of the previous page`);
}

/**
 * One page of flows already held in start order (a decoded capture): those after the cursor,
 * within since/until on their start, matching `keep`.
 */
export function pageOf(flows: readonly FlowRecord[], q: { since?: number; until?: number; keep?: FlowPredicate; limit: number; cursor?: string }): FlowPage {
  const after = q.cursor !== undefined ? cursorKey(q.cursor) : undefined;
  const match = (f: FlowRecord) => (q.since === undefined || f.start >= q.since) && (q.until === undefined || f.start <= q.until) && (!q.keep || q.keep(f));
  let matched = 0;
  const out: FlowRecord[] = [];
  let more = false;
  for (const f of flows) {
    if (!match(f)) continue;
    matched++;
    if (after && compareKeys(f, after) <= 0) continue;
    if (out.length < q.limit) out.push(f);
    else more = true;
  }
  return { flows: out, ...(more ? { next: cursorAfter(out[out.length - 1]!) } : {}), matched };
}

export { FilterError };
