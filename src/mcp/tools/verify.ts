import { z } from 'zod';
import { captureArg, cursorIn, cursorOut, specOf, timeArg } from '../args.js';
import { ArgError } from '../errors.js';
import { verifyWithSpec } from '../../verify/index.js';
import { boundVerdict, verdictResultText, type FindingsPage } from '../verdict.js';
import { sourceSchema, truncationSchema, verdictShape } from '../schemas.js';
import { flowsOf } from '../source.js';
import { tool } from '../tool.js';

export const specArg = z.string().min(1).max(1 << 20)
  .describe('a spec as inline YAML or JSON (schema/tapwire-spec.schema.json), or the path of a spec file; absent: the built-in detectors alone');

export const nextFindingsSchema = z.string().optional()
  .describe('present when findings did not fit: pass as cursor to verify with the same capture, snapshot, since, until and spec for the rest');

/** The verify arguments a findings cursor belongs to (with how many findings there were). */
interface FindingsQuery {
  capture?: string;
  snapshot?: string;
  since?: string;
  until?: string;
  spec?: string;
  cursor?: string;
}

/**
 * Where this page of findings starts, and cursors for the next: bound to the arguments and the
 * number of findings, so a cursor from other arguments, or from findings that have since changed
 * (a live window moves), is refused rather than read as an offset into different findings.
 */
export function findingsPage(a: FindingsQuery, findings: number): FindingsPage {
  const key = { capture: a.capture, snapshot: a.snapshot, since: a.since, until: a.until, spec: a.spec, findings };
  let offset: number;
  try {
    offset = cursorIn(a.cursor, key);
  } catch (e) {
    if (!(e instanceof ArgError)) throw e;
    throw new ArgError('cursor', 'not a cursor of these findings: pass the "next" of a result with the same capture, snapshot, since, until and spec; '
      + 'if the findings changed since (a live window moves), call verify again without cursor');
  }
  if (offset >= findings && findings > 0) throw new ArgError('cursor', `starts past the ${findings} findings: call verify again without cursor`);
  return { offset, cursor: (o) => cursorOut(o, key) };
}

export const verifyTool = tool({
  name: 'verify',
  title: 'Verify flows',
  description: 'Judges flows with the built-in detectors (retries, redundant calls, N+1, secrets forwarded, error statuses, slow calls …) and a spec\'s checks: '
    + 'verdict pass, fail or inconclusive, with every finding and its evidence flows. Flows from a capture file, a snapshot, or a since/until window of live flows '
    + '(since/until also narrow a capture or a snapshot).',
  input: z.strictObject({
    capture: captureArg.optional(),
    snapshot: z.string().min(1).max(200).optional().describe('a snapshot id (start_snapshot, list_snapshots)'),
    since: timeArg('flows that started at or after this time').optional(),
    until: timeArg('flows that started at or before this time').optional(),
    spec: specArg.optional(),
    cursor: z.string().min(1).max(200).optional().describe('"next" of a previous verify (or run_and_verify) result with the same arguments: the findings that did not fit'),
  }),
  output: z.object({
    ...verdictShape,
    next: nextFindingsSchema,
    source: sourceSchema,
    spec: z.object({ name: z.string(), hash: z.string() }).optional(),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    // The spec first: a typo in it is found before a capture is decoded or an agent asked.
    const spec = await specOf(a.spec, ctx.cwd);
    const { flows, source, undecoded, window } = await flowsOf(ctx, a, true, true);
    const v = verifyWithSpec(flows, spec?.spec, undefined, undecoded, window);
    const page = findingsPage(a, v.findings.length);
    const result = boundVerdict({ ...v, source, ...(spec ? { spec: { name: spec.name, hash: spec.hash } } : {}) }, ctx.maxTokens, verdictResultText, page);
    return { structured: result, text: verdictResultText(result) };
  },
});
