import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { knownSnapshot } from '../source.js';
import { tool } from '../tool.js';
import { snapshotIdArg } from './stop-snapshot.js';

export const exportPcap = tool({
  name: 'export_pcap',
  title: 'Export a snapshot as pcap',
  description: 'Writes a snapshot\'s packets to a pcap file (for Wireshark, or `capture` in the other tools) and returns its path and a resource link. '
    + '`loss` says what the packet ring no longer held.',
  input: z.strictObject({ snapshot: snapshotIdArg }),
  output: z.object({ path: z.string(), uri: z.string(), bytes: z.number().int(), loss: z.string().optional() }),
  async run(a, ctx) {
    const backend = await ctx.backend();
    await knownSnapshot(backend, a.snapshot, 'snapshot');
    const dir = await exportDir(ctx.dataDir);
    const r = await backend.exportPcap(a.snapshot, join(dir, `${a.snapshot}-${Date.now()}.pcap`));
    const uri = pathToFileURL(r.path).href;
    return {
      structured: { path: r.path, uri, bytes: r.bytes, ...(r.loss !== undefined ? { loss: r.loss } : {}) },
      text: `wrote ${r.bytes} bytes to ${r.path}${r.loss && r.loss !== 'none' ? ` (loss: ${r.loss})` : ''}`,
      more: [{ type: 'resource_link', uri, name: `${a.snapshot}.pcap`, mimeType: 'application/vnd.tcpdump.pcap', size: r.bytes }],
    };
  },
});

/** `<data dir>/exports`, else the system's temporary directory when the data dir cannot be written. */
async function exportDir(dataDir: string): Promise<string> {
  const dir = join(dataDir, 'exports');
  try {
    await mkdir(dir, { recursive: true });
    return dir;
  } catch {
    return tmpdir();
  }
}
