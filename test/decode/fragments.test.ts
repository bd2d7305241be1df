import { describe, expect, it } from 'vitest';
import { Decoder, formatIp, type Decoded } from '../../src/decode/packet.js';
import { DEFAULT_FRAGMENT_LIMITS, type FragmentLimits } from '../../src/decode/fragments.js';
import { Violations } from '../../src/common/violations.js';
import { ethernet, ipv4, ipv6, tcp, udp, type Ipv6Ext } from '../helpers/bytes.js';

const SRC = '10.9.0.1', DST = '10.9.0.2';

/** A TCP segment with a 100-byte payload "0123456789" × 10, cut into IPv4 fragments. */
const body = Buffer.from('0123456789'.repeat(10));
const datagram = tcp(body, { srcPort: 7, dstPort: 80, seq: 1234, src: SRC, dst: DST }); // 120 bytes

interface Frag { off: number; data: Buffer; more: boolean }

/** Cuts `dg` at byte offsets (multiples of 8). */
function cut(dg: Buffer, at: number[]): Frag[] {
  const edges = [0, ...at, dg.length];
  return edges.slice(0, -1).map((o, i) => ({ off: o, data: dg.subarray(o, edges[i + 1]), more: i < edges.length - 2 }));
}

function v4frag(f: Frag, id = 42, src = SRC): Buffer {
  return ethernet(ipv4(f.data, { src, dst: DST, id, mf: f.more, fragOffset: f.off, proto: 6 }));
}

/** A frame the snap length cut: `data` holds its first bytes, `wireLen` its length on the wire. */
interface Cut { data: Buffer; wireLen: number }

function run(frames: (Buffer | Cut)[], limits: Partial<FragmentLimits> = {}, times?: number[]) {
  const violations = new Violations();
  const dec = new Decoder(violations, { ...DEFAULT_FRAGMENT_LIMITS, ...limits });
  const results = frames.map((f, i) => {
    const { data, wireLen } = Buffer.isBuffer(f) ? { data: f, wireLen: f.length } : f;
    const d = dec.decode({ frame: i + 1, time: times?.[i] ?? 1, linkType: 1, iface: 0, data, wireLen });
    return d && summary(d);
  });
  return { results, dec, violations };
}

function summary(d: Decoded) {
  return { src: formatIp(d.src), proto: d.proto, srcPort: d.srcPort, dstPort: d.dstPort, seq: d.seq, payload: d.payload.toString('latin1'), payloadLen: d.payloadLen };
}

const whole = { src: SRC, proto: 6, srcPort: 7, dstPort: 80, seq: 1234, payload: body.toString(), payloadLen: 100 };

