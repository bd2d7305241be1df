import { z } from 'zod';
import { ServiceMap } from '../../verify/index.js';
import { captureArg, timeArg } from '../args.js';
import { cutRows, fitsWithin, truncationNote } from '../bound.js';
import { sourceSchema, truncationSchema } from '../schemas.js';
import { flowsOf, type SourceLabel } from '../source.js';
import { plural, sourceText, truncatedLines } from '../text.js';
import { tool } from '../tool.js';

const edgeSchema = z.object({
  src: z.string(), dst: z.string(), protocol: z.string(),
  count: z.number().int(), errors: z.number().int(),
  latencyMs: z.object({ p50: z.number(), p95: z.number(), p99: z.number(), max: z.number() }),
});

export const serviceMap = tool({
  name: 'service_map',
  title: 'Service map',
  description: 'Who calls whom: one edge per caller, server and protocol, with calls, errors and latency percentiles, busiest first. '
    + 'Over a capture file, a snapshot, or a window of live flows (all the backend holds when none is given).',
  input: z.strictObject({
    since: timeArg('flows that started at or after this time').optional(),
    until: timeArg('flows that started at or before this time').optional(),
    capture: captureArg.optional(),
    snapshot: z.string().min(1).max(200).optional().describe('a snapshot id'),
  }),
  output: z.object({ edges: z.array(edgeSchema), source: sourceSchema, truncated: truncationSchema.optional() }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const { flows, source } = await flowsOf(ctx, a, false);
    const map = new ServiceMap();
    for (const f of flows) map.add(f);
    const all = map.toJSON().edges;
    let edges = all;
    const omitted = cutRows(all, (rows) => { edges = rows; }, fitsWithin(ctx.maxTokens, () => ({ structured: { edges, source }, text: mapText(edges, all.length, source) })));
    const truncated = omitted ? truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'the quietest edges were left out; narrow with since/until') : undefined;
    const structured = { edges, source, ...(truncated ? { truncated } : {}) };
    return { structured, text: mapText(edges, all.length, source, truncated) };
  },
});

/** Every edge the result holds, with all its numbers, and what was cut. */
function mapText(edges: z.infer<typeof edgeSchema>[], total: number, source: SourceLabel, truncated?: { note: string }): string {
  const lines = edges.map((e) => `${e.src} → ${e.dst} ${e.protocol}: ${plural(e.count, 'call')}, ${plural(e.errors, 'error')}; `
    + `latency p50 ${e.latencyMs.p50}, p95 ${e.latencyMs.p95}, p99 ${e.latencyMs.p99}, max ${e.latencyMs.max} ms`);
  const shown = edges.length < total ? `, ${edges.length} shown` : '';
  return [`${plural(total, 'edge')} (one per caller, server and protocol)${shown}, from ${sourceText(source)}${edges.length ? ':' : ''}`,
    ...lines, ...truncatedLines(truncated)].join('\n');
}
