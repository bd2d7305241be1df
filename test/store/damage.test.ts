import { createWriteStream, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { agentMetrics } from '../../src/agent/metrics.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { LocalBackend } from '../../src/run/backend-local.js';
import { snapshotsDir } from '../../src/run/local-snapshots.js';
import { FlowFeed, StoreSource } from '../../src/service/index.js';
import { FlowStore } from '../../src/store/index.js';
import { byKey, pageAll, realFlows, realPackets, tempDirs, type RawPacket } from './helpers.js';

/**
 * Sealed segments are trusted by their index at open, so damage that comes later (a flipped bit, a
 * file cut short) is only met when a block is read. It must be a counted, named loss — the segment
 * file, the byte, what was wrong, how many flows or packets — and the rest of the block still read,
 * never a block that quietly ends early.
 */
let flows: FlowRecord[];
let packets: RawPacket[];
beforeAll(async () => {
  flows = (await realFlows()).slice(0, 300);
  packets = await realPackets('pcaps/demo/demo.pcap');
});

const newDir = tempDirs();
const opts = (dir: string) => ({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
const ids = (fs: FlowRecord[]) => fs.map((f) => f.id);

interface Sealed { dir: string; seg: string; pkt: string }

/** A closed store: one flow segment and one packet segment, both sealed with their sidecar index. */
async function sealed(): Promise<Sealed> {
  const dir = newDir();
  const store = await FlowStore.open(opts(dir));
  for (const r of flows) store.add(r);
  for (const p of packets) store.addPacket(p.time, p.linkType, p.data, p.wireLen);
  await store.close();
  return { dir, seg: join(dir, 'flows-0000000001.seg'), pkt: join(dir, 'packets-0000000001.seg') };
}

/** File offset of the n-th frame (0-based) of a segment. */
function frameOffset(file: string, n: number): number {
  const b = readFileSync(file);
  let at = 8;
  for (let i = 0; i < n; i++) at += 8 + b.readUInt32LE(at);
  return at;
}

/** The block of the sidecar index holding file offset `at`. */
function blockAt(seg: string, at: number): { offset: number; count: number } {
  const side = JSON.parse(readFileSync(seg.replace(/\.seg$/, '.idx'), 'utf8')) as { blocks: { offset: number; bytes: number; count: number }[] };
  return side.blocks.find((b) => b.offset <= at && at < b.offset + b.bytes)!;
}

function patch(file: string, f: (b: Buffer) => void): void {
  const b = readFileSync(file);
  f(b);
  writeFileSync(file, b);
}

const without = (n: number) => byKey(flows.filter((_, i) => i !== n));

describe('damage found in sealed segments', () => {
  it('a flipped byte: the frame is a counted, named loss; the frames after it in its block are still read', async () => {
    const { dir, seg } = await sealed();
    const at = frameOffset(seg, 120);
    const block = blockAt(seg, at);
    patch(seg, (b) => { b[at + 30]! ^= 0xff; });
    const named = `damaged on disk: 1 of the ${block.count} flows of the block at byte ${block.offset} of flows-0000000001.seg unreadable (at byte ${at}: checksum mismatch)`;

    const store = await FlowStore.open(opts(dir));
    // The index was trusted: nothing is known to be wrong before a read.
    expect(store.recovery.torn).toEqual([]);
    expect(store.stats().corruptFrames).toBe(0);
    const page = await store.query({ limit: 1000 });
    expect(ids(page.flows)).toEqual(ids(without(120)));
    expect(page.lost).toBe(named);
    expect(store.stats().corruptFrames).toBe(1);
    expect(store.lost(0, Infinity).flows).toContain(`: ${named}`);
    // The next frame of the same block, found by id; the damaged one is not there.
    expect(await store.get(flows[121]!.id)).toEqual(flows[121]);
    expect(await store.get(flows[120]!.id)).toBeUndefined();
    // Read again, the same damage is said again but counted once.
    expect((await pageAll(store, { limit: 7 })).flows).toHaveLength(flows.length - 1);
    expect(store.stats().corruptFrames).toBe(1);
    await store.close();

    // Kept in losses.json: after a restart the loss is stated before any read, and recorded once.
    const again = await FlowStore.open(opts(dir));
    expect(again.lost(0, Infinity).flows).toContain(named);
    expect((await again.query({ limit: 1000 })).lost).toBe(named);
    // The API's source passes it on (GET /api/flows carries `lost`).
    expect((await new StoreSource(again, new FlowFeed()).query({ limit: 1000 })).lost).toBe(named);
    await again.close();
    const kept = JSON.parse(readFileSync(join(dir, 'losses.json'), 'utf8')) as { reason: string }[];
    expect(kept.filter((l) => l.reason === named)).toHaveLength(1);
  });

  it('a frame length made impossible: the read resyncs at the next frame', async () => {
    const { dir, seg } = await sealed();
    const at = frameOffset(seg, 200);
    const block = blockAt(seg, at);
    patch(seg, (b) => b.writeUInt32LE(0xfffffff0, at));
    const store = await FlowStore.open(opts(dir));
    const page = await store.query({ limit: 1000 });
    expect(ids(page.flows)).toEqual(ids(without(200)));
    expect(page.lost).toBe(`damaged on disk: 1 of the ${block.count} flows of the block at byte ${block.offset} of flows-0000000001.seg unreadable (at byte ${at}: frame length 4294967280 impossible)`);
    expect(store.stats().corruptFrames).toBe(1);
    await store.close();
  });

  it('a record that passes its checksum but does not decode is a named loss, not a failed query', async () => {
    const { dir, seg } = await sealed();
    const at = frameOffset(seg, 50);
    const block = blockAt(seg, at);
    patch(seg, (b) => {
      const len = b.readUInt32LE(at);
      const body = at + 8 + 12 + b.readUInt16LE(at + 8 + 10);
      b.fill(0xc1, body, at + 8 + len);
      b.writeUInt32LE(crc32(b.subarray(at + 8, at + 8 + len)), at + 4);
    });
    const store = await FlowStore.open(opts(dir));
    const page = await store.query({ limit: 1000 });
    expect(ids(page.flows)).toEqual(ids(without(50)));
    expect(page.lost).toMatch(new RegExp(`^damaged on disk: 1 of the ${block.count} flows of the block at byte ${block.offset} of flows-0000000001\\.seg unreadable \\(at byte ${at}: the flow record does not decode \\(.+\\)\\)$`));
    expect(store.stats().corruptFrames).toBe(1);
    await store.close();
  });

  it('a segment cut short after it was opened: the flows past the end are counted and named', async () => {
    const { dir, seg } = await sealed();
    const store = await FlowStore.open(opts(dir));
    const at = frameOffset(seg, 290);
    const block = blockAt(seg, at);
    truncateSync(seg, at + 5);
    const page = await store.query({ limit: 1000 });
    expect(ids(page.flows)).toEqual(ids(byKey(flows.slice(0, 290))));
    const end = block.offset + JSON.parse(readFileSync(seg.replace(/\.seg$/, '.idx'), 'utf8')).blocks.find((b: { offset: number }) => b.offset === block.offset).bytes;
    expect(page.lost).toBe(`damaged on disk: 10 of the ${block.count} flows of the block at byte ${block.offset} of flows-0000000001.seg unreadable (at byte ${at}: the file ends at byte ${at + 5}, inside a block its index says runs to byte ${end})`);
    expect(store.stats().corruptFrames).toBe(10);
    await store.close();
  });

  it('a damaged packet segment: the export skips the bad packet, states the loss, and /metrics counts it', async () => {
    const { dir, pkt } = await sealed();
    const at = frameOffset(pkt, 60);
    const block = blockAt(pkt, at);
    patch(pkt, (b) => { b[at + 40]! ^= 0x01; });
    const store = await FlowStore.open(opts(dir));
    const out = createWriteStream(join(dir, 'out.pcap'));
    const r = await store.exportPcap(packets[0]!.time, packets[packets.length - 1]!.time, out);
    out.end();
    await finished(out);
    expect(r.packets).toBe(packets.length - 1);
    expect(r.lost).toContain(`damaged on disk: 1 of the ${block.count} packets of the block at byte ${block.offset} of packets-0000000001.seg unreadable (at byte ${at}: checksum mismatch)`);
    expect(store.stats().corruptFrames).toBe(1);
    const { registry } = agentMetrics({ store, pipeline: () => undefined, capture: () => undefined });
    expect(await registry.metrics()).toMatch(/^tapwire_store_corrupt_frames 1$/m);
    await store.close();
  });

  it('the loss reaches the front doors that state losses: the agent\'s snapshot pcap (StoreSource, the API\'s x-tapwire-loss) and a local snapshot\'s export', async () => {
    const data = newDir();
    const id = 'snap-00000000da7a';
    const dir = join(snapshotsDir(data), id);
    const store = await FlowStore.open({ ...opts(dir), now: () => packets[packets.length - 1]!.time + 1 });
    for (const p of packets) store.addPacket(p.time, p.linkType, p.data, p.wireLen);
    const inner = store.snapshots.create({ name: 'run', since: packets[0]!.time, until: packets[packets.length - 1]!.time }).id;
    await store.close();
    const pkt = join(dir, 'packets-0000000001.seg');
    const at = frameOffset(pkt, 10);
    patch(pkt, (b) => { b[at + 40]! ^= 0x01; });
    const named = new RegExp(`damaged on disk: 1 of the \\d+ packets of the block at byte \\d+ of packets-0000000001\\.seg unreadable \\(at byte ${at}: checksum mismatch\\)`);

    // A stopped local snapshot, read-only through the local backend (tapwire run, MCP's export_pcap).
    const local = await new LocalBackend({ dataDir: data, redactKey: Buffer.from('k') }).exportPcap(id, join(data, 'local.pcap'));
    expect(local.loss).toMatch(named);

    // The same store served as an agent serves its own (the API sends this as the x-tapwire-loss trailer).
    const served = await FlowStore.open(opts(dir));
    const out = createWriteStream(join(data, 'served.pcap'));
    const r = await new StoreSource(served, new FlowFeed()).snapshotWriter.pcap(inner, out);
    out.end();
    await finished(out);
    expect(r.lost).toMatch(named);
    await served.close();
  });
});
