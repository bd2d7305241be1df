import { overlaps, type BlockMeta } from './blocks.js';
import { PcapngWriter, PcapWriter } from './pcap-writer.js';
import { BlockReader, type Damage, type Segment, type SegmentLog } from './segments.js';

/** A packet frame's body: its length on the wire, then the captured bytes (tag = LINKTYPE, time = capture time). */
export function packetBody(data: Buffer, wireLen: number): Uint8Array[] {
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(wireLen);
  return [len, data];
}

export interface PacketExport {
  packets: number;
  /** Some of the window's segments were deleted by retention after the export had started. */
  vanished: boolean;
}

/**
 * Writes the packets of [since, until] in the order they were stored (capture order) as pcap, or
 * as pcapng when the window holds several link types (one interface each). With `linkType`, only
 * packets of that type, as pcap.
 */
export async function exportPackets(
  log: SegmentLog, since: number, until: number, out: NodeJS.WritableStream, linkType?: number, onDamage?: (d: Damage) => void,
): Promise<PacketExport> {
  log.flush();
  const blocks: (Pick<BlockMeta, 'offset' | 'bytes' | 'count' | 'minTime' | 'maxTime'> & { seg: Segment })[] = [];
  const types = new Set<number>();
  for (const seg of log.segments) {
    for (const b of seg.blocks.list) {
      if (!overlaps(b.minTime, b.maxTime, since, until)) continue;
      blocks.push({ seg, offset: b.offset, bytes: b.bytes, count: b.count, minTime: b.minTime, maxTime: b.maxTime });
      for (const t of b.tags) types.add(t);
    }
  }
  const all = linkType === undefined ? [...types].sort((a, b) => a - b) : [linkType];
  const w = all.length > 1 ? new PcapngWriter(out, all) : new PcapWriter(out, all[0] ?? 1);
  const reader = new BlockReader(onDamage);
  let packets = 0, vanished = false;
  try {
    for (const c of blocks) {
      const read = await reader.read(c.seg, c);
      if (!read) vanished = true;
      for (const f of read?.frames ?? []) {
        if (f.time < since || f.time > until || (linkType !== undefined && f.tag !== linkType)) continue;
        packets++;
        await w.packet({ time: f.time, linkType: f.tag, wireLen: f.body.readUInt32LE(0), data: f.body.subarray(4) });
      }
    }
    await w.flush();
  } finally {
    await reader.close();
  }
  return { packets, vanished };
}
