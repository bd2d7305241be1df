import { z } from 'zod';
import { captureArg } from '../args.js';
import { DEFAULT_BODY_BYTES } from '../bodies.js';
import { fitsWithin } from '../bound.js';
import { boundFlow, type BoundedFlow } from '../flow-bound.js';
import { flowDetailText } from '../flow-text.js';
import { ArgError } from '../errors.js';
import { flowRecordSchema, truncationSchema, type FlowJson } from '../schemas.js';
import { tool } from '../tool.js';

export const getFlow = tool({
  name: 'get_flow',
  title: 'Get one flow',
  description: 'One flow record in full: peers, timings, headers, status, SQL, gRPC status; bodies and decoded messages only with include_bodies, '
    + 'each cut to max_body_bytes. With `capture`, ids from that capture file resolve offline.',
  input: z.strictObject({
    id: z.string().min(1).max(200).describe('a flow id from list_flows, a finding\'s evidence, or a verdict'),
    capture: captureArg.optional(),
    include_bodies: z.boolean().optional().describe('include bodies and decoded messages (default false)'),
    max_body_bytes: z.number().int().min(1).max(1 << 20).optional().describe(`with include_bodies: bytes kept per body (default ${DEFAULT_BODY_BYTES})`),
  }),
  output: z.object({
    flow: flowRecordSchema,
    payloads: z.array(z.string()).describe('payload fields left out or cut'),
    truncated: truncationSchema.optional(),
  }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    let r;
    if (a.capture !== undefined) {
      const c = await ctx.captures.load(a.capture, ctx.cwd);
      r = await c.source.flow(a.id);
      if (!r) throw new ArgError('id', `no flow "${a.id}" in ${a.capture} (list_flows with this capture lists its ids)`);
    } else {
      const backend = await ctx.backend();
      r = await backend.flow(a.id);
      if (!r) throw new ArgError('id', `no flow "${a.id}" on the ${backend.kind} backend (it may be past retention; from a capture file, pass capture)`);
    }
    const structuredOf = (v: BoundedFlow) => ({
      flow: v.flow as unknown as FlowJson, payloads: v.payloads, ...(v.truncated ? { truncated: v.truncated } : {}),
    });
    const textOf = (v: BoundedFlow) => flowDetailText(v, a.include_bodies === true);
    const v = boundFlow(r, a.include_bodies ? (a.max_body_bytes ?? DEFAULT_BODY_BYTES) : undefined, ctx.maxTokens,
      (w) => fitsWithin(ctx.maxTokens, () => ({ structured: structuredOf(w), text: textOf(w) }))());
    const structured = structuredOf(v), text = textOf(v);
    return { structured, text };
  },
});
