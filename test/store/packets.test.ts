import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { FlowStore, type StoreOptions } from '../../src/store/index.js';
import { realPackets, tempDirs, type RawPacket } from './helpers.js';

const tshark = spawnSync('tshark', ['-v']).status === 0 && spawnSync('capinfos', ['-h']).status === 0;
if (!tshark) console.log('store pcap export: tshark/capinfos not found, the tshark checks are skipped (apt-get install tshark)');

let mix: RawPacket[];
let demo: RawPacket[];
beforeAll(async () => {
  mix = await realPackets('pcaps/http1/mix.pcap');
  demo = await realPackets('pcaps/demo/demo.pcap');
});

const newDir = tempDirs();

async function open(o: Partial<StoreOptions> = {}): Promise<{ store: FlowStore; dir: string }> {
  const dir = newDir();
  return { store: await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9, ...o }), dir };
}

async function exportTo(store: FlowStore, file: string, since: number, until: number, linkType?: number) {
  const out = createWriteStream(file);
  const r = await store.exportPcap(since, until, out, linkType);
  out.end();
  await finished(out);
  return r;
}

/** Per packet as tshark reads it back: epoch time (µs), captured and wire length, protocol stack. */
function tsharkRead(file: string): string[] {
  const r = spawnSync('tshark', ['-n', '-r', file, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.cap_len', '-e', 'frame.len', '-e', 'frame.protocols'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean);
}

const line = (p: RawPacket, stack: string) => `${p.time.toFixed(6)}000\t${p.data.length}\t${p.wireLen}\t${stack}`;

describe('flow store packet ring and pcap export', () => {
  it.skipIf(!tshark)('exports a window as a pcap tshark reads back packet for packet', async () => {
    const { store, dir } = await open({ segmentBytes: 64 * 1024 });
    for (const p of mix) store.addPacket(p.time, p.linkType, p.data, p.wireLen);
    await store.sync();
    const [since, until] = [mix[50]!.time, mix[300]!.time];
    const file = join(dir, 'out.pcap');
    const r = await exportTo(store, file, since, until);
    const want = mix.filter((p) => p.time >= since && p.time <= until);
    expect(r).toEqual({ packets: want.length, lost: null });
    expect(spawnSync('capinfos', ['-t', '-E', file], { encoding: 'utf8' }).stdout).toMatch(/File type:\s+Wireshark\/tcpdump\/\.\.\. - pcap[\s\S]*Ethernet/);
    const got = tsharkRead(file);
    expect(got.map((l) => l.split('\t').slice(0, 3).join('\t'))).toEqual(want.map((p) => line(p, '').trimEnd()));
    expect(got.filter((l) => l.endsWith(':http')).length).toBeGreaterThan(20);
    // The same bytes, packet for packet: tshark on the original capture, filtered to the window.
    const orig = spawnSync('tshark', ['-n', '-r', 'pcaps/http1/mix.pcap', '-Y', `frame.number >= 51 && frame.number <= 301`, '-T', 'fields', '-e', 'frame.time_epoch', '-e', 'frame.cap_len', '-e', 'frame.len', '-e', 'frame.protocols'], { encoding: 'utf8' });
    expect(got).toEqual(orig.stdout.trim().split('\n'));
    // A window reaching before the first packet kept says so.
    expect(await exportTo(store, join(dir, 'before.pcap'), mix[0]!.time - 10, mix[10]!.time)).toEqual({
      packets: 11,
      lost: `no packets kept before ${new Date(mix[0]!.time * 1000).toISOString()}, the first one kept`,
    });
    await store.close();
  });

  it.skipIf(!tshark)('writes pcapng with one interface per link type when the window mixes them, pcap when one is asked for', async () => {
    const { store, dir } = await open();
    // The demo's IPv4 packets once more, as LINKTYPE_RAW (101): the Ethernet header stripped.
    const raw = demo.filter((p) => p.data.readUInt16BE(12) === 0x0800).map((p) => ({ ...p, time: p.time + 0.0000005, linkType: 101, data: p.data.subarray(14), wireLen: p.wireLen - 14 }));
    const all = [...demo.flatMap((p, i) => (raw[i] ? [p, raw[i]!] : [p]))];
    for (const p of all) store.addPacket(p.time, p.linkType, p.data, p.wireLen);
    const [since, until] = [demo[0]!.time, demo[demo.length - 1]!.time + 1];
    const ng = join(dir, 'mixed.pcapng');
    expect((await exportTo(store, ng, since, until)).packets).toBe(all.length);
    expect(spawnSync('capinfos', ['-t', ng], { encoding: 'utf8' }).stdout).toMatch(/pcapng/);
    const stacks = tsharkRead(ng).map((l) => l.split('\t')[3]!.split(':')[0]);
    expect(stacks.filter((s) => s === 'eth').length).toBe(demo.length);
    expect(stacks.filter((s) => s === 'raw').length).toBe(raw.length);
    const eth = join(dir, 'eth.pcap');
    expect((await exportTo(store, eth, since, until, 1)).packets).toBe(demo.length);
    expect(tsharkRead(eth).length).toBe(demo.length);
    await store.close();
  });

  it('keeps the packet ring within its share, keeps a pinned window, and states what retention took, also after a restart', async () => {
    // 2.8 MB of packets into a 1 MiB ring (half of 2 MiB); a snapshot pins the first 40 packets.
    const { store, dir } = await open({ maxBytes: 2 << 20, segmentBytes: 64 * 1024 });
    store.snapshots.create({ name: 'start', since: mix[0]!.time, until: mix[39]!.time });
    for (let i = 0; i < mix.length; i++) {
      const p = mix[i]!;
      store.addPacket(p.time, p.linkType, p.data, p.wireLen);
      if (i % 20 === 19) await store.sync();
    }
    await store.sync();
    const st = store.stats();
    expect(st.evictions).toBeGreaterThan(5);
    expect(st.bytesOnDisk).toBeLessThanOrEqual(2 << 20);
    const count = async (a: number, b: number) => (await exportTo(store, join(dir, 'w.pcap'), a, b));
    // The pinned window is whole, with nothing lost.
    expect(await count(mix[0]!.time, mix[39]!.time)).toEqual({ packets: 40, lost: null });
    // The middle went to retention, and the export says so.
    const mid = await count(mix[100]!.time, mix[150]!.time);
    expect(mid.packets).toBeLessThan(51);
    expect(mid.lost).toMatch(/^packets from .* to .*: deleted by retention \(the packet ring was over its share of maxBytes\)$/);
    // The newest packets are all there.
    expect(await count(mix[mix.length - 20]!.time, mix[mix.length - 1]!.time)).toEqual({ packets: 20, lost: null });
    const kept = (await count(0, Infinity)).packets;
    await store.close();
    const again = await FlowStore.open({ dir, maxBytes: 2 << 20, maxAgeSec: 1e9 });
    expect(again.recovery.packets).toBe(kept);
    expect((await exportTo(again, join(dir, 'w2.pcap'), mix[100]!.time, mix[150]!.time)).lost).toBe(mid.lost);
    await again.close();
  });
});
