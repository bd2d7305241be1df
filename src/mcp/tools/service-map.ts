import { z } from 'zod';
import { ServiceMap } from '../../verify/servicemap.js';
import { captureArg, timeArg } from '../args.js';
import { cutRows, fitsWithin, truncationNote } from '../bound.js';
import { sourceSchema, truncationSchema } from '../schemas.js';
import { flowsOf } from '../source.js';
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
    const omitted = cutRows(all, (rows) => { edges = rows; }, fitsWithin(ctx.maxTokens, () => ({ structured: { edges, source }, text: mapText(edges, all.length) })));
    const structured = { edges, source, ...(omitted ? { truncated: truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'the quietest edges were left out; narrow with since/until') } : {}) };
    return { structured, text: mapText(edges, all.length) };
  },
});

function mapText(edges: z.infer<typeof edgeSchema>[], total: number): string {
  const lines = edges.slice(0, 30).map((e) => `${e.src} → ${e.dst} ${e.protocol}: ${e.count} calls, ${e.errors} errors, p95 ${e.latencyMs.p95} ms`);
  if (total > lines.length) lines.push(`… ${total - lines.length} more edges${edges.length < total ? ' (bounded: see truncated)' : ' in structuredContent'}`);
  return [`${total} edges`, ...lines].join('\n');
}
