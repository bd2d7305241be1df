import { z } from 'zod';
import { filterArg, filterOf } from '../args.js';
import { tool } from '../tool.js';

export const startSnapshot = tool({
  name: 'start_snapshot',
  title: 'Start a snapshot',
  description: 'Opens a snapshot now: the flows (and packets) from this moment on are kept under its id until stop_snapshot. '
    + 'Through the agent when the server has one, else by capturing locally on the server\'s interface (needs root or CAP_NET_RAW).',
  input: z.strictObject({
    name: z.string().min(1).max(200).optional().describe('a label, e.g. the test being run'),
    filter: filterArg.optional().describe('keep only flows this CEL filter matches'),
  }),
  output: z.object({ id: z.string(), backend: z.string() }),
  async run(a, ctx) {
    filterOf(a.filter);
    const backend = await ctx.backend();
    const { id } = await backend.startSnapshot({ name: a.name, filter: a.filter, iface: ctx.iface });
    return { structured: { id, backend: backend.describe() }, text: `snapshot ${id} started (${backend.describe()}); stop it with stop_snapshot` };
  },
});
