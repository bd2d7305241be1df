import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Packet, PlaintextMark } from '../../src/capture/index.js';
import { readCapture } from '../../src/capture/reader.js';
import { decodeCapture } from '../../src/pipeline/decode-capture.js';
import { PlaintextPackets } from '../../src/pipeline/plaintext-packets.js';
import { mergePcaps, PacketReader } from '../../src/service/hub-pcap.js';
import type { ConnectionInfo, StreamHandler } from '../../src/stream/index.js';
import { FlowStore } from '../../src/store/index.js';
import { realPackets, tempDirs } from './helpers.js';

/**
 * The hub's snapshot pcap merges its agents' exports (service/hub-pcap.ts): an agent's decrypted
 * plaintext must keep its interface name and each packet's mark there too, or the merged file
 * would mix it with the ciphertext of its 4-tuple when decoded again.
 */
const newDir = tempDirs();
const MARK: PlaintextMark = { via: 'uprobe', library: 'openssl', pid: 31, comm: 'curl' };
const quiet: StreamHandler = { open() {}, data() {}, gap() {}, fin() {}, close() {} };

async function exportOf(store: FlowStore, file: string): Promise<Buffer> {
  const out = createWriteStream(file);
  await store.exportPcap(0, Infinity, out);
  out.end();
  await finished(out);
  return readFileSync(file);
}

describe('hub pcap merge with decrypted plaintext', () => {
  it('keeps the plaintext interface and marks through the merge: decoded again, the HTTP record is marked tls, the other agent\'s packets are in', async () => {
    const dir = newDir();
    const wire = await realPackets('pcaps/tls/tls13-curl.pcap');
    const t0 = wire[0]!.time;
    // Agent a: the TLS connection's ciphertext and its plaintext.
    const a = await FlowStore.open({ dir: join(dir, 'a'), maxBytes: 1 << 30, maxAgeSec: 1e12 });
    for (const p of wire) a.addPacket(p.time, p.linkType, p.data, p.wireLen);
    const tee = new PlaintextPackets(quiet, (p) => a.addPacket(p.time, p.linkType, p.data, p.data.length, p.mark), () => MARK);
    const c: ConnectionInfo = { id: 'tls-1', client: { ip: '127.0.0.1', port: 37114 }, server: { ip: '127.0.0.21', port: 4433 }, family: 4, startTime: t0 + 0.003, firstFrame: 0, handshakeSeen: false, midStream: false };
    tee.open(c);
    tee.data(c, 0, Buffer.from('GET /x HTTP/1.1\r\nHost: tls.test\r\n\r\n'), { time: t0 + 0.0031, frame: 0, offset: 0, peerAck: 0 });
    tee.data(c, 1, Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), { time: t0 + 0.0035, frame: 0, offset: 0, peerAck: 34 });
    tee.close(c, t0 + 0.004, 'fin');
    // Agent b: wire packets only (classic pcap).
    const b = await FlowStore.open({ dir: join(dir, 'b'), maxBytes: 1 << 30, maxAgeSec: 1e12 });
    const other = await realPackets('pcaps/http1/mix.pcap');
    for (const p of other.slice(0, 20)) b.addPacket(p.time, p.linkType, p.data, p.wireLen);
    const files = [await exportOf(a, join(dir, 'a.pcap')), await exportOf(b, join(dir, 'b.pcap'))];
    expect(files.map((f) => f.readUInt32LE(0))).toEqual([0x0a0d0d0a, 0xa1b2c3d4]);
    const readers = files.map((f, i) => new PacketReader(`agent-${i}`, Readable.from([f])));
    for (const r of readers) await r.open();
    const merged = join(dir, 'merged.pcapng');
    const out = createWriteStream(merged);
    const r = await mergePcaps(readers, out);
    out.end();
    await finished(out);
    expect(r.broken).toEqual([]);
    expect(r.packets).toBe(wire.length + tee.counters.packets + 20);
    const read: Packet[] = [];
    await readCapture(merged, (p) => read.push(p));
    expect(read.filter((p) => p.plaintext)).toHaveLength(tee.counters.packets);
    expect(read.find((p) => p.plaintext)!.plaintext).toEqual(MARK);
    const { flows, summary } = await decodeCapture(merged);
    expect(summary.violations.counts['pcapng.plaintext_mark']).toBeUndefined();
    const http = flows.filter((f) => f.protocol === 'http' && f.dst.port === 4433);
    expect(http).toHaveLength(1);
    expect(http[0]!.tls).toEqual({ ...MARK, sni: 'tls.test' });
    expect(flows.filter((f) => f.protocol === 'tls')).toHaveLength(1);
    await a.close();
    await b.close();
  });
});
