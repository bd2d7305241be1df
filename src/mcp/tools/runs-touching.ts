import { z } from 'zod';
import { runsTouching, type TouchingCommand } from '../../run/index.js';
import { cutRows, fitsWithin, shrinkFindings, truncationNote, type EvidenceHolder } from '../bound.js';
import { ArgError } from '../errors.js';
import { truncationSchema, verdictNameSchema } from '../schemas.js';
import { iso, plural, truncatedLines } from '../text.js';
import { tool } from '../tool.js';
import { RUNS_READ } from './run-history.js';

export const runsTouchingTool = tool({
  name: 'runs_touching',
  title: 'Test commands that touch a service or path',
  description: 'Which kept test commands exercised a service and/or an HTTP path (concrete, a template such as /orders/{id}, or a glob such as /api/**) '
    + 'in their newest run that checked traffic, most recently run first: after changing a service, re-run only those.',
  input: z.strictObject({
    service: z.string().min(1).max(500).optional().describe('a service name (identity or spec name) or "ip:port"'),
    path: z.string().min(1).max(2000).optional().describe('an HTTP path, template or glob'),
  }),
  output: z.object({
    commands: z.array(z.object({
      command: z.string(), cwd: z.string(), runs: z.number().int(),
      lastRun: z.object({ id: z.string(), startedAt: z.number(), verdict: verdictNameSchema, exitCode: z.number().int().nullable(), snapshot: z.string().optional() }),
      skippedNewer: z.number().int().optional().describe('newer runs of the command passed over: cancelled, or they checked no traffic'),
      matched: z.array(z.string()).describe('the services or endpoints of that run that matched'),
    })),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    if (a.service === undefined && a.path === undefined) throw new ArgError('service', 'give service, path, or both');
    const backend = await ctx.backend();
    const all = runsTouching(await backend.runs({ limit: RUNS_READ }), a);
    const out: { commands: TouchingCommand[]; truncated?: ReturnType<typeof truncationNote> } = { commands: all };
    const fits = fitsWithin(ctx.maxTokens, () => ({ structured: out, text: touchingText(out.commands, all.length) }));
    // The matched endpoints are the evidence here: they give way before any command does.
    const cut = shrinkFindings(all.map(matchedOf), fits) ?? {};
    const rowsOmitted = cutRows(all, (rows) => { out.commands = rows; }, fits);
    if (rowsOmitted) Object.assign(cut, { rowsOmitted });
    if (Object.keys(cut).length) out.truncated = truncationNote(ctx.maxTokens, cut, 'narrow with service and path');
    return { structured: out, text: touchingText(out.commands, all.length, out.truncated) };
  },
});

function matchedOf(c: TouchingCommand): EvidenceHolder {
  return { get evidence() { return c.matched; }, set evidence(v) { c.matched = v as string[]; } };
}

/** Every command the result holds, with its last run and what of it matched, and what was cut. */
function touchingText(cs: TouchingCommand[], total: number, truncated?: { note: string }): string {
  if (total === 0) return 'no kept run touched it';
  const lines = [`${plural(total, 'test command')} whose newest checked run touched it${cs.length < total ? `, ${cs.length} shown` : ''}, most recently run first:`];
  for (const c of cs) {
    const r = c.lastRun;
    lines.push(`  ${c.command}`, `      in ${c.cwd}; touched it in ${plural(c.runs, 'kept run')}`,
      `      last checked run ${r.id} at ${iso(r.startedAt)}: ${r.exitCode === null ? 'killed by a signal' : `exit ${r.exitCode}`}, verdict ${r.verdict}`
        + `${r.snapshot ? `, snapshot ${r.snapshot}` : ''}${c.skippedNewer ? `; ${plural(c.skippedNewer, 'newer run')} passed over (cancelled, or checked no traffic)` : ''}`,
      `      matched: ${c.matched.length ? c.matched.join(', ') : 'none listed (see truncated)'}`);
  }
  lines.push(...truncatedLines(truncated));
  return lines.join('\n');
}
