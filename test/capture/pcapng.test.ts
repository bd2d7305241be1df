import { describe, expect, it } from 'vitest';
import { Decoder, formatIp } from '../../src/decode/packet.js';
import { Violations } from '../../src/common/violations.js';
import { ethernet, pcapng, sll, tcpPacket, type PcapngBlock } from '../helpers/bytes.js';
import { parseChunks } from '../helpers/capture.js';

const ip = (text: string, src = '10.1.0.1') => tcpPacket(Buffer.from(text), { src, dst: '10.1.0.2', srcPort: 5000, dstPort: 80 });

function payloads(packets: { data: Buffer; linkType: number }[]): string[] {
  const dec = new Decoder(new Violations());
  return packets.map((p) => {
    const d = dec.decode({ frame: 1, time: 0, iface: 0, wireLen: p.data.length, ...p });
    return d ? d.payload.toString() : '<none>';
  });
}

describe('pcapng: interfaces', () => {
  it('each interface keeps its own link type, tsresol and tsoffset', () => {
    const file = pcapng([
      { type: 'shb' },
      { type: 'idb', linkType: 1 }, // default resolution: 10^-6
      { type: 'idb', linkType: 113, tsresol: 9 }, // 10^-9
      { type: 'idb', linkType: 101, tsresol: 0x80 | 10 }, // 2^-10
      { type: 'idb', linkType: 228, tsresol: 3, tsoffset: 1_600_000_000 }, // ms, offset seconds
      { type: 'epb', iface: 0, ts: 1_700_000_000_250_000n, data: ethernet(ip('eth')) },
      { type: 'epb', iface: 1, ts: 1_700_000_000_500_000_000n, data: sll(ip('sll')) },
      { type: 'epb', iface: 2, ts: 1_700_000_000n * 1024n + 256n, data: ip('raw') },
      { type: 'epb', iface: 3, ts: 100_000_125n, data: ip('v4') },
    ]);
    const { packets, violations, leftover } = parseChunks('pcapng', file);
    expect(violations.total).toBe(0);
    expect(leftover).toBe(0);
    expect(packets.map((p) => [p.frame, p.iface, p.linkType])).toEqual([[1, 0, 1], [2, 1, 113], [3, 2, 101], [4, 3, 228]]);
    expect(packets[0]!.time).toBe(1_700_000_000.25);
    expect(packets[1]!.time).toBe(1_700_000_000.5);
    expect(packets[2]!.time).toBe(1_700_000_000.25); // 256 / 1024
    expect(packets[3]!.time).toBe(1_600_000_000 + 100_000.125);
    expect(payloads(packets)).toEqual(['eth', 'sll', 'raw', 'v4']);
  });

  it('a nanosecond timestamp keeps sub-millisecond precision', () => {
    const file = pcapng([
      { type: 'shb' },
      { type: 'idb', linkType: 1, tsresol: 9 },
      { type: 'epb', iface: 0, ts: 1_700_000_000_123_456_789n, data: ethernet(ip('a')) },
    ]);
    const t = parseChunks('pcapng', file).packets[0]!.time;
    expect(Math.abs(t - (1_700_000_000 + 0.123456789))).toBeLessThan(1e-6);
  });

  it('EPB caplen < origLen keeps the wire length; SPB and OPB deliver packets', () => {
    const big = ethernet(ip('x'.repeat(200)));
    const file = pcapng([
      { type: 'shb' },
      { type: 'idb', linkType: 1, snaplen: 64 },
      { type: 'epb', iface: 0, ts: 5_000_000n, data: big.subarray(0, 64), origLen: big.length },
      // SPB: no timestamp, interface 0, captured length = min(original, snaplen, block room)
      { type: 'spb', data: big.subarray(0, 64), origLen: big.length },
      { type: 'opb', iface: 0, ts: 7_500_000n, data: ethernet(ip('opb')) },
    ]);
    const { packets, violations } = parseChunks('pcapng', file);
    expect(violations.total).toBe(0);
    expect(packets.map((p) => [p.frame, p.time, p.data.length, p.wireLen])).toEqual([
      [1, 5, 64, big.length],
      [2, 0, 64, big.length],
      [3, 7.5, ethernet(ip('opb')).length, ethernet(ip('opb')).length],
    ]);
    expect(packets[0]!.data.equals(big.subarray(0, 64))).toBe(true);
    expect(payloads([packets[2]!])).toEqual(['opb']);
  });

  it('SPB padding is not taken for packet bytes when the snap length is 0 (unlimited)', () => {
    const frame = ethernet(ip('odd')); // 57 bytes: the block pads it to 60
    const file = pcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'spb', data: frame }]);
    const { packets } = parseChunks('pcapng', file);
    expect(packets[0]!.data.equals(frame)).toBe(true);
  });

  it('unknown, custom and statistics blocks are skipped', () => {
    const file = pcapng([
      { type: 'shb' },
      { type: 'raw', blockType: 0x12345678, body: Buffer.from('future block') },
      { type: 'idb', linkType: 1 },
      { type: 'raw', blockType: 0x00000bad, body: Buffer.concat([Buffer.from([0, 0, 0x7e, 0x01]), Buffer.from('custom')]) },
      { type: 'epb', iface: 0, ts: 1n, data: ethernet(ip('one')) },
      { type: 'raw', blockType: 5, body: Buffer.alloc(12) }, // interface statistics
      { type: 'raw', blockType: 4, body: Buffer.alloc(4) }, // name resolution (end of records)
      { type: 'epb', iface: 0, ts: 2n, data: ethernet(ip('two')) },
    ]);
    const { packets, violations } = parseChunks('pcapng', file);
    expect(violations.total).toBe(0);
    expect(payloads(packets)).toEqual(['one', 'two']);
    expect(packets.map((p) => p.frame)).toEqual([1, 2]);
  });

  it('a second section resets the interfaces', () => {
    const file = pcapng([
      { type: 'shb' },
      { type: 'idb', linkType: 1 },
      { type: 'idb', linkType: 113 },
      { type: 'epb', iface: 1, ts: 1n, data: sll(ip('s1')) },
      { type: 'shb' },
      { type: 'idb', linkType: 101, tsresol: 0 }, // seconds
      { type: 'epb', iface: 0, ts: 42n, data: ip('s2') },
      { type: 'epb', iface: 1, ts: 43n, data: sll(ip('stale')) }, // interface 1 belonged to section 1
    ]);
    const { packets, violations } = parseChunks('pcapng', file);
    expect(packets.map((p) => [p.iface, p.linkType, p.time])).toEqual([[1, 113, 0.000001], [0, 101, 42]]);
    expect(payloads(packets)).toEqual(['s1', 's2']);
    expect(violations.counts.get('pcapng.unknown_interface')).toBe(1);
    expect(violations.samples[0]!.reason).toMatch(/interface 1/);
  });

  it('a big-endian section, also after a little-endian one', () => {
    const be: PcapngBlock[] = [
      { type: 'shb', byteOrder: 'be' },
      { type: 'idb', linkType: 1, tsresol: 0x80 | 10, tsoffset: 1000 },
      { type: 'epb', iface: 0, ts: 512n, data: ethernet(ip('be')) },
      { type: 'opb', iface: 0, ts: 1024n, data: ethernet(ip('be-opb')) },
      { type: 'spb', data: ethernet(ip('be-spb')) },
    ];
    for (const blocks of [be, [{ type: 'shb' } as const, { type: 'idb', linkType: 113 } as const, ...be]]) {
      const { packets, violations, leftover } = parseChunks('pcapng', pcapng(blocks));
      expect(violations.total).toBe(0);
      expect(leftover).toBe(0);
      expect(packets.map((p) => [p.linkType, p.time])).toEqual([[1, 1000.5], [1, 1001], [1, 1000]]);
      expect(payloads(packets)).toEqual(['be', 'be-opb', 'be-spb']);
    }
  });

  it('a negative tsoffset moves times back', () => {
    const file = pcapng([
      { type: 'shb', byteOrder: 'be' },
      { type: 'idb', linkType: 1, tsresol: 0, tsoffset: -100 },
      { type: 'epb', iface: 0, ts: 1000n, data: ethernet(ip('n')) },
    ]);
    expect(parseChunks('pcapng', file).packets[0]!.time).toBe(900);
  });

  it('a packet naming an interface no IDB described is counted, not delivered', () => {
    const file = pcapng([{ type: 'shb' }, { type: 'epb', iface: 0, ts: 1n, data: ethernet(ip('orphan')) }]);
    const { packets, violations } = parseChunks('pcapng', file);
    expect(packets).toEqual([]);
    expect(violations.counts.get('pcapng.unknown_interface')).toBe(1);
  });

  it('an EPB whose captured length passes its block is a counted violation', () => {
    const file = pcapng([
      { type: 'shb' }, { type: 'idb', linkType: 1 },
      { type: 'epb', iface: 0, ts: 1n, data: ethernet(ip('a')), capLen: 5000 },
      { type: 'epb', iface: 0, ts: 2n, data: ethernet(ip('b')) },
    ]);
    const { packets, violations } = parseChunks('pcapng', file);
    expect(violations.counts.get('pcapng.caplen')).toBe(1);
    expect(payloads(packets)).toEqual(['b']);
    expect(packets[0]!.frame).toBe(2);
  });

  it('formats the addresses of an IPv6 packet in an EPB', () => {
    const file = pcapng([
      { type: 'shb' }, { type: 'idb', linkType: 229 },
      { type: 'epb', iface: 0, ts: 1n, data: tcpPacket(Buffer.from('6'), { src: 'fe80::1', dst: 'ff02::1:2' }) },
    ]);
    const d = new Decoder(new Violations()).decode(parseChunks('pcapng', file).packets[0]!)!;
    expect([formatIp(d.src), formatIp(d.dst)]).toEqual(['fe80::1', 'ff02::1:2']);
  });
});
