import { decodeMark, type PlaintextMark } from '../capture/index.js';
import { overlaps, type BlockMeta } from './blocks.js';
import { PcapngWriter, PcapWriter, type PacketWriter } from './pcap-writer.js';
import { BlockReader, type Damage, type Segment, type SegmentLog } from './segments.js';

/** A packet frame's body: its length on the wire, then the captured bytes (tag = LINKTYPE, time = capture time). */
export function packetBody(data: Buffer, wireLen: number): Uint8Array[] {
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(wireLen);
  return [len, data];
}

export interface PacketExport {
  packets: number;
  /** Of them, decrypted TLS plaintext synthesized as TCP (frames with a mark). */
  plaintext: number;
  /** Some of the window's segments were deleted by retention after the export had started. */
  vanished: boolean;
}

type WindowBlock = Pick<BlockMeta, 'offset' | 'bytes' | 'count' | 'minTime' | 'maxTime' | 'tags'> & { seg: Segment; marked: boolean };

/**
 * Writes the packets of [since, until] in the order they were stored (capture order) as pcap, or
 * as pcapng when the window holds several link types (one interface each) or decrypted TLS
 * plaintext (a packet frame whose key is its mark: its own interface, the mark in each packet's
 * comment). A window without plaintext is written exactly as before plaintext was kept. With
 * `linkType`, only wire packets of that type, as pcap.
 */
export async function exportPackets(
  log: SegmentLog, since: number, until: number, out: NodeJS.WritableStream, linkType?: number, onDamage?: (d: Damage) => void,
): Promise<PacketExport> {
  log.flush();
  const blocks: WindowBlock[] = [];
  const types = new Set<number>();
  for (const seg of log.segments) {
    for (const b of seg.blocks.list) {
      if (!overlaps(b.minTime, b.maxTime, since, until)) continue;
      // A block holds a keyed frame exactly when it has a key filter (blocks.ts): for packets, a mark.
      blocks.push({ seg, offset: b.offset, bytes: b.bytes, count: b.count, minTime: b.minTime, maxTime: b.maxTime, tags: b.tags, marked: b.keys !== undefined });
      for (const t of b.tags) types.add(t);
    }
  }
  const reader = new BlockReader(onDamage);
  let packets = 0, plaintext = 0, vanished = false;
  try {
    const plain = linkType === undefined ? await plaintextTypes(reader, blocks, since, until) : { wire: types, plain: new Set<number>() };
    const wire = linkType === undefined ? [...plain.wire].sort((a, b) => a - b) : [linkType];
    const w: PacketWriter = wire.length > 1 || plain.plain.size > 0
      ? new PcapngWriter(out, wire, [...plain.plain].sort((a, b) => a - b))
      : new PcapWriter(out, wire[0] ?? 1);
    for (const c of blocks) {
      const read = await reader.read(c.seg, c);
      if (!read) vanished = true;
      for (const f of read?.frames ?? []) {
        if (f.time < since || f.time > until) continue;
        const mark = f.key ? markOf(f.key) : undefined;
        if (linkType !== undefined && (f.tag !== linkType || f.key)) continue;
        packets++;
        if (f.key) plaintext++;
        await w.packet({ time: f.time, linkType: f.tag, wireLen: f.body.readUInt32LE(0), data: f.body.subarray(4), ...(mark ? { mark } : {}) });
      }
    }
    await w.flush();
  } finally {
    await reader.close();
  }
  return { packets, plaintext, vanished };
}

/**
 * The link types of the window's wire packets and of its plaintext ones. Blocks without a mark
 * answer from their index; a marked block wholly inside the window too (its frames are all in);
 * a marked block that the window cuts is read, so that a window whose plaintext lies outside it
 * stays classic pcap.
 */
async function plaintextTypes(reader: BlockReader, blocks: WindowBlock[], since: number, until: number): Promise<{ wire: Set<number>; plain: Set<number> }> {
  const wire = new Set<number>(), plain = new Set<number>();
  for (const b of blocks) {
    if (!b.marked) {
      for (const t of b.tags) wire.add(t);
      continue;
    }
    // Which tags are wire and which plaintext is only in the frames: read the block.
    const read = await reader.read(b.seg, b);
    for (const f of read?.frames ?? []) {
      if (f.time < since || f.time > until) continue;
      (f.key ? plain : wire).add(f.tag);
    }
  }
  return { wire, plain };
}

/** A stored mark; one that does not read (written by a later version) still marks the packet as plaintext. */
function markOf(key: string): PlaintextMark {
  const m = decodeMark(key);
  return typeof m === 'string' ? { via: 'uprobe', library: 'unknown' } : m;
}
