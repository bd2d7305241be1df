import type { EventQuery, UsageAnswer } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { EventPage, FlowPage, FlowQuery } from '../service/index.js';
import { firstStart, lastEnd, podsInvolved, type PartialData, type WindowContext } from '../verify/index.js';

/** What a window's verdict asks of its source besides flows (a Backend, a RemoteSource, the hub). */
export interface WindowSource {
  events?(q: EventQuery & { snapshot?: string }): Promise<EventPage>;
  usage?(pods: string[], since: number, until: number): Promise<UsageAnswer>;
}

/**
 * What the verdict over `flows` is told about their window (issue 16): the source's cluster events
 * of it, the pods' resource use, and the agents missing from the pages read. A source without
 * events (a local capture) adds none; one that fails to answer is said to have failed, never
 * taken as having nothing.
 */
export async function windowContext(source: WindowSource, flows: readonly FlowRecord[], w: {
  since?: number; until?: number; snapshot?: string; label?: 'run' | 'window'; partial?: PartialData;
}): Promise<WindowContext> {
  const out: WindowContext = { ...(w.since !== undefined ? { since: w.since } : {}), ...(w.until !== undefined ? { until: w.until } : {}), label: w.label ?? 'window' };
  if (w.partial?.missing.length) out.partial = w.partial;
  if (source.events) {
    try {
      const page = await source.events(w.snapshot !== undefined ? { snapshot: w.snapshot } : { since: w.since, until: w.until });
      out.events = page.events;
      const missing = page.partial?.missing.map((m) => m.agent);
      const note = [page.note, missing?.length ? `events of ${missing.join(', ')} are missing (the agent did not answer)` : undefined].filter(Boolean).join('; ');
      if (note) out.eventsNote = note;
    } catch (e) {
      out.eventsNote = `cluster events could not be read: ${(e as Error).message}`;
    }
  }
  const pods = [...podsInvolved(flows)];
  const since = w.since ?? firstStart(flows);
  const until = w.until ?? lastEnd(flows);
  if (source.usage && pods.length && since !== undefined && until !== undefined) {
    out.usage = await source.usage(pods, since, until).catch((e: Error) => ({ unavailable: `resource use could not be read: ${e.message}` }));
  }
  return out;
}

/**
 * Every flow of a query, page by page (as service/collect.ts), keeping what the pages said was
 * missing: the hub's `partial`, merged over pages by agent. Past `max` flows `tooMany` is thrown.
 */
export async function collectWithPartial(source: { query(q: FlowQuery): Promise<FlowPage> }, q: Omit<FlowQuery, 'cursor' | 'limit'>, max: number, tooMany: (max: number) => Error): Promise<{ flows: FlowRecord[]; partial?: PartialData }> {
  const flows: FlowRecord[] = [];
  const missing = new Map<string, PartialData['missing'][number]>();
  let cursor: string | undefined;
  do {
    const page = await source.query({ ...q, limit: 1000, cursor });
    for (const f of page.flows) flows.push(f);
    for (const m of page.partial?.missing ?? []) missing.set(m.agent, m);
    if (flows.length > max) throw tooMany(max);
    cursor = page.next;
  } while (cursor);
  return { flows, ...(missing.size ? { partial: { missing: [...missing.values()] } } : {}) };
}
