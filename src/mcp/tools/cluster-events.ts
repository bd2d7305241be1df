import { z } from 'zod';
import type { ClusterEvent } from '../../enrich/index.js';
import { SourceError, type EventPage } from '../../service/index.js';
import { timeArg, window } from '../args.js';
import { cutRows, fitsWithin, truncationNote } from '../bound.js';
import type { McpContext } from '../context.js';
import { ArgError } from '../errors.js';
import { truncationSchema } from '../schemas.js';
import { iso, plural, truncatedLines } from '../text.js';
import { tool } from '../tool.js';

/** A ClusterEvent (src/enrich/events.ts); loose, as fields are only ever added to it. */
const eventSchema = z.looseObject({
  id: z.string(),
  time: z.number().describe('epoch seconds'),
  kind: z.string().describe('restart, oom-killed, evicted, probe-failed, image-pull, rollout, pod-started, pod-deleted, other'),
  namespace: z.string(),
  pod: z.string().optional(),
  workload: z.string().optional(),
  node: z.string().optional(),
  container: z.string().optional(),
  object: z.string().optional().describe('what Kubernetes reported it for, when not a pod ("Deployment/checkout")'),
  reason: z.string(),
  message: z.string().optional(),
  exitCode: z.number().int().optional(),
  count: z.number().int().optional(),
  probe: z.string().optional(),
  source: z.string().describe('event (a Kubernetes Event) or pod-status (a change of the pod\'s status)'),
});

type EventJson = z.infer<typeof eventSchema>;

/** Where an event's message is cut in the text copy (the structured copy keeps it whole). */
const MESSAGE_CHARS = 160;

export const clusterEventsTool = tool({
  name: 'cluster_events',
  title: 'Cluster events',
  description: 'What happened to the pods while they talked, on the flows\' timeline: restarts (reason, exit code), OOM kills, evictions, '
    + 'failed probes, image pull errors, rollouts, pod starts and deletes, oldest first. Over a window (since/until) or a snapshot\'s window, '
    + 'narrowed by namespace and pod. Needs an agent watching Kubernetes (tapwire agent --kubernetes); an empty answer says why.',
  input: z.strictObject({
    since: timeArg('events at or after this time').optional(),
    until: timeArg('events at or before this time').optional(),
    namespace: z.string().min(1).max(253).optional().describe('a Kubernetes namespace'),
    pod: z.string().min(1).max(253).optional().describe('a pod name'),
    snapshot: z.string().min(1).max(200).optional().describe('a snapshot id: its window (since/until narrow it further)'),
  }),
  output: z.object({
    events: z.array(eventSchema),
    note: z.string().optional().describe('why the list is empty or may be incomplete'),
    partial: z.object({ missing: z.array(z.object({ agent: z.string(), error: z.string() })) }).optional().describe('the hub answered without these agents'),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const win = window(a);
    const page = await eventsOf(ctx, { ...win, namespace: a.namespace, pod: a.pod, snapshot: a.snapshot });
    const all = page.events;
    let events: ClusterEvent[] = all;
    const head = { ...(page.note ? { note: page.note } : {}), ...(page.partial ? { partial: page.partial } : {}) };
    const text = (t?: { note: string }) => eventsText(events, all.length, a, page, t);
    const omitted = cutRows(all, (rows) => { events = rows; }, fitsWithin(ctx.maxTokens, () => ({ structured: { events, ...head }, text: text() })));
    const truncated = omitted ? truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'the newest events were left out; narrow with since/until, namespace or pod') : undefined;
    // A ClusterEvent is what the loose schema describes; TypeScript wants the index signature spelt out.
    return { structured: { events: events as unknown as EventJson[], ...head, ...(truncated ? { truncated } : {}) }, text: text(truncated) };
  },
});

/**
 * The backend's events: an agent's (or a hub's), kept in its store. A local capture keeps flows
 * per snapshot and no events; it says so, naming how to get them.
 */
async function eventsOf(ctx: McpContext, q: { since?: number; until?: number; namespace?: string; pod?: string; snapshot?: string }): Promise<EventPage> {
  const backend = await ctx.backend();
  if (!backend.events) {
    if (q.snapshot !== undefined && !(await backend.getSnapshot(q.snapshot))) {
      throw new ArgError('snapshot', `no snapshot "${q.snapshot}" on the ${backend.kind} backend (list_snapshots lists them)`);
    }
    return { events: [], note: `${backend.describe()} keeps no cluster events: they are kept by an agent watching Kubernetes (tapwire agent --kubernetes); start tapwire mcp with --api <agent URL>` };
  }
  try {
    return await backend.events(q);
  } catch (e) {
    if (e instanceof SourceError && e.kind === 'missing' && q.snapshot !== undefined) {
      throw new ArgError('snapshot', `no snapshot "${q.snapshot}" on the ${backend.kind} (list_snapshots lists them)`);
    }
    throw e;
  }
}

/** "12:03:04.512 payments/payment-7f9c restart (OOMKilled, exit 137)": one line per event, UTC. */
export function eventLine(e: ClusterEvent): string {
  const what = e.pod ?? e.object ?? e.node ?? '-';
  const details = [e.reason, e.exitCode !== undefined ? `exit ${e.exitCode}` : undefined, e.probe ? `${e.probe} probe` : undefined,
    e.container ? `container ${e.container}` : undefined, e.count ? `seen ${e.count} times` : undefined].filter(Boolean);
  const message = e.message ? `: ${e.message.length > MESSAGE_CHARS ? `${e.message.slice(0, MESSAGE_CHARS)}…` : e.message}` : '';
  return `${iso(e.time).slice(11, 23)} ${e.namespace}/${what} ${e.kind} (${details.join(', ')})${message}`;
}

function eventsText(events: ClusterEvent[], total: number, a: { since?: string; until?: string; namespace?: string; pod?: string; snapshot?: string }, page: EventPage, truncated?: { note: string }): string {
  const scope = [a.pod !== undefined ? `pod ${a.pod}` : undefined, a.namespace !== undefined ? `namespace ${a.namespace}` : undefined].filter(Boolean).join(' in ');
  const where = [a.snapshot !== undefined ? `snapshot ${a.snapshot}'s window` : 'this window', a.since !== undefined ? `from ${a.since}` : undefined, a.until !== undefined ? `until ${a.until}` : undefined].filter(Boolean).join(' ');
  const lines: string[] = [];
  if (total === 0) {
    lines.push(page.note ?? `no events in ${where}${scope ? ` for ${scope}` : ''}`);
  } else {
    const span = `${iso(events[0]!.time)} to ${iso(events.at(-1)!.time)}`;
    lines.push(`${plural(total, 'cluster event')} in ${where}${scope ? ` for ${scope}` : ''}${events.length < total ? `, the oldest ${events.length} shown` : ''} (${span}; times UTC), oldest first:`);
    lines.push(...events.map(eventLine));
    if (page.note) lines.push(`note: ${page.note}`);
  }
  if (page.partial) lines.push(`partial: the hub answered without ${page.partial.missing.map((m) => `${m.agent} (${m.error})`).join(', ')}`);
  return [...lines, ...truncatedLines(truncated)].join('\n');
}
