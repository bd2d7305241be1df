import { resolve } from 'node:path';
import { z } from 'zod';
import { runAndVerify, type RunProgress } from '../../run/index.js';
import { specOf } from '../args.js';
import { ArgError } from '../errors.js';
import { boundVerdict, verdictResultText, type VerdictResult } from '../verdict.js';
import { snapshotSchema, truncationSchema, verdictShape } from '../schemas.js';
import { plural, snapshotLine } from '../text.js';
import { tool, type Extra } from '../tool.js';
import { findingsPage, nextFindingsSchema, specArg } from './verify.js';

/** Output kept of the command: its end, where test runners print their summary. */
const TAIL_CHARS = 8000;

export const runAndVerifyTool = tool({
  name: 'run_and_verify',
  title: 'Run a command under capture and verify it',
  description: 'Starts a snapshot (through the agent when the server has one, else a local capture on `interface`), runs the command (/bin/sh -c) in cwd, '
    + 'and when it exits drains the capture up to that instant (no sleep), stops the snapshot and verifies its flows. Returns the exit code, '
    + 'the tail of the output, the snapshot id, the verdict and the findings; the run is kept for run_history and runs_touching. '
    + 'Sends progress notifications while it runs; cancelling kills the command.',
  input: z.strictObject({
    command: z.string().min(1).max(8000).describe('the test command, run by /bin/sh -c, e.g. "npm test -- orders"'),
    cwd: z.string().min(1).max(4096).optional().describe('working directory, relative to the server\'s (default: the server\'s)'),
    spec: specArg.optional(),
    timeout_s: z.number().positive().max(86_400).optional().describe('kill the command (its whole process group) after this many seconds'),
    interface: z.string().min(1).max(64).optional().describe('local capture only: the interface (default: the server\'s --interface, lo)'),
  }),
  output: z.object({
    exitCode: z.number().int().nullable().describe('null when a signal ended the command'),
    signal: z.string().optional(),
    timedOut: z.boolean().optional(),
    cancelled: z.boolean().optional(),
    outputTail: z.string().describe('the last lines of stdout and stderr together'),
    snapshotId: z.string(),
    snapshot: snapshotSchema.optional().describe('as stopped; absent when it could not be stopped (see warnings)'),
    runId: z.string().describe('the run (run_history)'),
    kept: z.boolean().describe('whether the backend kept the run (when not, warnings say why)'),
    backend: z.string(),
    ...verdictShape,
    next: nextFindingsSchema.describe('present when findings did not fit: pass as cursor to verify with snapshot = snapshotId and the same spec for the rest'),
    warnings: z.array(z.string()),
    truncated: truncationSchema.optional(),
  }),
  // It runs whatever command it is given, as the server's user.
  annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
  async run(a, ctx, extra) {
    if (ctx.commandsRefused) throw new ArgError('command', ctx.commandsRefused);
    const cwd = resolve(ctx.cwd, a.cwd ?? '.');
    // Read and checked here, so that a spec error names `spec`; the run uses it as it is.
    const spec = await specOf(a.spec, cwd);
    const backend = await ctx.backend();
    const warnings: string[] = [];
    if (a.interface !== undefined && backend.kind === 'agent') warnings.push(`interface "${a.interface}" ignored: the agent captures where it was started`);
    const r = await runAndVerify({
      backend, command: a.command, cwd, timeoutSec: a.timeout_s, iface: a.interface ?? ctx.iface,
      ...(spec ? { spec: { loaded: spec } } : {}),
    }, { onProgress: progressTo(extra), signal: extra.signal });
    const tail = r.outputTail.length > TAIL_CHARS ? `…${r.outputTail.slice(-TAIL_CHARS)}` : r.outputTail;
    const result = boundVerdict({
      exitCode: r.run.exitCode, ...(r.run.signal ? { signal: r.run.signal } : {}),
      ...(r.run.timedOut ? { timedOut: true } : {}), ...(r.run.cancelled ? { cancelled: true } : {}),
      outputTail: tail, snapshotId: r.run.snapshot ?? '', ...(r.snapshot ? { snapshot: r.snapshot } : {}), runId: r.run.id, kept: r.kept, backend: backend.describe(),
      ...r.verdict, warnings: [...warnings, ...r.warnings],
    }, ctx.maxTokens, runText, r.run.snapshot ? findingsPage({ snapshot: r.run.snapshot, spec: a.spec }, r.verdict.findings.length) : {});
    return { structured: result, text: runText(result) };
  },
});

type RunOut = VerdictResult & {
  exitCode: number | null; signal?: string; timedOut?: boolean; cancelled?: boolean; outputTail: string; snapshotId: string;
  snapshot?: Parameters<typeof snapshotLine>[0]; runId: string; kept: boolean; backend: string; warnings: string[];
};

const RUN_KEYS = ['exitCode', 'signal', 'timedOut', 'cancelled', 'outputTail', 'snapshotId', 'snapshot', 'runId', 'kept', 'backend', 'warnings'];

/** The text copy: how the command ended, the verdict as verify's text, the run, the snapshot, warnings, the output kept. */
function runText(r: RunOut): string {
  const how = r.cancelled ? 'cancelled' : r.timedOut ? 'timed out' : r.exitCode === null ? `killed by ${r.signal ?? 'a signal'}` : `exit ${r.exitCode}`;
  const tail = r.outputTail.trimEnd();
  const lines = tail ? tail.split('\n') : [];
  return [`command: ${how}; snapshot ${r.snapshotId}; run ${r.runId}`,
    verdictResultText(r, `verify with snapshot ${r.snapshotId} and the same spec`, RUN_KEYS).trimEnd(),
    `run ${r.runId}: ${r.kept ? 'kept for run_history and runs_touching' : 'not kept (see warnings)'}; backend ${r.backend}`,
    r.snapshot ? `snapshot ${snapshotLine(r.snapshot)}` : `snapshot ${r.snapshotId || '(none)'}: not stopped (see warnings)`,
    ...r.warnings.map((w) => `warning: ${w}`),
    lines.length ? `output (the last ${plural(lines.length, 'line')} of stdout and stderr, at most ${TAIL_CHARS} characters):` : 'output: none',
    ...lines.map((l) => `  ${l}`)].join('\n');
}

/** MCP progress notifications, when the client asked for them with a progress token. */
function progressTo(extra: Extra): ((p: RunProgress) => void) | undefined {
  const token = extra._meta?.progressToken;
  if (token === undefined) return undefined;
  return (p) => {
    void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: p.progress, total: p.total, message: p.message } })
      .catch(() => { /* the client went away: the run still completes and is kept */ });
  };
}
