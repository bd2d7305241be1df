import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { exportSnapshot, KEEP_EXPORTS, MAX_PCAP_READ, PCAP_MIME, pcapUri } from '../pcap.js';
import { plural } from '../text.js';
import { tool } from '../tool.js';
import { snapshotIdArg } from './stop-snapshot.js';

export const exportPcap = tool({
  name: 'export_pcap',
  title: 'Export a snapshot as pcap',
  description: 'Writes a snapshot\'s packets to a pcap file (for Wireshark, or `capture` in the other tools) and returns its path and a resource link '
    + `(pcap://{snapshot}, read through MCP as a base64 blob up to ${MAX_PCAP_READ >> 20} MiB). The newest ${KEEP_EXPORTS} exports are kept. `
    + '`loss` says what the packet ring no longer held.',
  input: z.strictObject({ snapshot: snapshotIdArg }),
  output: z.object({
    path: z.string(), uri: z.string().describe('pcap://{snapshot}: resources/read returns the packets'),
    file: z.string().describe('the file as a file:// URL'), bytes: z.number().int(), loss: z.string().optional(),
  }),
  async run(a, ctx) {
    const r = await exportSnapshot(ctx, a.snapshot);
    const uri = pcapUri(a.snapshot);
    const file = pathToFileURL(r.path).href;
    return {
      structured: { path: r.path, uri, file, bytes: r.bytes, ...(r.loss !== undefined ? { loss: r.loss } : {}) },
      text: `wrote ${plural(r.bytes, 'byte')} of pcap to ${r.path} (${file}); read it through MCP as ${uri}`
        + `${r.loss !== undefined ? `\npackets the ring no longer held (loss): ${r.loss}` : ''}`,
      more: [{ type: 'resource_link', uri, name: `${a.snapshot}.pcap`, mimeType: PCAP_MIME, size: r.bytes }],
    };
  },
});
