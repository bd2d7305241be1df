import { z } from 'zod';
import { snapshotSchema } from '../schemas.js';
import { knownSnapshot } from '../source.js';
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
    const span = s.until !== undefined ? `${new Date(s.since * 1000).toISOString()} to ${new Date(s.until * 1000).toISOString()}` : `from ${new Date(s.since * 1000).toISOString()}`;
    return { structured: s, text: `snapshot ${s.id} stopped: ${span}${s.drained ? `, drain ${s.drained}` : ''}` };
  },
});
