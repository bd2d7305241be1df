import { z } from 'zod';
import { captureArg, specOf, timeArg } from '../args.js';
import { verifyWithSpec } from '../../verify/spec/index.js';
import { boundVerdict, compactVerdictText } from '../verdict.js';
import { sourceSchema, truncationSchema, verdictShape } from '../schemas.js';
import { flowsOf } from '../source.js';
import { tool } from '../tool.js';

export const specArg = z.string().min(1).max(1 << 20)
  .describe('a spec as inline YAML or JSON (schema/tapwire-spec.schema.json), or the path of a spec file; absent: the built-in detectors alone');

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
  }),
  output: z.object({
    ...verdictShape,
    source: sourceSchema,
    spec: z.object({ name: z.string(), hash: z.string() }).optional(),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    // The spec first: a typo in it is found before a capture is decoded or an agent asked.
    const spec = await specOf(a.spec, ctx.cwd);
    const { flows, source } = await flowsOf(ctx, a);
    const v = verifyWithSpec(flows, spec?.spec);
    const result = boundVerdict({ ...v, source, ...(spec ? { spec: { name: spec.name, hash: spec.hash } } : {}) }, ctx.maxTokens);
    return { structured: result, text: compactVerdictText(result) + (result.truncated ? `${result.truncated.note}\n` : '') };
  },
});
