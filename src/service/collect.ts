import type { FlowRecord } from '../flows/index.js';
import type { FlowQuery } from './query.js';
import type { FlowSource } from './source.js';

/**
 * Every flow a query matches, from any source, following its cursors page by page; past `max`
 * flows `tooMany(max)` is thrown rather than the answer silently cut (verify, diff and the service
 * map judge all of a window or none of it).
 */
export async function collectFlows(source: Pick<FlowSource, 'query'>, q: Omit<FlowQuery, 'cursor' | 'limit'>, max: number, tooMany: (max: number) => Error): Promise<FlowRecord[]> {
  const out: FlowRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await source.query({ ...q, limit: 1000, cursor });
    for (const f of page.flows) out.push(f);
    if (out.length > max) throw tooMany(max);
    cursor = page.next;
  } while (cursor);
  return out;
}
