import { describe, expect, it } from 'vitest';
import { Decoder, formatIp, type Decoded } from '../../src/decode/packet.js';
import { Violations } from '../../src/common/violations.js';
import type { Packet } from '../../src/capture/types.js';
import {
  ACK, PSH, SYN, bsdLoop, ethernet, ethernetSnap, ipBytes, ipv4, ipv6, sll, sll2, tcp, udp, type Ipv6Ext,
} from '../helpers/bytes.js';

let frameNo = 0;
function packet(data: Buffer, linkType = 1, time = 1): Packet {
  return { frame: ++frameNo, time, linkType, iface: 0, data, wireLen: data.length };
}

function decoder() {
  const violations = new Violations();
  return { dec: new Decoder(violations), violations };
}

/** A copy of what a test checks (the Decoder reuses its output object). */
function view(d: Decoded | undefined) {
  return d && {
    family: d.family, src: formatIp(d.src), dst: formatIp(d.dst), proto: d.proto, srcPort: d.srcPort, dstPort: d.dstPort,
    seq: d.seq, ack: d.ack, flags: d.flags, window: d.window, payload: d.payload.toString('latin1'), payloadLen: d.payloadLen,
  };
}

const seg = (payload: string, o: Parameters<typeof tcp>[1] = {}) => tcp(Buffer.from(payload, 'latin1'), { srcPort: 1111, dstPort: 80, seq: 77, ack: 88, flags: PSH | ACK, window: 512, ...o });

