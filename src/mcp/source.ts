import type { FlowRecord } from '../flows/index.js';
import { collectWithPartial, windowContext, type Backend } from '../run/index.js';
import type { PartialData, WindowContext } from '../verify/index.js';
import { collectFlows, type FlowQuery } from '../service/index.js';
import { inWindow, window } from './args.js';
import type { McpContext } from './context.js';
import { ArgError } from './errors.js';
import type { DecodeCoverage } from '../pipeline/index.js';

/** Flows a tool judges in one go (verify, service_map, diff) are refused past this many. */
export const MAX_FLOWS = 200_000;

/** Where a tool's flows came from, as its result states it. */
export interface SourceLabel {
  capture?: string;
  snapshot?: string;
  since?: string;
  until?: string;
  flows: number;
}

/**
 * The flows of one capture file, one snapshot, or a time window of the backend; since/until also
 * narrow a capture or a snapshot to that window. Capture and snapshot together are an ArgError.
 */
export async function flowsOf(ctx: McpContext, a: { capture?: string; snapshot?: string; since?: string; until?: string }, needOne = true, withWindow = false): Promise<{ flows: readonly FlowRecord[]; source: SourceLabel; undecoded?: DecodeCoverage; window?: WindowContext; partial?: PartialData }> {
  if (a.capture !== undefined && a.snapshot !== undefined) throw new ArgError('snapshot', 'give capture or snapshot, not both');
  const win = window(a);
  const windowed = a.since !== undefined || a.until !== undefined;
  const label = { ...(a.since !== undefined ? { since: a.since } : {}), ...(a.until !== undefined ? { until: a.until } : {}) };
  if (a.capture !== undefined) {
    const c = await ctx.captures.load(a.capture, ctx.cwd);
    const all = c.source.flows;
    const flows = windowed ? all.filter((f) => inWindow(f, win)) : all;
    // What the file held but did not decode is known for the whole file, not for a window of it.
    return { flows, source: { capture: a.capture, ...label, flows: flows.length }, ...(windowed ? {} : { undecoded: c.source.summary.coverage }) };
  }
  if (needOne && a.snapshot === undefined && !windowed) {
    throw new ArgError('capture', 'give a capture file, a snapshot id, or since/until for a window of live flows');
  }
  const backend = await ctx.backend();
  let flows: FlowRecord[];
  // Agents a hub could not reach while the pages were read (issue 16): the verdict names them.
  let partial: PartialData | undefined;
  let span: { since?: number; until?: number } = win;
  if (a.snapshot !== undefined) {
    const snap = await knownSnapshot(backend, a.snapshot, 'snapshot');
    span = { since: Math.max(snap.since, win.since ?? -Infinity), until: Math.min(snap.until ?? Date.now() / 1000, win.until ?? Infinity) };
    if (windowed) ({ flows, partial } = await allFlowsPartial(backend, { snapshot: a.snapshot, ...label }));
    else {
      flows = await backend.snapshotFlows(a.snapshot, MAX_FLOWS);
      partial = backend.partialOf?.(a.snapshot);
    }
  } else {
    needsSnapshot(backend);
    ({ flows, partial } = await allFlowsPartial(backend, label));
    span = { since: win.since, until: win.until ?? Date.now() / 1000 };
  }
  const around = withWindow ? await windowContext(backend, flows, { ...span, label: 'window', partial }) : undefined;
  return { flows, source: { ...(a.snapshot !== undefined ? { snapshot: a.snapshot } : {}), ...label, flows: flows.length }, ...(around ? { window: around } : {}), ...(partial ? { partial } : {}) };
}

/** allFlows, keeping the agents the pages said were missing. */
function allFlowsPartial(backend: Backend, q: Omit<FlowQuery, 'cursor' | 'limit'>) {
  return collectWithPartial(backend, q, MAX_FLOWS, (max) => new ArgError(q.snapshot !== undefined ? 'snapshot' : 'since', `more than ${max} flows: narrow the window with since/until`));
}

/** Every flow of a backend window, page by page, refused past MAX_FLOWS rather than cut. */
export function allFlows(backend: Backend, q: Omit<FlowQuery, 'cursor' | 'limit'>): Promise<FlowRecord[]> {
  return collectFlows(backend, q, MAX_FLOWS, (max) => new ArgError(q.snapshot !== undefined ? 'snapshot' : 'since', `more than ${max} flows: narrow the window with since/until`));
}

/** An ArgError naming `argument` when the backend has no such snapshot. */
export async function knownSnapshot(backend: Backend, id: string, argument: string) {
  const s = await backend.getSnapshot(id);
  if (!s) throw new ArgError(argument, `no snapshot "${id}" on the ${backend.kind} backend (list_snapshots lists them)`);
  return s;
}

/** A local backend keeps flows per snapshot only: a window across them is refused by name. */
export function needsSnapshot(backend: Backend): void {
  if (backend.kind === 'local') {
    throw new ArgError('snapshot', `without an agent, flows are kept per snapshot: give snapshot (list_snapshots lists them), or capture for a file (${backend.describe()})`);
  }
}