describe('IPv4 fragments', () => {
  const frags = cut(datagram, [24, 64, 96]);

  it('in order: the last fragment yields the whole segment', () => {
    const { results, dec, violations } = run(frags.map((f) => v4frag(f)));
    expect(results).toEqual([undefined, undefined, undefined, whole]);
    expect(dec.fragments.reassembled).toBe(1);
    expect(dec.fragments.pending).toBe(0);
    expect(violations.total).toBe(0);
  });

  it('out of order, in every order of four fragments', () => {
    const orders = permutations([0, 1, 2, 3]);
    expect(orders).toHaveLength(24);
    for (const order of orders) {
      const { results, dec } = run(order.map((i) => v4frag(frags[i]!)));
      expect(results.slice(0, 3), order.join()).toEqual([undefined, undefined, undefined]);
      expect(results[3], order.join()).toEqual(whole);
      expect(dec.fragments.pending).toBe(0);
    }
  });

  it('duplicate fragments do not change the result', () => {
    const { results, dec } = run([frags[0]!, frags[1]!, frags[1]!, frags[0]!, frags[2]!, frags[3]!].map((f) => v4frag(f)));
    expect(results.filter(Boolean)).toEqual([whole]);
    expect(results[5]).toEqual(whole);
    expect(dec.fragments.reassembled).toBe(1);
  });

  it('overlapping fragments: the first copy of each byte wins', () => {
    // Bytes 40..79 sent twice: first as "A…", later as part of a fragment of "B…".
    const first: Frag = { off: 40, data: Buffer.alloc(40, 0x41), more: true };
    const later: Frag = { off: 24, data: Buffer.alloc(64, 0x42), more: true };
    const dg = Buffer.from(datagram);
    const { results } = run([
      v4frag(first), v4frag(later), v4frag({ off: 0, data: dg.subarray(0, 24), more: true }), v4frag({ off: 88, data: dg.subarray(88), more: false }),
    ]);
    const expected = Buffer.concat([dg.subarray(20, 24), Buffer.alloc(16, 0x42), Buffer.alloc(40, 0x41), Buffer.alloc(8, 0x42), dg.subarray(88)]);
    expect(results[3]).toMatchObject({ payload: expected.toString('latin1'), payloadLen: 100 });
  });

  it('missing last fragment → nothing is delivered and the partial datagram waits', () => {
    const { results, dec } = run(frags.slice(0, 3).map((f) => v4frag(f)));
    expect(results).toEqual([undefined, undefined, undefined]);
    expect(dec.fragments.pending).toBe(1);
    expect(dec.fragments.reassembled).toBe(0);
  });

  it('a missing middle fragment → nothing is delivered', () => {
    const { results } = run([frags[0]!, frags[1]!, frags[3]!].map((f) => v4frag(f)));
    expect(results).toEqual([undefined, undefined, undefined]);
  });

  it('fragments of different datagrams (ids, sources) are kept apart', () => {
    const other = tcp(Buffer.from('x'.repeat(40)), { srcPort: 8, dstPort: 81, src: SRC, dst: DST });
    const o = cut(other, [24]);
    const { results } = run([
      v4frag(frags[0]!, 1), v4frag(o[0]!, 2), v4frag(frags[1]!, 1), v4frag(frags[0]!, 1, '10.9.0.77'),
      v4frag(o[1]!, 2), v4frag(frags[2]!, 1), v4frag(frags[3]!, 1),
    ]);
    expect(results[4]).toMatchObject({ srcPort: 8, payload: 'x'.repeat(40) });
    expect(results[6]).toEqual(whole);
    expect(results.filter(Boolean)).toHaveLength(2);
  });

  it('timeout: a partial datagram older than timeoutSec is evicted and counted', () => {
    const { results, dec } = run(
      [v4frag(frags[0]!, 1), v4frag(frags[0]!, 2), v4frag(frags[1]!, 1), v4frag(frags[2]!, 1), v4frag(frags[3]!, 1)],
      { timeoutSec: 30 },
      [100, 131, 132, 133, 134],
    );
    // Datagram 1 began at t=100; when datagram 2 arrived at t=131 it had waited too long.
    expect(dec.fragments.evicted).toBe(1);
    expect(results).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('maxDatagrams: the oldest partial datagram is dropped and counted', () => {
    const { results, dec } = run(
      [v4frag(frags[0]!, 1), v4frag(frags[0]!, 2), v4frag(frags[0]!, 3), ...frags.slice(1).map((f) => v4frag(f, 1)), ...frags.slice(1).map((f) => v4frag(f, 3))],
      { maxDatagrams: 2 },
    );
    expect(dec.fragments.evicted).toBeGreaterThanOrEqual(1);
    expect(results.slice(3, 6)).toEqual([undefined, undefined, undefined]); // datagram 1 was dropped
    expect(results[8]).toEqual(whole); // datagram 3 survived
  });

  it('maxBytes: partial datagrams past the byte bound are dropped and counted', () => {
    const { results, dec } = run([v4frag(frags[0]!, 1), v4frag(frags[1]!, 2), v4frag(frags[1]!, 1), v4frag(frags[2]!, 1), v4frag(frags[3]!, 1)], { maxBytes: 70 });
    expect(dec.fragments.evicted).toBeGreaterThanOrEqual(1);
    expect(results[4]).toBeUndefined();
  });

  it('a fragment passing 65535 bytes is a violation', () => {
    const { results, violations } = run([v4frag({ off: 65528, data: Buffer.alloc(16), more: false })]);
    expect(results).toEqual([undefined]);
    expect(violations.counts.get('ip.fragment_oversize')).toBe(1);
  });

  it('two last fragments that disagree on the length are a violation; the first one counts', () => {
    const { results, violations } = run([
      v4frag({ off: 24, data: datagram.subarray(24, 40), more: false }),
      v4frag({ off: 24, data: datagram.subarray(24, 48), more: false }),
      v4frag({ off: 0, data: datagram.subarray(0, 24), more: true }),
    ]);
    expect(violations.counts.get('ip.fragment_conflict')).toBe(1);
    expect(results[2]).toMatchObject({ payloadLen: 20, payload: body.subarray(0, 20).toString() });
  });

  it('a fragment cut by the snap length drops the datagram with a violation', () => {
    const f = v4frag(frags[1]!);
    const { results, violations } = run([v4frag(frags[0]!), { data: f.subarray(0, f.length - 8), wireLen: f.length }]);
    expect(results).toEqual([undefined, undefined]);
    expect(violations.counts.get('ipv4.fragment_truncated')).toBe(1);
  });

  it('a fragmented UDP datagram reassembles too', () => {
    const u = udp(Buffer.from('y'.repeat(50)), { srcPort: 4000, dstPort: 53, src: SRC, dst: DST });
    const parts = cut(u, [16, 32]);
    const frames = parts.map((f) => ethernet(ipv4(f.data, { src: SRC, dst: DST, id: 5, mf: f.more, fragOffset: f.off, proto: 17 })));
    const { results } = run([frames[2]!, frames[0]!, frames[1]!]);
    expect(results[2]).toMatchObject({ proto: 17, srcPort: 4000, dstPort: 53, payload: 'y'.repeat(50), payloadLen: 50 });
  });
});

describe('IPv6 fragments', () => {
  const S6 = '2001:db8::10', D6 = '2001:db8::20';
  const seg6 = tcp(body, { srcPort: 7, dstPort: 80, seq: 1234, src: S6, dst: D6 });

  function v6frag(f: Frag, before: Ipv6Ext[] = [], id = 0x01020304): Buffer {
    return ethernet(ipv6(f.data, { src: S6, dst: D6, ext: [...before, { type: 'fragment', offset: f.off, more: f.more, id }], proto: 6 }));
  }
  const whole6 = { ...whole, src: S6 };

  it('in order and out of order, behind hop-by-hop and routing headers', () => {
    const parts = cut(seg6, [32, 80]);
    for (const order of permutations([0, 1, 2])) {
      const { results } = run(order.map((i) => v6frag(parts[i]!, [{ type: 'hop' }, { type: 'routing' }])));
      expect(results.slice(0, 2), order.join()).toEqual([undefined, undefined]);
      expect(results[2], order.join()).toEqual(whole6);
    }
  });

  it('missing last fragment → nothing', () => {
    const parts = cut(seg6, [32, 80]);
    const { results, dec } = run([v6frag(parts[0]!), v6frag(parts[1]!)]);
    expect(results).toEqual([undefined, undefined]);
    expect(dec.fragments.pending).toBe(1);
  });

  it('different identifications are different datagrams', () => {
    const parts = cut(seg6, [64]);
    const { results } = run([v6frag(parts[0]!, [], 1), v6frag(parts[1]!, [], 2)]);
    expect(results).toEqual([undefined, undefined]);
  });

  it('a destination-options header in the fragmentable part (RFC 8200 §4.1 order) is walked after reassembly', () => {
    // Fragmentable part = Destination Options (8 bytes) + TCP segment; the Fragment header says
    // "next: 60" and the first fragment starts with the options header.
    const dst = Buffer.from([6, 0, 1, 4, 0, 0, 0, 0]); // next: TCP, len 0, PadN(4)
    const fragmentable = Buffer.concat([dst, seg6]);
    const parts = cut(fragmentable, [48, 96]);
    const frames = parts.map((f) => ethernet(ipv6(f.data, { src: S6, dst: D6, ext: [{ type: 'fragment', offset: f.off, more: f.more, id: 7 }], proto: 60 })));
    for (const order of [[0, 1, 2], [2, 1, 0], [1, 0, 2]]) {
      const { results } = run(order.map((i) => frames[i]!));
      expect(results[2], order.join()).toEqual(whole6);
    }
  });
});

function permutations(xs: number[]): number[][] {
  if (xs.length <= 1) return [xs];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}
