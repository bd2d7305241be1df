import { z } from 'zod';
import { snapshotSchema } from '../schemas.js';
import { knownSnapshot } from '../source.js';
import { snapshotLine } from '../text.js';
import { tool } from '../tool.js';

export const snapshotIdArg = z.string().min(1).max(200).describe('a snapshot id (start_snapshot, list_snapshots)');

export const stopSnapshot = tool({
  name: 'stop_snapshot',
  title: 'Stop a snapshot',
  description: 'Closes a snapshot. The capture is drained up to this instant first, so everything sent before the call is in it; '
    + '`drained` says whether that was proven.',
  input: z.strictObject({ id: snapshotIdArg }),
  output: snapshotSchema,
  async run(a, ctx) {
    const backend = await ctx.backend();
    await knownSnapshot(backend, a.id, 'id');
    const s = await backend.stopSnapshot(a.id);
    const drain = s.drained === 'proven' ? 'the drain was proven: everything sent before the call is in it'
      : s.drained === 'unproven' ? 'the drain was not proven: traffic sent just before the call may be missing' : 'the backend did not say whether the drain was proven';
    return { structured: s, text: `snapshot stopped: ${snapshotLine(s)}\n${drain}` };
  },
});
