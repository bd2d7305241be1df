/**
 * The TC source's pure parts: the ring record parser (native/tc_event.h) and the filter compiler
 * (map keys for tc.bpf.c). They run everywhere; the kernel side is in source.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { compileTcFilter, parseTcBatch, TC_EVENT_SIZE, type TcFrame } from '../../../src/capture/tc/index.js';

/** A batch as the addon hands it over: [u64 length][record, padded to 8]… */
function batch(records: { ts: bigint; ifindex: number; len: number; dir: number; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const r of records) {
    const h = Buffer.alloc(TC_EVENT_SIZE);
    h.writeBigUInt64LE(r.ts, 0);
    h.writeUInt32LE(r.ifindex, 8);
    h.writeUInt32LE(r.len, 12);
    h.writeUInt32LE(r.data.length, 16);
    h[20] = r.dir;
    const pad = (8 - ((TC_EVENT_SIZE + r.data.length) % 8)) % 8;
    parts.push(h, r.data, Buffer.alloc(pad));
  }
  const b = Buffer.concat(parts);
  b.writeBigUInt64LE(BigInt(b.length), 0);
  return b;
}

describe('parseTcBatch', () => {
  it('reads every record with its padding, stamp, ifindex, lengths and direction', () => {
    const b = batch([
      { ts: 123_456_789_012_345n, ifindex: 7, len: 1514, dir: 0, data: Buffer.from('abcde') },
      { ts: 123_456_789_012_999n, ifindex: 9, len: 60, dir: 1, data: Buffer.alloc(8, 1) },
      { ts: 2n ** 40n + 3n, ifindex: 7, len: 3, dir: 1, data: Buffer.from('xyz') },
    ]);
    const got: TcFrame[] = [];
    expect(parseTcBatch(b, (f) => got.push({ ...f, data: Buffer.from(f.data) }))).toBe(3);
    expect(got.map((f) => [f.tsNs, f.ifindex, f.len, f.direction, f.data.toString('latin1')])).toEqual([
      [123_456_789_012_345, 7, 1514, 'ingress', 'abcde'],
      [123_456_789_012_999, 9, 60, 'egress', '\x01'.repeat(8)],
      [2 ** 40 + 3, 7, 3, 'egress', 'xyz'],
    ]);
  });

  it('stops at a record that runs past the batch instead of throwing', () => {
    const b = batch([{ ts: 1n, ifindex: 1, len: 4, dir: 0, data: Buffer.from('okay') }, { ts: 2n, ifindex: 1, len: 4, dir: 0, data: Buffer.from('cut!') }]);
    b.writeUInt32LE(5000, 8 + 32 + 16); // the second record claims 5000 bytes
    const seen: number[] = [];
    expect(parseTcBatch(b, (f) => seen.push(f.tsNs))).toBe(1);
    expect(seen).toEqual([1]);
    expect(parseTcBatch(Buffer.alloc(3), () => {})).toBe(0);
  });
});

describe('compileTcFilter', () => {
  it('keeps everything when empty', () => {
    expect(compileTcFilter()).toEqual({ flags: 0, ports: [], nets4: [], nets6: [] });
  });

  it('makes port keys in host order and LPM keys with their prefix lengths', () => {
    const f = compileTcFilter({ ports: [8080, 443], nets: ['10.1.0.0/16', '192.168.1.7', 'fd00::/8', '::ffff:10.0.0.1/128', '2001:db8::1'] });
    expect(f.flags).toBe(3);
    expect(f.ports.map((k) => k.toString('hex'))).toEqual(['901f', 'bb01']);
    expect(f.nets4.map((k) => k.toString('hex'))).toEqual(['100000000a010000', '20000000c0a80107']);
    expect(f.nets6.map((k) => k.toString('hex'))).toEqual([
      `08000000fd${'00'.repeat(15)}`,
      `80000000${'00'.repeat(10)}ffff0a000001`,
      `8000000020010db8${'00'.repeat(11)}01`,
    ]);
    expect(compileTcFilter({ nets: ['10.0.0.0/8'] }).flags).toBe(2);
  });

  it('names the option that is wrong', () => {
    expect(() => compileTcFilter({ ports: [0] })).toThrow('tc filter: port 0 is not an integer in 1..65535');
    expect(() => compileTcFilter({ ports: [70000] })).toThrow(/port 70000/);
    expect(() => compileTcFilter({ nets: ['10.0.0.0/33'] })).toThrow('tc filter: net "10.0.0.0/33" is not an IPv4 or IPv6 address');
    expect(() => compileTcFilter({ nets: ['example.com'] })).toThrow(/net "example.com"/);
    expect(() => compileTcFilter({ nets: ['10.0.0.0/8/1'] })).toThrow(/net "10.0.0.0\/8\/1"/);
    expect(() => compileTcFilter({ ports: Array.from({ length: 65 }, (_, i) => i + 1) })).toThrow('tc filter: 65 ports, at most 64');
  });
});
