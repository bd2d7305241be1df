import { appendFileSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { FlowStore } from '../../src/store/index.js';
import { crashed, pageAll, realFlows, realPackets, tempDirs, type RawPacket } from './helpers.js';

let flows: FlowRecord[];
let packets: RawPacket[];
beforeAll(async () => {
  flows = (await realFlows()).slice(0, 300);
  packets = await realPackets('pcaps/demo/demo.pcap');
});

const newDir = tempDirs();

const opts = (dir: string) => ({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });

/**
 * A store in one flow segment and one packet segment, synced but not closed (as a crash leaves
 * it: unsealed, so the next open scans it), or closed (sealed, with sidecars).
 */
async function written(close = false): Promise<{ dir: string; seg: string; pkt: string }> {
  const dir = newDir();
  const store = await FlowStore.open(opts(dir));
  for (const r of flows) store.add(r);
  for (const p of packets) store.addPacket(p.time, p.linkType, p.data, p.wireLen);
  if (close) {
    await store.close();
  } else {
    await store.sync();
    crashed(dir);
  }
  return { dir, seg: join(dir, 'flows-0000000001.seg'), pkt: join(dir, 'packets-0000000001.seg') };
}

/** File offset of the n-th frame (0-based) of a segment. */
function frameOffset(file: string, n: number): number {
  const b = readFileSync(file);
  let at = 8;
  for (let i = 0; i < n; i++) at += 8 + b.readUInt32LE(at);
  return at;
}

describe('segment files', () => {
  it('stops at a frame whose checksum is wrong: the frames before it stay, the file is cut there', async () => {
    const { dir, seg } = await written();
    const at = frameOffset(seg, 120);
    const b = readFileSync(seg);
    b[at + 30] ^= 0xff;
    writeFileSync(seg, b);
    const store = await FlowStore.open(opts(dir));
    expect(store.recovery.torn).toEqual([{ file: 'flows-0000000001.seg', offset: at, reason: 'checksum mismatch' }]);
    expect(store.recovery.flows).toBe(120);
    expect(statSync(seg).size).toBe(at);
    const ids = new Set((await pageAll(store, { limit: 1000 })).flows.map((f) => f.id));
    expect(flows.slice(0, 120).every((f) => ids.has(f.id))).toBe(true);
    expect(ids.size).toBe(120);
    await store.close();
  });

  it('recognises a zero-filled tail (a crash after the size grew, before the data landed) and loses nothing', async () => {
    const { dir, seg } = await written(true);
    const size = statSync(seg).size;
    appendFileSync(seg, Buffer.alloc(4096));
    const store = await FlowStore.open(opts(dir));
    expect(store.recovery.torn).toEqual([{ file: 'flows-0000000001.seg', offset: size, reason: 'zero-filled tail' }]);
    expect(store.recovery.flows).toBe(flows.length);
    await store.close();
  });

  it('drops a segment a crash left with half a header, and rebuilds a lost sidecar by scanning', async () => {
    const { dir, seg } = await written(true);
    writeFileSync(join(dir, 'flows-0000000002.seg'), Buffer.from('TWS'));
    writeFileSync(join(dir, 'flows-0000000001.idx.tmp'), '{"ver');
    const sidecar = seg.replace(/\.seg$/, '.idx');
    writeFileSync(sidecar, '{"version":1,"bytes":');
    const store = await FlowStore.open(opts(dir));
    expect(store.recovery.torn).toEqual([{ file: 'flows-0000000002.seg', offset: 0, reason: 'header cut short' }]);
    expect(store.recovery.flows).toBe(flows.length);
    expect(readdirSync(dir).filter((f) => f.startsWith('flows-')).sort()).toEqual(['flows-0000000001.idx', 'flows-0000000001.seg']);
    expect(JSON.parse(readFileSync(sidecar, 'utf8')).bytes).toBe(statSync(seg).size);
    await store.close();
  });

  it('detects a torn packet segment too, and an export over it states the crash', async () => {
    const { dir, pkt } = await written();
    const at = frameOffset(pkt, 60);
    const len = readFileSync(pkt).readUInt32LE(at) + 8;
    truncateSync(pkt, at + 20);
    const store = await FlowStore.open(opts(dir));
    expect(store.recovery).toMatchObject({ packets: 60, flows: flows.length, torn: [{ file: 'packets-0000000001.seg', offset: at, reason: `frame cut short (20 of ${len} bytes)` }] });
    expect(store.lost(packets[0]!.time, Infinity).packets).toMatch(/cut short by a crash \(packets-0000000001\.seg at byte \d+: frame cut short/);
    expect(existsSync(pkt.replace(/\.seg$/, '.idx'))).toBe(true);
    await store.close();
  });
});
