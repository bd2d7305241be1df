import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { FlowRecord } from '../../flows/index.js';
import { diffFlows, type EndpointStats, type FlowDiff } from '../../verify/index.js';
import { cutRows, fitsWithin, shrinkFindings, truncationNote } from '../bound.js';
import type { McpContext } from '../context.js';
import { ArgError } from '../errors.js';
import { findingSchema, truncationSchema } from '../schemas.js';
import { findingLines, findingsCount, plural, truncatedLines } from '../text.js';
import { tool } from '../tool.js';

const latency = z.object({ p50: z.number(), p95: z.number(), p99: z.number(), max: z.number() });
const stats = { count: z.number().int(), statuses: z.record(z.string(), z.number()), latencyMs: latency.optional() };
const side = z.object({ label: z.string(), flows: z.number().int() });
const perRequest = z.object({ mean: z.number(), max: z.number() });

const sideArg = (when: string) => z.string().min(1).max(4096).describe(`${when}: a capture file, or a snapshot id`);

const cacheSide = z.object({
  pattern: z.string(), reads: z.number().int(), hits: z.number().int(), misses: z.number().int(), sets: z.number().int(), hitRatio: z.number().optional(),
});

export const diffTool = tool({
  name: 'diff',
  title: 'Diff two captures or snapshots',
  description: 'What changed between two sets of flows (before and after a change): regressions (new error findings, more calls per request, '
    + 'new error statuses, a cache hit ratio down), improvements, endpoints added, removed or changed, payload shapes, Redis cache hit ratios per key pattern, '
    + 'and findings new and resolved.',
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
    cache: z.array(z.object({ pattern: z.string(), before: cacheSide.optional(), after: cacheSide.optional(), change: z.enum(['up', 'down', 'same', 'added', 'removed']) }))
      .describe('Redis cache hit ratio per key pattern, before and after; a pattern paired with the one it extends (order:{n}:{n} → order:{n}) is one cache'),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const before = await sideOf(ctx, a.before, 'before');
    const after = await sideOf(ctx, a.after, 'after');
    const d: FlowDiff & { truncated?: ReturnType<typeof truncationNote> } = diffFlows(before, after);
    const fits = fitsWithin(ctx.maxTokens, () => ({ structured: d, text: diffText(d) }));
    const cut = shrinkFindings([...d.findings.new, ...d.findings.resolved], fits) ?? {};
    // Then the context lists, least telling first; regressions and improvements always stay.
    let rowsOmitted = 0;
    for (const [get, set] of lists(d)) {
      if (fits()) break;
      rowsOmitted += cutRows(get(), set, fits);
    }
    if (rowsOmitted) Object.assign(cut, { rowsOmitted });
    if (Object.keys(cut).length) d.truncated = truncationNote(ctx.maxTokens, cut, '`tapwire diff` on the command line shows all of it');
    return { structured: d, text: diffText(d) };
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
    [() => d.cache, (v) => { d.cache = v as typeof d.cache; }],
  ];
}

/**
 * The text copy: every list the result holds (regressions, improvements, findings new and resolved
 * with their evidence, calls per request, endpoints, payload shapes), each with its count, and
 * what the bound cut.
 */
function diffText(d: FlowDiff & { truncated?: { note: string } }): string {
  const L = [`diff ${d.before.label} (${plural(d.before.flows, 'flow')}) → ${d.after.label} (${plural(d.after.flows, 'flow')})`,
    d.regression ? `REGRESSION: ${plural(d.regressions.length, 'regression')}` : 'no regression'];
  const section = (title: string, lines: string[]) => {
    if (lines.length) L.push(`${title}:`, ...lines);
  };
  const e = d.endpoints;
  section(`regressions (${d.regressions.length})`, d.regressions.map((x) => `  ✗ ${x}`));
  section(`improvements (${d.improvements.length})`, d.improvements.map((x) => `  ✓ ${x}`));
  section(`new findings: ${findingsCount(d.findings.new)}`, d.findings.new.flatMap((f) => findingLines(f)));
  section(`resolved findings: ${findingsCount(d.findings.resolved)}`, d.findings.resolved.flatMap((f) => findingLines(f)));
  section(`downstream calls per inbound request (${d.callsPerRequest.length})`, d.callsPerRequest.map((c) => `  ${c.change}: ${c.inbound} → ${c.downstream}: `
    + `mean ${c.before.mean.toFixed(2)} → ${c.after.mean.toFixed(2)}, max ${c.before.max} → ${c.after.max}`));
  section(`cache hit ratio by key pattern (${d.cache.length})`, d.cache.map((c) => `  ${c.change}: ${cacheText(c)}`));
  section(`endpoints added (${e.added.length})`, e.added.map((x) => `  + ${x.endpoint}: ${statsText(x)}`));
  section(`endpoints removed (${e.removed.length})`, e.removed.map((x) => `  - ${x.endpoint}: ${statsText(x)}`));
  section(`endpoints changed (${e.changed.length})`, e.changed.flatMap((x) => [`  ~ ${x.endpoint}`, `      before: ${statsText(x.before)}`, `      after:  ${statsText(x.after)}`]));
  section(`payload shapes changed (${d.payloadShapes.length} endpoints)`, d.payloadShapes.flatMap((x) => [`  ${x.endpoint}`,
    ...x.added.map((p) => `      + ${p}`), ...x.removed.map((p) => `      - ${p}`), ...x.changed.map((c) => `      ~ ${c.path}: ${c.before} → ${c.after}`)]));
  if (L.length === 2) L.push('no differences');
  L.push(...truncatedLines(d.truncated));
  return `${L.join('\n')}\n`;
}

function cacheText(c: FlowDiff['cache'][number]): string {
  const side = (x: typeof c.before) => (x ? `${x.hitRatio === undefined ? 'n/a' : `${Math.round(x.hitRatio * 100)}%`} (${x.hits} of ${plural(x.reads, 'read')}, ${plural(x.sets, 'write')})` : 'not used');
  const name = c.before && c.after && c.before.pattern !== c.after.pattern ? `${c.before.pattern} → ${c.after.pattern}` : c.pattern;
  return `${name}: hit ratio ${side(c.before)} → ${side(c.after)}`;
}

function statsText(s: EndpointStats): string {
  const l = s.latencyMs;
  const statuses = Object.entries(s.statuses).map(([k, n]) => `${k} ×${n}`).join(', ');
  return `${plural(s.count, 'call')} (calls by status: ${statuses || 'none'})${l ? `; latency p50 ${l.p50}, p95 ${l.p95}, p99 ${l.p99}, max ${l.max} ms` : ''}`;
}

/** A side: an existing file is a capture; anything else must be a snapshot the backend has. */
async function sideOf(ctx: McpContext, value: string, argument: string): Promise<{ label: string; flows: readonly FlowRecord[] }> {
  const isFile = await stat(resolve(ctx.cwd, value)).then((s) => s.isFile(), () => false);
  if (isFile) return { label: value, flows: (await ctx.captures.load(value, ctx.cwd, argument)).source.flows };
  const backend = await ctx.backend();
  const snap = await backend.getSnapshot(value).catch((e: Error) => {
    throw new ArgError(argument, `"${value}" is not a capture file (none at ${resolve(ctx.cwd, value)}), and the ${backend.kind} backend could not say whether it is a snapshot: ${e.message}`);
  });
  if (!snap) {
    throw new ArgError(argument, `"${value}" is neither a capture file (none at ${resolve(ctx.cwd, value)}) nor a snapshot on the ${backend.kind} backend`);
  }
  return { label: `snapshot ${value}`, flows: await backend.snapshotFlows(value) };
}
