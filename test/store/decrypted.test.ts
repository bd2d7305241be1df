import { spawnSync } from 'node:child_process';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { markComment, type Packet, type PlaintextMark } from '../../src/capture/index.js';
import { readCapture } from '../../src/capture/reader.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { decodeCapture } from '../../src/pipeline/decode-capture.js';
import { ipBytes } from '../../src/common/index.js';
import { PlaintextPackets, type PlaintextPacket } from '../../src/pipeline/plaintext-packets.js';
import type { CloseReason, ConnectionInfo, Dir, StreamHandler, StreamMeta } from '../../src/stream/index.js';
import { FlowStore, pcapngPacketBlock } from '../../src/store/index.js';
import { PcapngWriter } from '../../src/store/pcap-writer.js';
import { realPackets, tempDirs, type RawPacket } from './helpers.js';

/**
 * Issue 17, kubeshark/kubeshark#1882: decrypted plaintext kept with its connection. The tee
 * (PlaintextPackets) turns plaintext streams into TCP packets on the real 4-tuple, the store keeps
 * them marked beside the wire's ciphertext, its pcap export writes pcapng with the plaintext on its
 * own interface and the mark in each packet's comment, and decoding that file again gives the
 * plaintext's records marked `tls`, apart from the ciphertext of the same 4-tuple (which still
 * gives the `tls` handshake record). tshark reads it too.
 */
const tshark = spawnSync('tshark', ['-v']).status === 0;
if (!tshark) console.log('test/store/decrypted.test.ts: tshark not found, the tshark checks are skipped (apt-get install tshark)');

const newDir = tempDirs();
const MARK: PlaintextMark = { via: 'uprobe', library: 'openssl', pid: 4242, comm: 'curl' };

/** What the tee passes on, as lines, so the forwarding can be compared call for call. */
class Calls implements StreamHandler {
  readonly lines: string[] = [];
  open(c: ConnectionInfo): void { this.lines.push(`open ${c.id}`); }
  data(c: ConnectionInfo, d: Dir, b: Buffer, m: StreamMeta): void { this.lines.push(`data ${c.id} ${d} ${m.offset} ${b.toString('latin1')}`); }
  gap(c: ConnectionInfo, d: Dir, n: number, m: StreamMeta): void { this.lines.push(`gap ${c.id} ${d} ${m.offset} ${n}`); }
  fin(c: ConnectionInfo, d: Dir): void { this.lines.push(`fin ${c.id} ${d}`); }
  close(c: ConnectionInfo, _t: number, r: CloseReason): void { this.lines.push(`close ${c.id} ${r}`); }
}

function conn(id: string, client: [string, number], server: [string, number], time: number): ConnectionInfo {
  return {
    id, client: { ip: client[0], port: client[1] }, server: { ip: server[0], port: server[1] }, family: client[0].includes(':') ? 6 : 4,
    startTime: time, firstFrame: 0, handshakeSeen: false, midStream: false,
  };
}

/** Drives a tee as PlaintextStreams does: offsets per direction, the peer's progress as peerAck. */
function stream(tee: StreamHandler, c: ConnectionInfo, steps: ([Dir, string | number, number] | ['end', CloseReason, number])[]): void {
  const next = [0, 0];
  tee.open(c);
  for (const s of steps) {
    if (s[0] === 'end') {
      tee.close(c, s[2], s[1]);
      continue;
    }
    const [dir, what, time] = s;
    const meta = { time, frame: 0, offset: next[dir]!, peerAck: next[1 - dir]! };
    if (typeof what === 'number') {
      tee.gap(c, dir, what, meta);
      next[dir]! += what;
    } else {
      tee.data(c, dir, Buffer.from(what, 'latin1'), meta);
      next[dir]! += what.length;
    }
  }
}

async function exportTo(store: FlowStore, file: string, since = 0, until = Infinity) {
  const out = createWriteStream(file);
  const r = await store.exportPcap(since, until, out);
  out.end();
  await finished(out);
  return r;
}

