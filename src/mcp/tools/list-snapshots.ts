import { z } from 'zod';
import { cutRows, fitsWithin, truncationNote } from '../bound.js';
import { snapshotSchema, truncationSchema } from '../schemas.js';
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
    const omitted = cutRows(all, (rows) => { snapshots = rows; }, fitsWithin(ctx.maxTokens, () => ({ structured: { snapshots }, text: text(snapshots) })));
    const structured = { snapshots, ...(omitted ? { truncated: truncationNote(ctx.maxTokens, { rowsOmitted: omitted }, 'the oldest snapshots were left out') } : {}) };
    return { structured, text: text(snapshots) };
  },
});

function text(ss: Snap[]): string {
  const lines = ss.slice(0, 30).map((s) => `${s.id}${s.name ? ` "${s.name}"` : ''}  ${s.open ? 'OPEN' : 'closed'}  since ${new Date(s.since * 1000).toISOString()}${s.filter ? `  filter ${s.filter}` : ''}`);
  if (ss.length > 30) lines.push(`… ${ss.length - 30} more in structuredContent`);
  return [`${ss.length} snapshots`, ...lines].join('\n');
}
