import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { FlowRecord } from '../../flows/record.js';
import { diffFlows, diffText, type FlowDiff } from '../../verify/diff.js';
import { cutRows, fitsWithin, shrinkFindings, truncationNote } from '../bound.js';
import type { McpContext } from '../context.js';
import { ArgError } from '../errors.js';
import { findingSchema, truncationSchema } from '../schemas.js';
import { tool } from '../tool.js';

const latency = z.object({ p50: z.number(), p95: z.number(), p99: z.number(), max: z.number() });
const stats = { count: z.number().int(), statuses: z.record(z.string(), z.number()), latencyMs: latency.optional() };
const side = z.object({ label: z.string(), flows: z.number().int() });
const perRequest = z.object({ mean: z.number(), max: z.number() });

const sideArg = (when: string) => z.string().min(1).max(4096).describe(`${when}: a capture file, or a snapshot id`);

export const diffTool = tool({
  name: 'diff',
  title: 'Diff two captures or snapshots',
  description: 'What changed between two sets of flows (before and after a change): regressions (new error findings, more calls per request, '
    + 'new error statuses), improvements, endpoints added, removed or changed, payload shapes, and findings new and resolved.',
  input: z.strictObject({ before: sideArg('the flows before the change'), after: sideArg('the flows after the change') }),
  output: z.object({
    regression: z.boolean(),
    regressions: z.array(z.string()),
    improvements: z.array(z.string()),
    before: side,
    after: side,
    endpoints: z.object({
      added: z.array(z.object({ endpoint: z.string(), ...stats })),
      removed: z.array(z.object({ endpoint: z.string(), ...stats })),
      changed: z.array(z.object({ endpoint: z.string(), before: z.object(stats), after: z.object(stats) })),
    }),
    callsPerRequest: z.array(z.object({ inbound: z.string(), downstream: z.string(), before: perRequest, after: perRequest, change: z.enum(['more', 'fewer', 'same', 'added', 'removed']) })),
    payloadShapes: z.array(z.object({ endpoint: z.string(), added: z.array(z.string()), removed: z.array(z.string()), changed: z.array(z.object({ path: z.string(), before: z.string(), after: z.string() })) })),
    findings: z.object({ new: z.array(findingSchema), resolved: z.array(findingSchema) }),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const before = await sideOf(ctx, a.before, 'before');
    const after = await sideOf(ctx, a.after, 'after');
    const d: FlowDiff & { truncated?: ReturnType<typeof truncationNote> } = diffFlows(before, after);
    const fits = fitsWithin(ctx.maxTokens, () => ({ structured: d, text: shortText(d) }));
    const cut = shrinkFindings([...d.findings.new, ...d.findings.resolved], fits) ?? {};
    // Then the context lists, least telling first; regressions and improvements always stay.
    let rowsOmitted = 0;
    for (const [get, set] of lists(d)) {
      if (fits()) break;
      rowsOmitted += cutRows(get(), set, fits);
    }
    if (rowsOmitted) Object.assign(cut, { rowsOmitted });
    if (Object.keys(cut).length) d.truncated = truncationNote(ctx.maxTokens, cut, '`tapwire diff` on the command line shows all of it');
    return { structured: d, text: shortText(d) };
  },
});

/** The lists bounding may shorten, in the order they give way. */
function lists(d: FlowDiff): [() => unknown[], (v: unknown[]) => void][] {
  const e = d.endpoints;
  return [
    [() => d.payloadShapes, (v) => { d.payloadShapes = v as typeof d.payloadShapes; }],
    [() => e.changed, (v) => { e.changed = v as typeof e.changed; }],
    [() => e.added, (v) => { e.added = v as typeof e.added; }],
    [() => e.removed, (v) => { e.removed = v as typeof e.removed; }],
    [() => d.callsPerRequest, (v) => { d.callsPerRequest = v as typeof d.callsPerRequest; }],
  ];
}

const TEXT_LINES = 60;

function shortText(d: FlowDiff & { truncated?: { note: string } }): string {
  const lines = diffText(d).trimEnd().split('\n');
  const shown = lines.slice(0, TEXT_LINES);
  if (lines.length > TEXT_LINES) shown.push(`… ${lines.length - TEXT_LINES} more lines in structuredContent`);
  if (d.truncated) shown.push(d.truncated.note);
  return `${shown.join('\n')}\n`;
}

/** A side: an existing file is a capture; anything else must be a snapshot the backend has. */
async function sideOf(ctx: McpContext, value: string, argument: string): Promise<{ label: string; flows: readonly FlowRecord[] }> {
  const isFile = await stat(resolve(ctx.cwd, value)).then((s) => s.isFile(), () => false);
  if (isFile) return { label: value, flows: (await ctx.captures.load(value, ctx.cwd, argument)).flows };
  const backend = await ctx.backend();
  const snap = await backend.getSnapshot(value).catch((e: Error) => {
    throw new ArgError(argument, `"${value}" is not a capture file (none at ${resolve(ctx.cwd, value)}), and the ${backend.kind} backend could not say whether it is a snapshot: ${e.message}`);
  });
  if (!snap) {
    throw new ArgError(argument, `"${value}" is neither a capture file (none at ${resolve(ctx.cwd, value)}) nor a snapshot on the ${backend.kind} backend`);
  }
  return { label: `snapshot ${value}`, flows: await backend.snapshotFlows(value) };
}
