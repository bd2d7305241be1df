import { z } from 'zod';
import { captureArg } from '../args.js';
import { tokens } from '../bound.js';
import { flowPage, pageArgs, pageShape, pageText } from '../pages.js';
import { truncationSchema } from '../schemas.js';
import { tool } from '../tool.js';

const summarySchema = z.object({
  format: z.enum(['pcap', 'pcapng']),
  bytes: z.number().int(),
  packets: z.number().int(),
  flows: z.number().int(),
  protocols: z.record(z.string(), z.number()).describe('connections identified, by protocol'),
  window: z.object({ start: z.number(), end: z.number() }).optional().describe('epoch seconds of the first start and last end'),
  violations: z.object({ total: z.number().int(), counts: z.record(z.string(), z.number()), first: z.string().optional() }),
  truncatedAt: z.number().int().optional().describe('the file ends inside a record at this byte; everything before was decoded'),
});

export const analyzeCapture = tool({
  name: 'analyze_capture',
  title: 'Analyze a capture file',
  description: 'Decodes a pcap or pcapng file (HTTP/1, HTTP/2, gRPC, PostgreSQL): packets, flows, protocols, protocol violations, '
    + 'and the first page of flow rows (filtered with a CEL filter). list_flows, get_flow and verify take the same `capture`.',
  input: z.strictObject({ capture: captureArg, filter: pageArgs.filter, limit: pageArgs.limit, cursor: pageArgs.cursor }),
  output: z.object({ capture: z.string(), summary: summarySchema, ...pageShape, truncated: truncationSchema.optional() }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const c = await ctx.captures.load(a.capture, ctx.cwd);
    const page = await flowPage(ctx, a, tokens(c.summary) + tokens(c.path) * 2 + 100);
    const s = c.summary;
    const head = `${a.capture}: ${s.format}, ${s.bytes} bytes, ${s.packets} packets, ${s.flows} flows`
      + ` (${Object.entries(s.protocols).map(([p, n]) => `${p} ×${n}`).join(', ') || 'no protocol recognised'}), ${s.violations.total} violations`
      + `${s.truncatedAt !== undefined ? `; file cut at byte ${s.truncatedAt}` : ''}`;
    return { structured: { capture: c.path, summary: s, ...page }, text: `${head}\n${pageText(page)}` };
  },
});
