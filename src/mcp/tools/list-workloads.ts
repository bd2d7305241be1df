import { z } from 'zod';
import { DEFAULT_MAP_WINDOW } from '../../service/index.js';
import { workloadsOf, workloadsText, type NodeEntry, type WorkloadsAnswer } from '../../verify/index.js';
import { captureArg, timeArg } from '../args.js';
import { cutRows, fitsWithin, truncationNote } from '../bound.js';
import { sourceSchema, tlsCoverageSchema, tlsServerSchema, truncationSchema } from '../schemas.js';
import { flowsOf } from '../source.js';
import { tool } from '../tool.js';

const counts = z.record(z.string(), z.number());

const workloadSchema = z.object({
  namespace: z.string(), workload: z.string(), pods: z.array(z.string()), podsOmitted: z.number().int().optional(),
  services: z.array(z.string()).optional(), flows: z.number().int(), byProtocol: counts,
  incomplete: z.number().int(), incompleteByReason: counts,
  undecoded: counts.optional().describe('connections to its addresses no decoder took, by why (a capture file only)'),
  tls: tlsServerSchema.optional().describe('its TLS as a server: on the wire (SNIs), decrypted (by which processes), not decrypted by why; absent when it had none'),
});

const nodeSchema = z.object({
  node: z.string().describe('the node the identities name, or "(node unknown)"'),
  flows: z.number().int(), byProtocol: counts, incomplete: z.number().int(), workloads: z.array(workloadSchema),
});

export const listWorkloads = tool({
  name: 'list_workloads',
  title: 'Workloads being captured',
  description: 'What is being captured, per node: the workloads (namespace/workload and pods) the window\'s flows name, with flows per protocol and decode '
    + 'coverage (incomplete evidence, traffic not decoded where the source can say). Over a capture file, a snapshot, or a window of live flows '
    + `(the last ${DEFAULT_MAP_WINDOW / 60} minutes when none is given). Asking for a workload or namespace that no flow names answers that it is not `
    + 'captured, and which are.',
  input: z.strictObject({
    since: timeArg('flows that started at or after this time').optional(),
    until: timeArg('flows that started at or before this time').optional(),
    capture: captureArg.optional(),
    snapshot: z.string().min(1).max(200).optional().describe('a snapshot id'),
    workload: z.string().min(1).max(253).optional().describe('one workload (or pod) to ask about, e.g. "payments"'),
    namespace: z.string().min(1).max(63).optional().describe('narrow to one namespace'),
  }),
  output: z.object({
    since: z.number().optional(), until: z.number().optional(), flows: z.number().int(),
    nodes: z.array(nodeSchema),
    unidentified: z.object({ flows: z.number().int(), addresses: z.number().int() }).describe('flows neither end of which has an identity'),
    complete: z.number().describe('share of the flows with whole evidence, 0..1'),
    undecoded: z.object({ connections: z.number().int(), byReason: counts, udpFlows: z.number().int() }).optional(),
    undecodedNote: z.string().optional(),
    tls: tlsCoverageSchema.nullable().describe('TLS connections on the wire, decrypted, and not decrypted with why (code and words), per server; null when the window holds no TLS (tlsNote says so)'),
    tlsNote: z.string(),
    notCaptured: z.string().optional().describe('set when the workload or namespace asked for is not captured: says so, and which are'),
    partial: z.object({ missing: z.array(z.object({ agent: z.string(), error: z.string(), node: z.string().optional() })) }).optional(),
    truncated: z.string().optional().describe('the window held more flows than were read'),
    source: sourceSchema,
    bound: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    // No window and no snapshot: the recent past, as the service map does, not everything kept.
    const asked = a.capture === undefined && a.snapshot === undefined && a.since === undefined && a.until === undefined
      ? { ...a, since: new Date(Date.now() - DEFAULT_MAP_WINDOW * 1000).toISOString() } : a;
    const { flows, source, undecoded, partial } = await flowsOf(ctx, asked, false);
    const answer = workloadsOf(flows, {
      undecoded: asked.since === undefined && asked.until === undefined ? undecoded : undefined, partial,
      // A capture file holds packets only, narrowed by a window or not: no uprobes.
      ...(a.capture !== undefined ? { tlsSource: 'capture-file' as const } : {}),
      ask: { workload: a.workload, namespace: a.namespace },
    });
    const all = answer.nodes.flatMap((n) => n.workloads.map((w) => ({ n, w })));
    let shown: WorkloadsAnswer = answer;
    const set = (rows: typeof all) => { shown = { ...answer, nodes: regroup(answer.nodes, rows) }; };
    const omitted = cutRows(all, set, fitsWithin(ctx.maxTokens, () => ({ structured: { ...shown, source }, text: workloadsText(shown) })));
    const bound = omitted ? truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'the quietest workloads were left out; narrow with namespace, workload or since/until') : undefined;
    const structured = { ...shown, source, ...(bound ? { bound } : {}) };
    return { structured, text: workloadsText(shown) + (bound ? `${bound.note}\n` : '') };
  },
});

/** The nodes with only the workloads kept, in their order; node totals stay whole. */
function regroup(nodes: readonly NodeEntry[], rows: readonly { n: NodeEntry; w: NodeEntry['workloads'][number] }[]): NodeEntry[] {
  const kept = new Set(rows.map((r) => r.w));
  return nodes.map((n) => ({ ...n, workloads: n.workloads.filter((w) => kept.has(w)) })).filter((n) => n.workloads.length > 0);
}