describe('IPv4', () => {
  it('decodes addresses, ports, sequence numbers, flags and payload', () => {
    const { dec, violations } = decoder();
    const d = view(dec.decode(packet(ethernet(ipv4(seg('abc'), { src: '192.0.2.10', dst: '203.0.113.9' })))));
    expect(d).toEqual({
      family: 4, src: '192.0.2.10', dst: '203.0.113.9', proto: 6, srcPort: 1111, dstPort: 80,
      seq: 77, ack: 88, flags: PSH | ACK, window: 512, payload: 'abc', payloadLen: 3,
    });
    expect(violations.total).toBe(0);
    expect(dec.stats).toMatchObject({ ipv4: 1, tcp: 1 });
  });

  it('skips IPv4 options (IHL > 5) to reach TCP', () => {
    const { dec, violations } = decoder();
    const routerAlert = Buffer.from([0x94, 0x04, 0x00, 0x00]);
    const timestamp = Buffer.from([0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    for (const options of [routerAlert, timestamp, Buffer.from([1, 1, 1])]) {
      const d = view(dec.decode(packet(ethernet(ipv4(seg('opt'), { options })))));
      expect(d).toMatchObject({ srcPort: 1111, payload: 'opt', payloadLen: 3 });
    }
    expect(violations.total).toBe(0);
  });

  it('Ethernet padding after a short IP packet is not payload', () => {
    const { dec } = decoder();
    const frame = ethernet(ipv4(tcp(Buffer.alloc(0), { flags: ACK })));
    const padded = Buffer.concat([frame, Buffer.alloc(60 - frame.length, 0xee)]);
    expect(view(dec.decode(packet(padded)))).toMatchObject({ payload: '', payloadLen: 0 });
  });

  it('total length 0 (TSO on the capturing host) takes what was captured', () => {
    const { dec, violations } = decoder();
    const d = view(dec.decode(packet(ethernet(ipv4(seg('x'.repeat(3000)), { totalLength: 0 })))));
    expect(d).toMatchObject({ payloadLen: 3000 });
    expect(d!.payload).toHaveLength(3000);
    expect(violations.total).toBe(0);
  });

  it('a total length beyond what the frame carried on the wire is a violation; a snap-length cut is not', () => {
    const { dec, violations } = decoder();
    const frame = ethernet(ipv4(seg('abc'), { totalLength: 1000 }));
    const d = view(dec.decode({ ...packet(frame), wireLen: frame.length }));
    expect(violations.counts.get('ipv4.length_exceeds_frame')).toBe(1);
    expect(d).toMatchObject({ payload: 'abc', payloadLen: 3 });
    const full = ethernet(ipv4(seg('x'.repeat(500))));
    const cut = view(dec.decode({ ...packet(full.subarray(0, 100)), wireLen: full.length }));
    expect(cut).toMatchObject({ payloadLen: 500 });
    expect(violations.total).toBe(1);
  });

  it('a bad version/IHL byte or a total length shorter than the header is a violation', () => {
    const { dec, violations } = decoder();
    expect(dec.decode(packet(ethernet(ipv4(seg('a'), { vihl: 0x44 }))))).toBeUndefined();
    expect(dec.decode(packet(ethernet(ipv4(seg('a'), { vihl: 0x55 }))))).toBeUndefined();
    expect(dec.decode(packet(ethernet(ipv4(seg('a'), { totalLength: 12 }))))).toBeUndefined();
    expect(violations.toJSON()).toEqual({ 'ipv4.bad_header': 2, 'ipv4.bad_length': 1 });
  });

  it('UDP: ports, checksum-independent payload, and the UDP length field bounds the payload', () => {
    const { dec } = decoder();
    const d = view(dec.decode(packet(ethernet(ipv4(udp(Buffer.from('query'), { srcPort: 999, dstPort: 53 }), { proto: 17 })))));
    expect(d).toMatchObject({ proto: 17, srcPort: 999, dstPort: 53, payload: 'query', payloadLen: 5, seq: 0, flags: 0 });
    expect(dec.stats.udp).toBe(1);
  });

  it('other transports are counted as other, without a violation', () => {
    const { dec, violations } = decoder();
    expect(dec.decode(packet(ethernet(ipv4(Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), { proto: 1 }))))).toBeUndefined();
    expect(dec.stats.other).toBe(1);
    expect(violations.total).toBe(0);
  });
});

describe('link layers', () => {
  const ip = () => ipv4(seg('L'));
  it('802.1Q, QinQ (88a8 and 9100 outer tags) reach IP', () => {
    const { dec, violations } = decoder();
    for (const vlans of [[{ vid: 100 }], [{ vid: 10, tpid: 0x88a8 }, { vid: 20 }], [{ vid: 1, tpid: 0x9100 }, { vid: 2 }], [{ vid: 1, tpid: 0x88a8 }, { vid: 2, tpid: 0x8100 }, { vid: 3 }]]) {
      expect(view(dec.decode(packet(ethernet(ip(), { vlans })))), JSON.stringify(vlans)).toMatchObject({ payload: 'L' });
    }
    expect(violations.total).toBe(0);
  });

  it('802.3 + 802.2 LLC/SNAP carries IPv4 and IPv6', () => {
    const { dec } = decoder();
    expect(view(dec.decode(packet(ethernetSnap(ip()))))).toMatchObject({ family: 4, payload: 'L' });
    const six = ipv6(tcp(Buffer.from('S6'), { src: '2001:db8::1', dst: '2001:db8::2' }));
    expect(view(dec.decode(packet(ethernetSnap(six))))).toMatchObject({ family: 6, payload: 'S6' });
    // SNAP after a VLAN tag.
    const tagged = ethernetSnap(ip());
    const withTag = Buffer.concat([tagged.subarray(0, 12), Buffer.from([0x81, 0x00, 0x00, 0x07]), tagged.subarray(12)]);
    expect(view(dec.decode(packet(withTag)))).toMatchObject({ payload: 'L' });
  });

  it('802.2 LLC without SNAP (STP) and non-IP EtherTypes (ARP) are not IP and not violations', () => {
    const { dec, violations } = decoder();
    expect(dec.decode(packet(ethernetSnap(Buffer.alloc(40), 0, [0x42, 0x42, 0x03])))).toBeUndefined();
    expect(dec.decode(packet(ethernet(Buffer.alloc(28), { etherType: 0x0806 })))).toBeUndefined();
    expect(dec.decode(packet(ethernetSnap(Buffer.alloc(28), 0x0806)))).toBeUndefined();
    expect(violations.total).toBe(0);
    expect(dec.stats.other).toBe(3);
  });

  it('cooked and loopback headers carrying something else are not IP', () => {
    const { dec, violations } = decoder();
    expect(dec.decode(packet(sll(Buffer.alloc(28), 0x0806), 113))).toBeUndefined();
    expect(dec.decode(packet(sll2(Buffer.alloc(28), 0x0806), 276))).toBeUndefined();
    expect(dec.decode(packet(bsdLoop(Buffer.alloc(28), 7, 'le'), 0))).toBeUndefined(); // unknown AF, not an IP version either
    expect(dec.decode(packet(Buffer.from([0x50, 0, 0, 0]), 101))).toBeUndefined(); // version 5
    expect(violations.total).toBe(0);
  });
});

describe('IPv6 extension headers', () => {
  const payload = (p: Buffer, ext: Ipv6Ext[], proto = 6) => ipv6(p, { src: '2001:db8::a', dst: '2001:db8::b', ext, proto });
  const t = () => tcp(Buffer.from('six'), { srcPort: 3333, dstPort: 8080, src: '2001:db8::a', dst: '2001:db8::b' });

  it('walks hop-by-hop, routing, destination options and AH to TCP', () => {
    const { dec, violations } = decoder();
    const chains: Ipv6Ext[][] = [
      [],
      [{ type: 'hop' }],
      [{ type: 'hop', data: Buffer.alloc(14) }, { type: 'dstopts' }, { type: 'routing', segmentsLeft: 0, data: Buffer.alloc(20) }],
      [{ type: 'hop' }, { type: 'dstopts', data: Buffer.alloc(30) }, { type: 'routing' }, { type: 'ah', data: Buffer.alloc(12) }, { type: 'dstopts' }],
      // A fragment header for an unfragmented packet (offset 0, M clear: an "atomic fragment", RFC 6946).
      [{ type: 'hop' }, { type: 'fragment', offset: 0, more: false, id: 9 }],
    ];
    for (const ext of chains) {
      expect(view(dec.decode(packet(ethernet(payload(t(), ext))))), JSON.stringify(ext)).toMatchObject({
        family: 6, src: '2001:db8::a', dst: '2001:db8::b', proto: 6, srcPort: 3333, dstPort: 8080, payload: 'six', payloadLen: 3,
      });
    }
    expect(violations.total).toBe(0);
  });

  it('walks the chain to UDP', () => {
    const { dec } = decoder();
    const d = view(dec.decode(packet(ethernet(payload(udp(Buffer.from('u6'), { srcPort: 546, dstPort: 547 }), [{ type: 'hop' }, { type: 'dstopts' }], 17)))));
    expect(d).toMatchObject({ proto: 17, srcPort: 546, dstPort: 547, payload: 'u6' });
  });

  it('ESP and No Next Header end the walk without a violation', () => {
    const { dec, violations } = decoder();
    expect(dec.decode(packet(ethernet(payload(Buffer.alloc(40), [{ type: 'hop' }], 50))))).toBeUndefined();
    expect(dec.decode(packet(ethernet(payload(Buffer.alloc(0), [], 59))))).toBeUndefined();
    expect(violations.total).toBe(0);
  });

  it('extension headers running past the payload length are a violation', () => {
    const { dec, violations } = decoder();
    const pkt = ipv6(t(), { ext: [{ type: 'hop', data: Buffer.alloc(30) }], payloadLength: 16 });
    expect(dec.decode(packet(ethernet(pkt)))).toBeUndefined();
    expect(violations.counts.get('ipv6.bad_extension')).toBe(1);
  });

  it('a bad version nibble is a violation', () => {
    const { dec, violations } = decoder();
    const pkt = ipv6(t());
    pkt[0] = 0x40;
    expect(dec.decode(packet(pkt, 229))).toBeUndefined();
    expect(violations.counts.get('ipv6.bad_header')).toBe(1);
  });
});

describe('TCP header', () => {
  it('data offset < 5 words is a violation', () => {
    const { dec, violations } = decoder();
    for (const words of [0, 1, 4]) expect(dec.decode(packet(ethernet(ipv4(seg('abc', { dataOffsetWords: words })))))).toBeUndefined();
    expect(violations.counts.get('tcp.bad_offset')).toBe(3);
  });

  it('data offset beyond the segment is a violation', () => {
    const { dec, violations } = decoder();
    // 20-byte header + 3 bytes: 6 words (24 bytes) already passes the 23-byte segment.
    expect(dec.decode(packet(ethernet(ipv4(seg('abc', { dataOffsetWords: 6 })))))).toBeUndefined();
    expect(dec.decode(packet(ethernet(ipv4(seg('', { dataOffsetWords: 15 })))))).toBeUndefined();
    expect(violations.counts.get('tcp.bad_offset')).toBe(2);
    expect(violations.samples[0]!.reason).toMatch(/data offset 24 .* 23-byte segment/);
  });

  it('TCP options are skipped by the data offset', () => {
    const { dec } = decoder();
    const mss = Buffer.from([2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1]);
    expect(view(dec.decode(packet(ethernet(ipv4(seg('after-opts', { options: mss, flags: SYN }))))))).toMatchObject({ payload: 'after-opts', flags: SYN });
  });
});

describe('truncated headers at every length', () => {
  const v6 = () => ipv6(tcp(Buffer.from('z'), { options: Buffer.from([2, 4, 5, 0xb4]) }), { ext: [{ type: 'hop' }, { type: 'routing', data: Buffer.alloc(14) }, { type: 'dstopts' }] });
  const v4opts = () => ipv4(tcp(Buffer.from('z'), { options: Buffer.from([2, 4, 5, 0xb4, 1, 1, 4, 2]) }), { options: Buffer.from([0x94, 4, 0, 0]) });
  const cases: { name: string; linkType: number; frame: Buffer; headers: number }[] = [
    { name: 'Ethernet + IPv4 options + TCP options', linkType: 1, frame: ethernet(v4opts()), headers: 14 + 24 + 28 },
    { name: 'QinQ + IPv4', linkType: 1, frame: ethernet(ipv4(tcp(Buffer.from('z'))), { vlans: [{ vid: 1, tpid: 0x88a8 }, { vid: 2 }] }), headers: 22 + 40 },
    { name: 'LLC/SNAP + IPv4', linkType: 1, frame: ethernetSnap(ipv4(tcp(Buffer.from('z')))), headers: 22 + 40 },
    { name: 'Ethernet + IPv6 extension chain + TCP', linkType: 1, frame: ethernet(v6()), headers: 14 + 40 + 8 + 24 + 8 + 24 },
    { name: 'SLL + IPv4', linkType: 113, frame: sll(ipv4(tcp(Buffer.from('z')))), headers: 16 + 40 },
    { name: 'SLL2 + IPv6', linkType: 276, frame: sll2(ipv6(tcp(Buffer.from('z')))), headers: 20 + 60 },
    { name: 'BSD null + IPv4', linkType: 0, frame: bsdLoop(ipv4(tcp(Buffer.from('z'))), 2, 'le'), headers: 4 + 40 },
    { name: 'raw IPv4 + UDP', linkType: 101, frame: ipv4(udp(Buffer.from('z')), { proto: 17 }), headers: 28 },
    { name: 'IPv6 (229) + UDP', linkType: 229, frame: ipv6(udp(Buffer.from('z')), { proto: 17 }), headers: 48 },
  ];
  for (const c of cases) {
    it(`${c.name}: every cut inside the headers is one counted violation and undefined`, () => {
      // The uncut frame decodes, so the cut is what makes the difference.
      expect(view(new Decoder(new Violations()).decode(packet(c.frame, c.linkType)))).toMatchObject({ payload: 'z' });
      for (let len = 0; len < c.headers; len++) {
        const { dec, violations } = decoder();
        const cut = c.frame.subarray(0, len);
        let d: Decoded | undefined;
        expect(() => { d = dec.decode({ ...packet(cut, c.linkType), wireLen: c.frame.length }); }, `cut at ${len}`).not.toThrow();
        expect(d, `cut at ${len}`).toBeUndefined();
        expect(violations.total, `cut at ${len}: ${JSON.stringify(violations.toJSON())}`).toBe(1);
      }
    });
  }
});

describe('formatIp', () => {
  const cases: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['0.0.0.0', '0.0.0.0'],
    ['::1', '::1'],
    ['::', '::'],
    ['1::', '1::'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    // One zero group is never compressed (RFC 5952 §4.2.2).
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:1:2:3:4:5:6:7', '0:1:2:3:4:5:6:7'],
    ['1:2:3:4:5:6:7:0', '1:2:3:4:5:6:7:0'],
    // The longest run is compressed; of equal runs the first (§4.2.3).
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80:0:0:0:abcd:0:0:1', 'fe80::abcd:0:0:1'],
    // Lower case, no leading zeros (§4.1, §4.3).
    ['2001:DB8:00AB:0c00:0:0:0:FFFF', '2001:db8:ab:c00::ffff'],
    ['0:0:1:0:0:0:0:0', '0:0:1::'],
  ];
  for (const [input, text] of cases) {
    it(`${input} → ${text}`, () => expect(formatIp(ipBytes(input))).toBe(text));
  }
});
