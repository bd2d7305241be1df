import type { FlowRecord } from '../flows/index.js';
import type { Snapshot } from '../store/index.js';
import { ServiceMap } from '../verify/index.js';
import { SourceError } from './errors.js';
import { allOf, DEFAULT_PAGE, MAX_PAGE, predicateOf, timeOf, type FlowQuery, type FlowPage } from './query.js';
import type { FlowPredicate } from '../query/index.js';
import type { ServiceMapAnswer } from './source.js';

/** Flows a service map reads at most: a bigger window is answered in part, and says so. */
export const MAX_MAP_FLOWS = 200_000;
/** A store's service map window when none is given, seconds. */
export const DEFAULT_MAP_WINDOW = 15 * 60;

/** A query as a source applies it: times in epoch seconds, the snapshot's window and filter folded in. */
export interface ResolvedQuery {
  since?: number;
  until?: number;
  keep?: FlowPredicate;
  limit: number;
  cursor?: string;
}

/**
 * The query's since/until/filter narrowed by the snapshot's own (its window and filter come
 * first), and `limit` clamped to 1..MAX_PAGE. A SourceError for a bad time; a FilterError for a
 * filter that does not compile; `missing` when the snapshot is unknown.
 */
export function resolve(q: FlowQuery, snap?: Snapshot | undefined): ResolvedQuery {
  if (q.snapshot !== undefined && !snap) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
  const since = max(snap?.since, timeOf('since', q.since));
  const until = min(snap?.until, timeOf('until', q.until));
  const keep = allOf(predicateOf(snap?.filter), predicateOf(q.filter));
  const limit = Math.min(MAX_PAGE, Math.max(1, Math.floor(q.limit ?? DEFAULT_PAGE)));
  return { since, until, keep, limit, cursor: q.cursor };
}

/**
 * The service map of whatever `page` reads, page by page up to MAX_MAP_FLOWS (past it the answer
 * says where it stopped).
 */
export async function mapOf(window: { since?: number; until?: number }, page: (cursor?: string) => Promise<FlowPage>): Promise<ServiceMapAnswer> {
  const map = new ServiceMap();
  let read = 0;
  let cursor: string | undefined;
  do {
    const p = await page(cursor);
    for (const r of p.flows) map.add(r);
    read += p.flows.length;
    cursor = p.next;
  } while (cursor && read < MAX_MAP_FLOWS);
  return { ...window, flows: read, ...(cursor ? { truncated: `stopped after ${read} flows; narrow since/until` } : {}), ...map.toJSON() } as ServiceMapAnswer;
}

const max = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
const min = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

export type { FlowRecord };
