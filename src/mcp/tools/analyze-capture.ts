import { notDecodedParts } from '../../common/index.js';
import { z } from 'zod';
import type { CaptureSummary } from '../../pipeline/index.js';
import { ServiceNames, undecodedCoverage } from '../../verify/index.js';
import { captureArg } from '../args.js';
import { tokens } from '../bound.js';
import { flowPage, pageArgs, pageShape, pageText } from '../pages.js';
import { truncationSchema, undecodedSchema } from '../schemas.js';
import { iso, plural, tally, undecodedServersText } from '../text.js';
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
  undecoded: undecodedSchema.optional().describe('connections and UDP flows seen but not decoded (tls, unknown …), and their servers; absent when there were none'),
});

export const analyzeCapture = tool({
  name: 'analyze_capture',
  title: 'Analyze a capture file',
  description: 'Decodes a pcap or pcapng file (HTTP/1, HTTP/2, gRPC, PostgreSQL, MySQL/MariaDB, Redis, TLS handshakes): packets, flows, protocols, protocol violations, '
    + 'and the first page of flow rows (filtered with a CEL filter). list_flows, get_flow and verify take the same `capture`.',
  input: z.strictObject({ capture: captureArg, filter: pageArgs.filter, limit: pageArgs.limit, cursor: pageArgs.cursor }),
  output: z.object({ capture: z.string(), summary: summarySchema, ...pageShape, truncated: truncationSchema.optional() }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const c = await ctx.captures.load(a.capture, ctx.cwd);
    const summary = toolSummary(c.source.summary);
    const head = summaryText(c.path, summary);
    // The rest of the result: the summary, the path and this head, besides the page.
    const page = await flowPage(ctx, a, tokens(summary) + tokens(c.path) + tokens(JSON.stringify(head)) + 50);
    return { structured: { capture: c.path, summary, ...page }, text: `${head}\n${pageText(page)}` };
  },
});

/** The decode's summary (pipeline/decode-capture.ts) as this tool's schema has it: undecoded with its services named. */
function toolSummary(s: CaptureSummary): z.infer<typeof summarySchema> {
  const seen = s.coverage.connections + s.coverage.udpFlows > 0;
  return {
    format: s.format, bytes: s.bytes, packets: s.packets, flows: s.flows, protocols: s.protocols,
    ...(s.window ? { window: s.window } : {}),
    violations: s.violations,
    ...(s.truncatedAt !== undefined ? { truncatedAt: s.truncatedAt } : {}),
    ...(seen ? { undecoded: undecodedCoverage(s.coverage, new ServiceNames()) } : {}),
  };
}

/**
 * What the decode saw, each number named: flows are exchanges (a request and its response, a SQL
 * statement), counted apart from the TCP connections that carried them.
 */
function summaryText(path: string, s: z.infer<typeof summarySchema>): string {
  const v = s.violations;
  return [
    `${path}: ${s.format}, ${plural(s.bytes, 'byte')}, ${plural(s.packets, 'packet')}`,
    `${plural(s.flows, 'flow')} (request/response exchanges and SQL statements); connections by protocol: ${tally(s.protocols) || 'none recognised'}`,
    ...(s.window ? [`flows from ${iso(s.window.start)} to ${iso(s.window.end)}`] : []),
    `${plural(v.total, 'protocol violation')}${v.total ? `: ${tally(v.counts)}` : ''}${v.first ? `; first: ${v.first}` : ''}`,
    ...(s.truncatedAt !== undefined ? [`the file ends inside a record at byte ${s.truncatedAt}; everything before it was decoded`] : []),
    ...(s.undecoded ? [notDecodedLine(s.undecoded)] : []),
  ].join('\n');
}

/** "2 connections not decoded (tls 1, unknown 1): 10.0.0.5:443 tls (1 connection), …", so silence is never taken for a clean capture. */
function notDecodedLine(u: NonNullable<z.infer<typeof summarySchema>['undecoded']>): string {
  return `${notDecodedParts(u).join('; ')}: ${undecodedServersText(u)}`;
}
