import { describe, expect, it } from 'vitest';
import { Decoder, formatIp } from '../../src/decode/packet.js';
import { Violations } from '../../src/common/violations.js';
import type { Packet } from '../../src/capture/types.js';
import {
  bsdLoop, ethernet, ipv4, pcap, sll, sll2, tcpPacket, udp,
} from '../helpers/bytes.js';
import { parseChunks } from '../helpers/capture.js';

const v4 = () => tcpPacket(Buffer.from('hello v4'), { src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1234, dstPort: 80, seq: 7 });
const v6 = () => tcpPacket(Buffer.from('hello v6'), { src: '2001:db8::1', dst: '2001:db8::2', srcPort: 4321, dstPort: 443, seq: 9 });

function decodeOne(p: Packet) {
  const violations = new Violations();
  const d = new Decoder(violations).decode(p);
  return d && {
    src: formatIp(d.src), dst: formatIp(d.dst), srcPort: d.srcPort, dstPort: d.dstPort,
    seq: d.seq, payload: d.payload.toString(), violations: violations.total,
  };
}

describe('pcap: byte order and timestamp unit', () => {
  const frames = [ethernet(v4()), ethernet(v6())];
  for (const byteOrder of ['le', 'be'] as const) {
    for (const nanos of [false, true]) {
      it(`${byteOrder} ${nanos ? 'ns' : 'µs'}: header fields and the exact fractional time`, () => {
        // ns: 123456789 would read as 123 s in µs; µs: 999999 would be 0.000999999 s in ns.
        const frac = nanos ? [123_456_789, 1] : [999_999, 1];
        const file = pcap([
          { data: frames[0]!, sec: 1_700_000_000, frac: frac[0] },
          { data: frames[1]!, sec: 1_700_000_001, frac: frac[1] },
        ], { byteOrder, nanos });
        const { packets, violations, leftover } = parseChunks('pcap', file);
        expect(violations.total).toBe(0);
        expect(leftover).toBe(0);
        expect(packets.map((p) => [p.frame, p.linkType, p.iface, p.wireLen])).toEqual([
          [1, 1, 0, frames[0]!.length], [2, 1, 0, frames[1]!.length],
        ]);
        expect(packets[0]!.data.equals(frames[0]!)).toBe(true);
        const div = nanos ? 1e9 : 1e6;
        expect(packets[0]!.time).toBe(1_700_000_000 + frac[0]! / div);
        // An epoch double holds ~0.24 µs at this magnitude: the fraction is right to that precision.
        expect(Math.abs(packets[0]!.time - 1_700_000_000 - (nanos ? 0.123456789 : 0.999999))).toBeLessThan(3e-7);
        expect(packets[1]!.time).toBe(1_700_000_001 + frac[1]! / div);
        expect(decodeOne(packets[1]!)).toMatchObject({ src: '2001:db8::1', payload: 'hello v6' });
      });
    }
  }

  it('the same fraction field means µs or ns by the magic alone', () => {
    const rec = [{ data: ethernet(v4()), sec: 10, frac: 500_000 }];
    expect(parseChunks('pcap', pcap(rec)).packets[0]!.time).toBe(10.5);
    expect(parseChunks('pcap', pcap(rec, { nanos: true })).packets[0]!.time).toBe(10.0005);
    expect(parseChunks('pcap', pcap(rec, { nanos: true, byteOrder: 'be' })).packets[0]!.time).toBe(10.0005);
  });
});

describe('pcap: snap length', () => {
  it('a record cut by the snap length keeps its wire length', () => {
    const full = ethernet(tcpPacket(Buffer.alloc(1000, 0x61), { src: '10.0.0.1', dst: '10.0.0.2' }));
    const cut = full.subarray(0, 96);
    const file = pcap([{ data: cut, origLen: full.length }], { snaplen: 96 });
    const { packets } = parseChunks('pcap', file);
    expect(packets).toHaveLength(1);
    expect(packets[0]!.data.length).toBe(96);
    expect(packets[0]!.wireLen).toBe(full.length);
    // The decoder still knows the payload's wire length from the IP header.
    const d = new Decoder(new Violations()).decode(packets[0]!)!;
    expect(d.payloadLen).toBe(1000);
    expect(d.payload.length).toBe(96 - 14 - 20 - 20);
  });

  it('an orig_len smaller than incl_len is taken as incl_len', () => {
    const data = ethernet(v4());
    const { packets } = parseChunks('pcap', pcap([{ data, origLen: 10 }]));
    expect(packets[0]!.wireLen).toBe(data.length);
  });
});

