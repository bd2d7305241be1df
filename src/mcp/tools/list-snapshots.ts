import { z } from 'zod';
import { cutRows, fitsWithin, truncationNote } from '../bound.js';
import { snapshotSchema, truncationSchema } from '../schemas.js';
import { plural, snapshotLine, truncatedLines } from '../text.js';
import { tool } from '../tool.js';

type Snap = z.infer<typeof snapshotSchema>;

export const listSnapshots = tool({
  name: 'list_snapshots',
  title: 'List snapshots',
  description: 'The snapshots the backend holds, newest first: id, name, window, filter, and whether still open.',
  input: z.strictObject({}),
  output: z.object({ snapshots: z.array(snapshotSchema), truncated: truncationSchema.optional() }),
  annotations: { readOnlyHint: true },
  async run(_a, ctx) {
    const backend = await ctx.backend();
    const all = (await backend.listSnapshots()).sort((x, y) => y.createdAt - x.createdAt);
    let snapshots: Snap[] = all;
    const omitted = cutRows(all, (rows) => { snapshots = rows; }, fitsWithin(ctx.maxTokens, () => ({ structured: { snapshots }, text: text(snapshots, all.length) })));
    const truncated = omitted ? truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'the oldest snapshots were left out') : undefined;
    const structured = { snapshots, ...(truncated ? { truncated } : {}) };
    return { structured, text: text(snapshots, all.length, truncated) };
  },
});

/** Every snapshot the result holds, newest first, and what was cut. */
function text(ss: Snap[], total: number, truncated?: { note: string }): string {
  const open = ss.filter((s) => s.open).length;
  const head = `${plural(total, 'snapshot')} on the backend${ss.length < total ? `, the newest ${ss.length} shown` : ''}; ${open} of those shown still open${ss.length ? ', newest first:' : ''}`;
  return [head, ...ss.map((s) => `  ${snapshotLine(s)}`), ...truncatedLines(truncated)].join('\n');
}
