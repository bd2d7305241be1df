import { z } from 'zod';
import { captureArg } from '../args.js';
import { flowPage, pageArgs, pageShape, pageText } from '../pages.js';
import { truncationSchema } from '../schemas.js';
import { tool } from '../tool.js';

export const listFlows = tool({
  name: 'list_flows',
  title: 'List flows',
  description: 'Compact rows of captured flows (id, time, client, server, call, status, duration, failed/incomplete), in start order, '
    + 'from the live agent or local capture, or from a capture file with `capture`. No headers or bodies: get_flow drills down. '
    + 'Paginates with limit and cursor.',
  input: z.strictObject({ ...pageArgs, capture: captureArg.optional() }),
  output: z.object({ ...pageShape, truncated: truncationSchema.optional() }),
  annotations: { readOnlyHint: true },
  async run(a, ctx) {
    const page = await flowPage(ctx, a, 0);
    return { structured: page, text: pageText(page) };
  },
});