function tsharkFields(file: string, filter: string, ...fields: string[]): string[] {
  const r = spawnSync('tshark', ['-n', '-r', file, '-o', 'tcp.check_checksum:TRUE', '-Y', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').filter(Boolean);
}

const REQUEST = 'GET /orders.json HTTP/1.1\r\nHost: tls.test\r\nUser-Agent: curl/7.88.1\r\n\r\n';
const RESPONSE = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{"id":42}\n';

let wire: RawPacket[];
beforeAll(async () => {
  // A real TLS 1.3 connection (curl → openssl s_server): 127.0.0.1:37114 → 127.0.0.21:4433, SNI tls.test.
  wire = await realPackets('pcaps/tls/tls13-curl.pcap');
});

describe('decrypted TLS plaintext kept as packets, exported as pcapng, decoded again', () => {
  it('the tee passes every call on unchanged and makes a handshake, data with the stream\'s sequence numbers, and FINs', () => {
    const calls = new Calls(), packets: PlaintextPacket[] = [];
    const tee = new PlaintextPackets(calls, (p) => packets.push(p), () => MARK);
    const c = conn('tls-a', ['127.0.0.1', 40000], ['127.0.0.2', 443], 100);
    stream(tee, c, [[0, 'ping', 100.1], [1, 'pong!', 100.2], ['end', 'fin', 100.3]]);
    expect(calls.lines).toEqual(['open tls-a', 'data tls-a 0 0 ping', 'data tls-a 1 0 pong!', 'close tls-a fin']);
    const tcp = packets.map((p) => {
      const d = p.data, t = 20;
      return { src: d.readUInt16BE(t), flags: d[t + 13], seq: d.readUInt32BE(t + 4), ack: d.readUInt32BE(t + 8), len: d.length - 40, time: p.time };
    });
    const isn = [tcp[0]!.seq, tcp[1]!.seq];
    expect(tcp.map((p) => [p.src, p.flags, p.len])).toEqual([
      [40000, 0x02, 0], [443, 0x12, 0], [40000, 0x10, 0], [40000, 0x18, 4], [443, 0x18, 5], [443, 0x11, 0], [40000, 0x11, 0], [443, 0x10, 0],
    ]);
    // Data at ISN + 1 + offset, acknowledging what the other side had sent; FINs after the last byte.
    expect(tcp[3]).toMatchObject({ seq: (isn[0]! + 1) >>> 0, ack: (isn[1]! + 1) >>> 0, time: 100.1 });
    expect(tcp[4]).toMatchObject({ seq: (isn[1]! + 1) >>> 0, ack: (isn[0]! + 5) >>> 0, time: 100.2 });
    expect(tcp[5]).toMatchObject({ seq: (isn[1]! + 6) >>> 0, time: 100.3 });
    expect(tcp[6]).toMatchObject({ seq: (isn[0]! + 5) >>> 0, ack: (isn[1]! + 7) >>> 0 });
    expect(packets.every((p) => p.mark === MARK && p.linkType === 101)).toBe(true);
    expect(tee.counters).toMatchObject({ connections: 1, packets: 8, failed: 0 });
  });

  it('a close for idleness or the source\'s end sends no FIN; a store that refuses is counted, the decode goes on', () => {
    const calls = new Calls();
    let n = 0;
    const tee = new PlaintextPackets(calls, () => { n++; throw new Error('the flow store is closed'); }, () => MARK, (e) => calls.lines.push(`error ${e.message}`));
    stream(tee, conn('tls-b', ['10.0.0.1', 1], ['10.0.0.2', 2], 1), [[0, 'x', 1], ['end', 'idle', 70]]);
    expect(n).toBe(4); // SYN, SYN-ACK, ACK, data: no FIN
    expect(tee.counters.failed).toBe(4);
    expect(calls.lines).toEqual(['error the flow store is closed', 'open tls-b', 'data tls-b 0 0 x', 'close tls-b idle']);
  });

  it('reads addresses as the probes give them: IPv4, IPv6 (compressed, with a zone), IPv4-mapped as IPv4', () => {
    expect(ipBytes('127.0.0.1')?.toString('hex')).toBe('7f000001');
    expect(ipBytes('::ffff:127.0.0.1')?.toString('hex')).toBe('7f000001');
    expect(ipBytes('::ffff:7f00:1')?.toString('hex')).toBe('7f000001');
    expect(ipBytes('::1')?.toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipBytes('fe80::1%lo')?.toString('hex')).toBe('fe800000000000000000000000000001');
    expect(ipBytes('2001:db8::8:800:200c:417a')?.toString('hex')).toBe('20010db80000000000080800200c417a');
    expect(ipBytes('64:ff9b::1.2.3.4')?.toString('hex')).toBe('0064ff9b000000000000000001020304');
    for (const bad of ['256.1.1.1', '1:2:3:4:5:6:7:8:9', '1:::2', 'host', '1::2::3', '12345::1']) expect(ipBytes(bad), bad).toBeUndefined();
  });

  it('plaintext beside the ciphertext of the same 4-tuple: stored, exported as pcapng, decoded again as one HTTP record marked tls, and the tls record still there', async () => {
    const dir = newDir();
    const store = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
    const t0 = wire[0]!.time;
    // The plaintext as curl's probes gave it, timed inside the wire connection: request, response, SSL_free.
    const plain: PlaintextPacket[] = [];
    const collect = new PlaintextPackets(new Calls(), (p) => plain.push(p), () => MARK);
    const c = conn('tls-curl', ['127.0.0.1', 37114], ['127.0.0.21', 4433], t0 + 0.003);
    const steps: Parameters<typeof stream>[2] = [[0, REQUEST, t0 + 0.0031], [1, RESPONSE, t0 + 0.0035], ['end', 'fin', t0 + 0.004]];
    stream(collect, c, steps);
    // Stored in arrival order: the wire's packets as captured, the plaintext as its chunks came.
    const all = [...wire.map((p) => ({ ...p, mark: undefined as PlaintextMark | undefined })), ...plain.map((p) => ({ ...p, wireLen: p.data.length }))]
      .sort((a, b) => a.time - b.time);
    for (const p of all) store.addPacket(p.time, p.linkType, p.data, p.wireLen, p.mark);
    const file = join(dir, 'snap.pcap');
    const r = await exportTo(store, file, t0, t0 + 1);
    expect(r).toEqual({ packets: wire.length + plain.length, plaintext: plain.length, lost: null });
    expect(readFileSync(file).readUInt32LE(0)).toBe(0x0a0d0d0a); // pcapng

    const read: Packet[] = [];
    await readCapture(file, (p) => read.push({ ...p, data: Buffer.from(p.data) }));
    expect(read.filter((p) => p.plaintext).length).toBe(plain.length);
    expect(read.find((p) => p.plaintext)!.plaintext).toEqual(MARK);
    expect(read.filter((p) => !p.plaintext).map((p) => p.data)).toEqual(wire.map((p) => p.data));

    const { flows, summary } = await decodeCapture(file);
    expect(summary.violations.total).toBe(0);
    expect(summary.plaintext).toEqual({ packets: plain.length, connections: 1 });
    expect(summary.reassembly.connections).toBe(1);
    const byProto = (p: string) => flows.filter((f) => f.protocol === p);
    expect(byProto('tls')).toHaveLength(1);
    expect(byProto('tls')[0]).toMatchObject({ request: { sni: 'tls.test' } });
    const http = byProto('http') as (FlowRecord & { request: { method: string; path: string }; response: { status: number } })[];
    expect(http).toHaveLength(1);
    expect(http[0]).toMatchObject({
      request: { method: 'GET', path: '/orders.json' }, response: { status: 200 },
      src: { ip: '127.0.0.1', port: 37114 }, dst: { ip: '127.0.0.21', port: 4433 },
      tls: { ...MARK, sni: 'tls.test' },
    });
    expect(http[0]!.incomplete).toBeFalsy();
    expect(http[0]!.connectionId).toMatch(/^tls-/);
    expect(http[0]!.connectionId).not.toBe(byProto('tls')[0]!.connectionId);

    if (tshark) {
      // tshark 4.0 keys TCP conversations by 4-tuple alone (not by interface: wireshark#19463), so
      // its sequence analysis takes the plaintext for retransmissions of the ciphertext: off, it
      // shows the request; the plaintext interface written apart reads as a clean conversation.
      const raw = ['-o', 'tcp.analyze_sequence_numbers:FALSE', '-d', 'tcp.port==4433,http'];
      const r = spawnSync('tshark', ['-n', '-r', file, ...raw, '-Y', 'http.request', '-T', 'fields', '-e', 'http.request.uri', '-e', 'frame.interface_name', '-e', 'frame.comment'], { encoding: 'utf8' });
      expect(r.stdout.trim()).toBe(`/orders.json\ttapwire-tls-plaintext\t${markComment(MARK)}`);
      const apart = join(dir, 'plain.pcapng');
      expect(spawnSync('tshark', ['-r', file, '-Y', 'frame.interface_name == "tapwire-tls-plaintext"', '-w', apart]).status).toBe(0);
      const http = spawnSync('tshark', ['-n', '-r', apart, '-d', 'tcp.port==4433,http', '-Y', 'http', '-T', 'fields', '-e', 'http.request.uri', '-e', 'http.response.code'], { encoding: 'utf8' });
      expect(http.stdout.trim().split('\n')).toEqual(['/orders.json\t', '\t200']);
      expect(tsharkFields(file, 'tls.handshake.extensions_server_name', 'tls.handshake.extensions_server_name')).toEqual(['tls.test']);
      // Every synthesized checksum holds (status 0 is Bad; the wire's own are offloaded on loopback).
      const ours = 'frame.interface_name == "tapwire-tls-plaintext"';
      expect(tsharkFields(file, `${ours} && tcp.checksum.status == 1`, 'frame.number')).toHaveLength(plain.length);
      const bad = spawnSync('tshark', ['-n', '-r', file, '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-Y', `${ours} && (tcp.checksum.status == 0 || ip.checksum.status == 0)`], { encoding: 'utf8' });
      expect(bad.status, bad.stderr).toBe(0);
      expect(bad.stdout.trim()).toBe('');
    }
    // A window without the plaintext is classic pcap, as before.
    const before = join(dir, 'before.pcap');
    expect(await exportTo(store, before, t0, t0 + 0.0029)).toMatchObject({ lost: null });
    expect(readFileSync(before).readUInt32LE(0)).toBe(0xa1b2c3d4);
    await store.close();
    // Kept across a restart: the mark is in the segment, and the sidecar says which blocks hold one.
    const again = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9, readOnly: true });
    expect(await exportTo(again, join(dir, 'again.pcap'), t0, t0 + 1)).toEqual(r);
    expect(readFileSync(join(dir, 'again.pcap'))).toEqual(readFileSync(file));
    await again.close();
  });

  it('IPv6, both directions, and a gap: the hole is a jump in sequence numbers that the decode reports', async () => {
    const dir = newDir();
    const store = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
    const mark: PlaintextMark = { via: 'uprobe', library: 'go', pid: 7, comm: 'api server' };
    const tee = new PlaintextPackets(new Calls(), (p) => store.addPacket(p.time, p.linkType, p.data, p.data.length, p.mark), () => mark);
    const body = 'x'.repeat(300);
    const c = conn('tls-v6', ['2001:db8::1', 50000], ['2001:db8::2', 8443], 200);
    // First exchange whole; the second response's body loses 100 bytes in the middle (an uncopied call tail).
    stream(tee, c, [
      [0, 'POST /a HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\n\r\nabc', 200.1],
      [1, `HTTP/1.1 201 Created\r\ncontent-length: ${body.length}\r\n\r\n${body}`, 200.2],
      [0, 'GET /b HTTP/1.1\r\nHost: h\r\n\r\n', 200.3],
      [1, `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 100)}`, 200.4],
      [1, 100, 200.4],
      [1, body.slice(200), 200.5],
      [0, 'GET /c HTTP/1.1\r\nHost: h\r\n\r\n', 200.6],
      [1, 'HTTP/1.1 204 No Content\r\n\r\n', 200.7],
      ['end', 'fin', 200.8],
    ]);
    const file = join(dir, 'v6.pcap');
    await exportTo(store, file);
    await store.close();
    const { flows, summary } = await decodeCapture(file);
    expect(summary.violations.total).toBe(0);
    const http = flows.filter((f) => f.protocol === 'http') as (FlowRecord & { request: { path: string }; response?: { status: number } })[];
    expect(http.map((f) => [f.request.path, f.response?.status, f.incomplete ?? false])).toEqual([['/a', 201, false], ['/b', 200, true], ['/c', 204, false]]);
    expect(http[1]!.incompleteReason).toMatch(/gap/);
    for (const f of http) expect(f).toMatchObject({ src: { ip: '2001:db8::1', port: 50000 }, dst: { ip: '2001:db8::2', port: 8443 }, tls: mark });
    if (tshark) {
      expect(tsharkFields(file, 'http.request', 'http.request.uri')).toEqual(['/a', '/b', '/c']);
      // Wireshark sees the hole the gap left.
      expect(tsharkFields(file, 'tcp.analysis.lost_segment', 'tcp.srcport')).toEqual(['8443']);
      expect(tsharkFields(file, 'frame.comment', 'frame.comment')).toHaveLength(summary.packets);
    }
  });

  it('a malformed comment, an unknown mark, a missing one, or a mark off the plaintext interface: ordinary packets, a counted violation each, no throw', async () => {
    const dir = newDir();
    const chunks: Buffer[] = [];
    const out = { write: (b: Buffer) => { chunks.push(b); return true; } } as unknown as NodeJS.WritableStream;
    // Interface 0: a wire interface (raw IP); interface 1: tapwire's plaintext interface.
    const w = new PcapngWriter(out, [101], [101]);
    await w.flush();
    const plain: PlaintextPacket[] = [];
    const tee = new PlaintextPackets(new Calls(), (p) => plain.push(p), () => MARK);
    stream(tee, conn('tls-x', ['10.1.0.1', 41000], ['10.1.0.2', 443], 300), [[0, REQUEST, 300.1], [1, RESPONSE, 300.2], ['end', 'fin', 300.3]]);
    const prefix = markComment(MARK).slice(0, markComment(MARK).indexOf('{'));
    const comments: [number, string | undefined][] = [
      [1, `${prefix}{"via":"uprobe","library":`], // malformed JSON
      [1, `${prefix}{"via":"kprobe","library":"openssl"}`], // unknown mark
      [1, undefined], // no comment on the plaintext interface
      [0, markComment(MARK)], // a mark on a wire interface
      [0, 'looked at by Alice'], // a person's comment: not ours, not a violation
    ];
    plain.forEach((p, i) => {
      const [iface, comment] = comments[i % comments.length]!;
      chunks.push(...pcapngPacketBlock({ time: p.time, data: p.data, wireLen: p.data.length }, iface, comment));
    });
    // An option whose length runs past its block, on the plaintext interface: the block is whole, its option is not.
    const last = pcapngPacketBlock({ time: 300.4, data: plain[0]!.data, wireLen: plain[0]!.data.length }, 1, markComment(MARK));
    last[2].writeUInt16LE(0xfff0, (4 - (plain[0]!.data.length % 4)) % 4 + 2);
    chunks.push(...last);
    const file = join(dir, 'bad.pcapng');
    writeFileSync(file, Buffer.concat(chunks));
    const read: Packet[] = [];
    await readCapture(file, (p) => read.push(p));
    expect(read).toHaveLength(plain.length + 1);
    expect(read.filter((p) => p.plaintext)).toHaveLength(0);
    const { flows, summary } = await decodeCapture(file);
    const expected = plain.filter((_, i) => i % comments.length < 4).length + 1;
    expect(summary.violations.counts['pcapng.plaintext_mark']).toBe(expected);
    expect(summary.plaintext).toBeUndefined();
    expect(summary.violations.first).toMatch(/packet block at byte \d+ on interface tapwire-tls-plaintext: the mark is not JSON; decoded as an ordinary packet/);
    // Ordinary packets of an ordinary connection: the HTTP inside is decoded, without a tls mark.
    const http = flows.filter((f) => f.protocol === 'http');
    expect(http).toHaveLength(1);
    expect(http[0]!.tls).toBeUndefined();
  });

  it('retention and snapshot pins apply to the plaintext as to the wire\'s packets', async () => {
    const dir = newDir();
    const store = await FlowStore.open({ dir, maxBytes: 2 << 20, maxAgeSec: 1e9, segmentBytes: 64 * 1024 });
    const tee = new PlaintextPackets(new Calls(), (p) => store.addPacket(p.time, p.linkType, p.data, p.data.length, p.mark), () => MARK);
    const base = Math.floor(Date.now() / 1000) - 1000;
    store.snapshots.create({ name: 'first', since: base, until: base + 1 });
    const body = 'y'.repeat(4000);
    // 400 connections of ~8 KB each over 400 s: 3+ MB into a 1 MiB packet ring.
    for (let i = 0; i < 400; i++) {
      const t = base + i;
      stream(tee, conn(`tls-${i}`, ['127.0.0.1', 30000 + i], ['127.0.0.2', 443], t), [
        [0, `POST /${i} HTTP/1.1\r\nHost: h\r\ncontent-length: ${body.length}\r\n\r\n${body}`, t + 0.1],
        [1, `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`, t + 0.2],
        ['end', 'fin', t + 0.3],
      ]);
      if (i % 20 === 19) await store.sync();
    }
    await store.sync();
    expect(store.stats().evictions).toBeGreaterThan(5);
    const pinned = await exportTo(store, join(dir, 'pinned.pcap'), base, base + 0.5);
    expect(pinned).toEqual({ packets: 8, plaintext: 8, lost: null });
    const { flows } = await decodeCapture(join(dir, 'pinned.pcap'));
    expect(flows.map((f) => [(f as { request?: { path?: string } }).request?.path, f.tls?.comm])).toEqual([['/0', 'curl']]);
    const mid = await exportTo(store, join(dir, 'mid.pcap'), base + 100, base + 150);
    expect(mid.lost).toMatch(/deleted by retention \(the packet ring was over its share of maxBytes\)/);
    await store.close();
  });
});