describe('pcap: link types', () => {
  const cases: { name: string; linkType: number; frame: Buffer; v: 4 | 6 }[] = [
    { name: 'Ethernet (1)', linkType: 1, frame: ethernet(v4()), v: 4 },
    { name: 'Ethernet (1) IPv6', linkType: 1, frame: ethernet(v6()), v: 6 },
    { name: 'Linux SLL (113)', linkType: 113, frame: sll(v4()), v: 4 },
    { name: 'Linux SLL (113) IPv6', linkType: 113, frame: sll(v6()), v: 6 },
    { name: 'Linux SLL2 (276)', linkType: 276, frame: sll2(v4()), v: 4 },
    { name: 'Linux SLL2 (276) IPv6', linkType: 276, frame: sll2(v6()), v: 6 },
    { name: 'raw (101) IPv4', linkType: 101, frame: v4(), v: 4 },
    { name: 'raw (101) IPv6', linkType: 101, frame: v6(), v: 6 },
    { name: 'IPv4 (228)', linkType: 228, frame: v4(), v: 4 },
    { name: 'IPv6 (229)', linkType: 229, frame: v6(), v: 6 },
    { name: 'BSD null (0), little-endian AF_INET', linkType: 0, frame: bsdLoop(v4(), 2, 'le'), v: 4 },
    { name: 'BSD null (0), little-endian AF_INET6=24', linkType: 0, frame: bsdLoop(v6(), 24, 'le'), v: 6 },
    { name: 'BSD null (0), big-endian host, AF_INET6=30', linkType: 0, frame: bsdLoop(v6(), 30, 'be'), v: 6 },
    { name: 'BSD null (0), big-endian host, AF_INET', linkType: 0, frame: bsdLoop(v4(), 2, 'be'), v: 4 },
    { name: 'OpenBSD loop (108) AF_INET', linkType: 108, frame: bsdLoop(v4(), 2, 'be'), v: 4 },
    { name: 'OpenBSD loop (108) AF_INET6=24', linkType: 108, frame: bsdLoop(v6(), 24, 'be'), v: 6 },
    { name: 'raw BSD (12)', linkType: 12, frame: v4(), v: 4 },
    { name: 'raw OpenBSD (14) IPv6', linkType: 14, frame: v6(), v: 6 },
  ];
  for (const c of cases) {
    it(`${c.name} yields the IP packet`, () => {
      const { packets } = parseChunks('pcap', pcap([{ data: c.frame }], { linkType: c.linkType }));
      expect(packets[0]!.linkType).toBe(c.linkType);
      expect(decodeOne(packets[0]!)).toEqual(c.v === 4
        ? { src: '192.0.2.1', dst: '198.51.100.7', srcPort: 1234, dstPort: 80, seq: 7, payload: 'hello v4', violations: 0 }
        : { src: '2001:db8::1', dst: '2001:db8::2', srcPort: 4321, dstPort: 443, seq: 9, payload: 'hello v6', violations: 0 });
    });
  }

  it('FCS bits in the upper link-type field are masked off', () => {
    const { packets } = parseChunks('pcap', pcap([{ data: ethernet(v4()) }], { linkType: 0x10000001 }));
    expect(packets[0]!.linkType).toBe(1);
  });

  it('an unsupported link type is counted once, never thrown', () => {
    const { packets } = parseChunks('pcap', pcap([{ data: v4() }, { data: v4() }], { linkType: 147 }));
    const violations = new Violations();
    const dec = new Decoder(violations);
    expect(packets.map((p) => dec.decode(p))).toEqual([undefined, undefined]);
    expect(violations.counts.get('link.unsupported')).toBe(1);
  });

  it('a UDP datagram over raw IPv4 decodes to its ports and payload', () => {
    const dgram = ipv4(udp(Buffer.from('dns?'), { srcPort: 5353, dstPort: 53 }), { proto: 17 });
    const { packets } = parseChunks('pcap', pcap([{ data: dgram }], { linkType: 228 }));
    const d = new Decoder(new Violations()).decode(packets[0]!)!;
    expect([d.proto, d.srcPort, d.dstPort, d.payload.toString(), d.payloadLen]).toEqual([17, 5353, 53, 'dns?', 4]);
  });
});
