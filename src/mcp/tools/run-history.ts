import { z } from 'zod';
import { runHistory, type History } from '../../run/index.js';
import { cutRows, fitsWithin, shrinkFindings, truncationNote, type EvidenceHolder } from '../bound.js';
import { evidenceSchema, severitySchema, truncationSchema, verdictNameSchema } from '../schemas.js';
import { evidenceLine, iso, plural, truncatedLines } from '../text.js';
import { tool } from '../tool.js';

/** Runs read from the backend's log to answer one question. */
export const RUNS_READ = 10_000;

const runSchema = z.object({
  id: z.string(), startedAt: z.number(), command: z.string(), exitCode: z.number().int().nullable(), verdict: verdictNameSchema,
  cancelled: z.boolean().optional(), timedOut: z.boolean().optional(), snapshot: z.string().optional(),
  code: z.object({ commit: z.string(), dirty: z.string() }).optional(), spec: z.object({ name: z.string(), hash: z.string() }).optional(),
  fingerprints: z.array(z.string()),
  // Optional: the run history (src/run/history.ts) gained them; older builds of it lack them.
  verified: z.boolean().optional().describe('whether the run\'s traffic was verified: only such runs count for or against a finding'),
  drained: z.literal('unproven').optional().describe('the drain was not proven: traffic may be missing'),
});

const findingHistorySchema = z.object({
  fingerprint: z.string(), kind: z.string(), severity: severitySchema, summary: z.string(),
  failedRuns: z.number().int(), totalRuns: z.number().int(),
  uncountedRuns: z.number().int().optional().describe('matching runs that say nothing about it (cancelled, not started, unread, no flows, unproven drain)'),
  firstFailed: z.number(), lastFailed: z.number(),
  lastRun: z.object({ id: z.string(), snapshot: z.string().optional() }),
  lastEvidence: z.array(evidenceSchema),
  flaky: z.boolean(),
  flakyOn: z.array(z.object({ commit: z.string(), dirty: z.string(), failedRuns: z.number().int(), totalRuns: z.number().int() })).optional(),
});

export const runHistoryTool = tool({
  name: 'run_history',
  title: 'Run history',
  description: 'Kept runs (run_and_verify, tapwire run), newest first, and every finding seen in them: in how many runs it failed, first and last time, '
    + 'the evidence of the last failure and its snapshot, and `flaky` when it failed in some runs and not others of the same command on the same code and spec.',
  input: z.strictObject({
    spec: z.string().min(1).max(4096).optional().describe('a spec by the name runs used (its file, or "inline"), its file name, or its hash'),
    command: z.string().min(1).max(8000).optional().describe('runs whose command contains this text'),
    limit: z.number().int().min(1).max(1000).optional().describe('the newest this many matching runs (default 50)'),
  }),
  output: z.object({ runs: z.array(runSchema), findings: z.array(findingHistorySchema), truncated: truncationSchema.optional() }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const backend = await ctx.backend();
    const h: History & { truncated?: ReturnType<typeof truncationNote> } = runHistory(await backend.runs({ limit: RUNS_READ }), a);
    const fits = fitsWithin(ctx.maxTokens, () => ({ structured: h, text: historyText(h) }));
    // Evidence first, as everywhere; then the oldest runs. Findings stay.
    const cut = shrinkFindings(h.findings.map(evidenceOf), fits) ?? {};
    const rowsOmitted = cutRows(h.runs, (rows) => { h.runs = rows; }, fits);
    if (rowsOmitted) Object.assign(cut, { rowsOmitted });
    if (Object.keys(cut).length) h.truncated = truncationNote(ctx.maxTokens, cut, 'ask with a smaller limit, or a spec or command');
    return { structured: h, text: historyText(h) };
  },
});

/** A finding's kept evidence, as the bound shrinks it. */
function evidenceOf(f: { lastEvidence: unknown[] }): EvidenceHolder {
  return { get evidence() { return f.lastEvidence; }, set evidence(v) { f.lastEvidence = v as typeof f.lastEvidence; } };
}

/**
 * Every finding and run the result holds: per finding the runs it failed in of those that judged
 * it, when, its last run and evidence, flakiness; per run its outcome, code, spec and findings.
 */
function historyText(h: History & { truncated?: { note: string } }): string {
  const lines = [`${plural(h.runs.length, 'matching run')}, newest first; ${plural(h.findings.length, 'distinct error or warning finding')} seen${h.findings.length ? ':' : ''}`];
  for (const f of h.findings) {
    const uncounted = f.uncountedRuns ? `; ${plural(f.uncountedRuns, 'more run')} said nothing about it` : '';
    lines.push(`  ${f.flaky ? 'FLAKY ' : ''}${f.severity.toUpperCase()} ${f.kind}: ${f.summary}`,
      `      found in ${f.failedRuns} of ${plural(f.totalRuns, 'run')} that judged it${uncounted}; first ${iso(f.firstFailed)}, last ${iso(f.lastFailed)}`,
      `      fingerprint ${f.fingerprint}; last found in run ${f.lastRun.id}${f.lastRun.snapshot ? `, snapshot ${f.lastRun.snapshot}` : ''}`);
    for (const x of f.flakyOn ?? []) lines.push(`      flaky on commit ${x.commit}${x.dirty ? ` with uncommitted changes ${x.dirty}` : ''}: found in ${x.failedRuns} of ${plural(x.totalRuns, 'run')}`);
    lines.push(`      evidence of that run: ${plural(f.lastEvidence.length, 'flow')}${f.lastEvidence.length ? ':' : ''}`, ...f.lastEvidence.map((e) => `        ${evidenceLine(e)}`));
  }
  if (h.runs.length) lines.push('runs:');
  for (const r of h.runs) {
    const how = r.cancelled ? 'cancelled' : r.timedOut ? 'timed out' : r.exitCode === null ? 'killed by a signal' : `exit ${r.exitCode}`;
    const facts = [
      ...(r.snapshot ? [`snapshot ${r.snapshot}`] : []),
      ...(r.code ? [`commit ${r.code.commit}${r.code.dirty ? ` with uncommitted changes ${r.code.dirty}` : ''}`] : []),
      r.spec ? `spec ${r.spec.name} (hash ${r.spec.hash})` : 'no spec',
      ...(r.verified === false ? ['traffic not verified'] : []),
      ...(r.drained ? [`drain ${r.drained}`] : []),
      r.fingerprints.length ? `findings (${r.fingerprints.length}, by fingerprint): ${r.fingerprints.map((x) => JSON.stringify(x)).join(', ')}` : 'no error or warning findings',
    ];
    lines.push(`  run ${r.id} at ${iso(r.startedAt)}: ${how}, verdict ${r.verdict}; ${facts.join('; ')}`, `      command: ${r.command}`);
  }
  lines.push(...truncatedLines(h.truncated));
  return lines.join('\n');
}
