import type { EventPage, FlowSource } from '../service/index.js';
import { bad } from './errors.js';
import { timeParam } from './params.js';

/**
 * `GET /api/events?since=&until=&namespace=&pod=&snapshot=`: cluster events (issue 16) on the
 * flows' timeline, oldest first. Times as the flow API takes them (RFC 3339 or epoch seconds); a
 * bad one is a 400 naming it, an unknown snapshot a 404. A source that keeps no events (a capture
 * file) answers with a note, not a 404: the question is fair, the answer is "not here".
 */
export async function eventsBody(source: FlowSource, url: URL): Promise<EventPage> {
  const p = url.searchParams;
  const since = timeParam('since', p.get('since')), until = timeParam('until', p.get('until'));
  if (since !== undefined && until !== undefined && until < since) throw bad('until is before since');
  const given = (k: string) => p.get(k) || undefined;
  const q = { since, until, namespace: given('namespace'), pod: given('pod'), snapshot: given('snapshot') };
  if (!source.events) return { events: [], note: `${source.describe()} keeps no cluster events: they are kept by an agent started with --kubernetes` };
  const page = await source.events(q);
  return { events: page.events, ...(page.note ? { note: page.note } : {}), ...(page.partial ? { partial: page.partial } : {}) };
}
