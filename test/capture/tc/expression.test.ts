/**
 * The TC source's in-kernel prefilter derived from a tcpdump expression (src/capture/tc/expression.ts):
 * each form, pcap-filter(7)'s precedence, the agent's own clauses, and, against libpcap itself
 * (the addon's filterMatches on raw IP packets), that the kernel filter never drops a packet the
 * expression keeps, and keeps exactly those when it says it is exact.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipBytes, ipBytes16 } from '../../../src/common/index.js';
import { compileTcFilter, type TcFilter } from '../../../src/capture/tc/filter.js';
import { kernelPrefilter } from '../../../src/capture/tc/expression.js';
import { addonLoadError, loadAddon } from '../../../src/capture/tls/addon.js';

const k = kernelPrefilter;

describe('kernelPrefilter: forms', () => {
  it('ports: bare, per protocol, per direction, libpcap numbers, ranges', () => {
    expect(k('port 80')).toEqual({ filter: { ports: [80] }, exact: true });
    expect(k('src or dst port 80')).toEqual({ filter: { ports: [80] }, exact: true });
    expect(k('port 0x50')).toEqual({ filter: { ports: [80] }, exact: true });
    expect(k('port 0120')).toEqual({ filter: { ports: [80] }, exact: true }); // octal, as libpcap reads it
    // udp port 80 passes the kernel too; src port 80 keeps dst port 80 in the kernel
    for (const e of ['tcp port 80', 'udp port 80', 'sctp port 80', 'src port 80', 'tcp dst port 80', 'src and dst port 80']) {
      expect(k(e), e).toEqual({ filter: { ports: [80] }, exact: false });
    }
    expect(k('portrange 8000-8003')).toEqual({ filter: { ports: [8000, 8001, 8002, 8003] }, exact: true });
    expect(k('tcp portrange 90-88')).toEqual({ filter: { ports: [88, 89, 90] }, exact: false });
    expect(k('portrange 1-64').filter.ports).toHaveLength(64);
    expect(k('portrange 1-65')).toMatchObject({ filter: {}, exact: false, why: expect.stringMatching(/more than 64 ports/) });
  });

  it('ports the kernel cannot list, or that are not numbers, constrain nothing', () => {
    for (const [e, why] of [['port 0', /outside the ports 1..65535/], ['port 65536', /outside/], ['port 080', /not a port number/],
      ['port http', /names a service/], ['portrange 0-10', /outside/], ['ether port 80', /not a TCP\/UDP\/SCTP port/]] as const) {
      expect(k(e), e).toEqual({ filter: {}, exact: false, why: expect.stringMatching(why) });
      expect(k(e).why).toMatch(/every frame goes up to the userspace filter$/);
    }
  });

  it('hosts and nets, IPv4 and IPv6, with libpcap short forms and masks', () => {
    expect(k('host 10.0.0.1')).toEqual({ filter: { nets: ['10.0.0.1/32'] }, exact: true });
    expect(k('ip host 10.0.0.1')).toEqual({ filter: { nets: ['10.0.0.1/32'] }, exact: true });
    expect(k('net 10.0.0.0/8')).toEqual({ filter: { nets: ['10.0.0.0/8'] }, exact: true });
    expect(k('net 10')).toEqual({ filter: { nets: ['10.0.0.0/8'] }, exact: true });
    expect(k('net 10.1')).toEqual({ filter: { nets: ['10.1.0.0/16'] }, exact: true });
    expect(k('host 10.1')).toEqual({ filter: { nets: ['10.1.0.0/16'] }, exact: true }); // gencode promotes it too
    expect(k('net 10.1/16')).toEqual({ filter: { nets: ['10.1.0.0/16'] }, exact: true });
    expect(k('net 192.168.0.0 mask 255.255.0.0')).toEqual({ filter: { nets: ['192.168.0.0/16'] }, exact: true });
    // a mask with holes: its leading ones are a wider prefix
    expect(k('net 10.0.0.0 mask 255.0.255.0')).toEqual({ filter: { nets: ['10.0.0.0/8'] }, exact: false });
    expect(k('host fd00::1')).toEqual({ filter: { nets: ['fd00::1/128'] }, exact: true });
    expect(k('ip6 net 2001:DB8:0:0::/32')).toEqual({ filter: { nets: ['2001:db8::/32'] }, exact: true });
    expect(k('host ::ffff:10.0.0.9')).toEqual({ filter: { nets: ['::ffff:10.0.0.9/128'] }, exact: true });
    for (const e of ['src host 10.0.0.1', 'dst net 10.0.0.0/8', 'src and dst host 10.0.0.1', 'src 10.0.0.1']) {
      expect(k(e), e).toMatchObject({ filter: { nets: [expect.stringMatching(/^10\./)] }, exact: false });
    }
  });

  it('what is not a port or an address constrains nothing, and says why', () => {
    for (const [e, why] of [
      ['udp[8:4] = 0x74617077', '`udp[8:4] = 0x74617077` is not a port or address'],
      ['(tcp[13] & 2) != 0', '`(tcp[13] & 2) != 0` is not a port or address'],
      ['tcp', '`tcp` names a protocol'], ['ip6', '`ip6` names a protocol'],
      ['not port 80', '`not port 80` is a negation'], ['less 100', '`less 100` is not a port or address'],
      ['host example.com', 'needs a name lookup'], ['ether host 00:11:22:33:44:55', 'is an Ethernet address'],
      ['ip proto \\tcp', 'is not a port or address'], ['net 10.1.2.3/8', 'not an address or prefix the kernel filter can list'],
      ['ip6 host 10.0.0.1', 'is not an IP address or prefix'], ['port 80 or host 10.0.0.1', 'joins ports and addresses with `or`'],
      ['vlan and port 80', '`vlan` moves where the primitives after it read the frame'], ['mpls 3 and host 10.0.0.1', '`mpls` moves'],
    ] as const) {
      const got = k(e);
      expect(got.filter, e).toEqual({});
      expect(got.exact, e).toBe(false);
      expect(got.why, e).toContain(why);
    }
  });

  it('no expression is no filter, exactly', () => {
    expect(k(undefined)).toEqual({ filter: {}, exact: true });
    expect(k('  ')).toEqual({ filter: {}, exact: true });
  });
});

describe('kernelPrefilter: and, or, not, precedence', () => {
  it('or unites, and takes one side (never the intersection: a frame has two ports)', () => {
    expect(k('port 80 or port 443')).toEqual({ filter: { ports: [80, 443] }, exact: true });
    expect(k('host 10.0.0.1 || host fd00::1')).toEqual({ filter: { nets: ['10.0.0.1/32', 'fd00::1/128'] }, exact: true });
    expect(k('port 80 and port 443')).toEqual({ filter: { ports: [80] }, exact: false });
    expect(k('(port 80 or port 81) && port 443')).toEqual({ filter: { ports: [443] }, exact: false });
    expect(k('net 10.0.0.0/8 and port 5432')).toEqual({ filter: { ports: [5432], nets: ['10.0.0.0/8'] }, exact: true });
    expect(k('(port 1 and host 10.0.0.1) or (port 2 and host 10.0.0.1)')).toEqual({ filter: { ports: [1, 2], nets: ['10.0.0.1/32'] }, exact: true });
    // (P1 ∧ N1) ∨ (P2 ∧ N2) is wider than the kernel's (P1 ∨ P2) ∧ (N1 ∨ N2): still a superset
    expect(k('(port 1 and host 10.0.0.1) or (port 2 and host 10.0.0.2)')).toEqual({ filter: { ports: [1, 2], nets: ['10.0.0.1/32', '10.0.0.2/32'] }, exact: false });
    expect(k('tcp and port 80')).toEqual({ filter: { ports: [80] }, exact: false });
  });

  it('and and or have equal precedence, left to right; not binds tightest (pcap-filter(7))', () => {
    expect(k('port 1 or port 2 and port 3')).toEqual({ filter: { ports: [3] }, exact: false }); // (1 or 2) and 3
    expect(k('port 1 or (port 2 and port 3)')).toEqual({ filter: { ports: [1, 2] }, exact: false });
    expect(k('port 1 and port 2 or port 3')).toEqual({ filter: { ports: [1, 3] }, exact: false });
    expect(k('not port 1 and port 2')).toEqual({ filter: { ports: [2] }, exact: false }); // (not 1) and 2
    expect(k('! port 1 or port 2').filter).toEqual({}); // (not 1) or 2
    expect(k('not (port 1 and port 2)').filter).toEqual({});
  });

  it('bare values repeat the last qualifiers, as libpcap does', () => {
    expect(k('port 80 or 443')).toEqual({ filter: { ports: [80, 443] }, exact: true });
    expect(k('tcp dst port 80 or 443 or 8443')).toEqual({ filter: { ports: [80, 443, 8443] }, exact: false });
    expect(k('host 10.0.0.1 or 10.0.0.2 or (fd00::1 or 10.0.0.3)')).toMatchObject({ filter: { nets: ['10.0.0.1/32', '10.0.0.2/32', 'fd00::1/128', '10.0.0.3/32'] } });
    expect(k('port 80 and not 443')).toEqual({ filter: { ports: [80] }, exact: false });
    // after a group, a bare value takes the qualifiers from before the group: 443 is a host here
    expect(k('host 10.0.0.1 and (port 80) or 443')).toEqual({ filter: { nets: ['10.0.0.1/32', '0.0.1.187/32'] }, exact: false });
    // nothing to repeat after a protocol name: libpcap refuses it, and so nothing is listed
    expect(k('tcp or 80')).toMatchObject({ filter: {}, why: expect.stringMatching(/does not parse/) });
  });

  it("the agent's own clauses: its API port left out, drain markers let in", () => {
    expect(k('(tcp port 8080) and not (host 127.0.0.1 and tcp port 8899)')).toEqual({ filter: { ports: [8080] }, exact: false });
    expect(k('((tcp port 8080) and not tcp port 8899) or (udp dst port 9 and udp[8:4] = 0x74617077)')).toEqual({ filter: { ports: [9, 8080] }, exact: false });
    expect(k('(net 10.0.0.0/8) or (udp dst port 9 and udp[8:4] = 0x74617077)').filter).toEqual({});
  });

  it('more than 64 in a dimension is no constraint', () => {
    const ports = Array.from({ length: 65 }, (_, i) => `port ${i + 1}`);
    expect(k(ports.slice(0, 64).join(' or ')).filter.ports).toHaveLength(64);
    expect(k(ports.join(' or '))).toMatchObject({ filter: {}, exact: false, why: expect.stringMatching(/more than 64/) });
    expect(k(`(${ports.join(' or ')}) and host 10.0.0.1`)).toEqual({ filter: { nets: ['10.0.0.1/32'] }, exact: false });
  });
});

describe('kernelPrefilter: bad input', () => {
  it('a syntax error lists nothing and names the problem', () => {
    for (const [e, why] of [['port 80 and', /does not parse: .* at the end/], ['port 80 )', /does not parse: .*"\)"/],
      ['(port 80', /unbalanced/], ['port 80 # x', /"#" at offset 8/], ['port', /expected a value at the end/],
      [`${'('.repeat(250)}port 80${')'.repeat(250)}`, /nested more than 200 deep/]] as const) {
      const got = k(e);
      expect(got, e).toEqual({ filter: {}, exact: false, why: expect.stringMatching(why) });
    }
  });

  it('never throws, and whatever it lists compiles into map entries', () => {
    const words = ['port', 'host', 'net', 'src', 'dst', 'tcp', 'udp', 'ip6', 'and', 'or', 'not', '!', '(', ')', '[', ']', '80', '10.0.0.1',
      'fd00::1', '/', '8', 'mask', '255.0.0.0', '=', '&', '1-5', 'portrange', 'len', '-', 'vlan', ':', 'http', '0', '0x50'];
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.array(fc.constantFrom(...words), { maxLength: 14 }).map((w) => w.join(' '))), (e) => {
      const got = k(e);
      compileTcFilter(got.filter);
      expect(got.exact && (got.filter.ports ?? got.filter.nets) === undefined && e.trim() !== '').toBe(false);
    }), { numRuns: 2000 });
    const t0 = performance.now();
    k(`${'port 1 or ('.repeat(150)}port 2${')'.repeat(150)}`);
    k('not '.repeat(50000));
    k('('.repeat(30000) + ')'.repeat(30000));
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

// ---- against libpcap ----

const why = addonLoadError() ?? '';
if (why) console.warn(`test/capture/tc/expression.test.ts: the libpcap oracle is skipped: ${why}`);

const PORTS = ['9', '22', '53', '80', '443', '8080', '8899', '0x50'];
const HOSTS4 = ['10.0.0.1', '10.0.0.2', '10.1.2.3', '192.168.1.1', '127.0.0.1', '10.1'];
const NETS4 = ['10.0.0.0/8', '10.0.0.0/24', '10.1.0.0/16', '192.168.0.0/16', '10', '10.1', '10.0.0.0 mask 255.255.0.0', '10.0.0.0 mask 255.0.255.0'];
const HOSTS6 = ['fd00::1', '2001:db8::5', '::ffff:10.0.0.1'];
const NETS6 = ['fd00::/8', 'fd00::/64', '2001:db8::/32'];
const DIRS = ['', 'src ', 'dst ', 'src or dst ', 'src and dst '];
const UNKNOWN = ['udp[8:4] = 0x74617077', 'ip[1] = 0', 'tcp[13] & 2 != 0', '(tcp[13] & 0x10) = 0x10', 'len > 60', 'tcp', 'udp', 'ip',
  'ip6', 'sctp', 'icmp', 'less 100', 'greater 50', 'port 0', 'portrange 1-1000'];

const portLeaf = fc.tuple(fc.constantFrom('', 'tcp ', 'udp ', 'sctp '), fc.constantFrom(...DIRS), fc.constantFrom(...PORTS)).map(([p, d, n]) => `${p}${d}port ${n}`);
const rangeLeaf = fc.tuple(fc.constantFrom('', 'tcp ', 'udp '), fc.constantFrom('75-85', '440-450', '8079-8081', '20-22', '9-9')).map(([p, r]) => `${p}portrange ${r}`);
const addrLeaf = fc.oneof(
  fc.tuple(fc.constantFrom('', 'ip '), fc.constantFrom(...DIRS), fc.constantFrom(...HOSTS4)).map(([p, d, a]) => `${p}${d}host ${a}`),
  fc.tuple(fc.constantFrom('', 'ip6 '), fc.constantFrom(...DIRS), fc.constantFrom(...HOSTS6)).map(([p, d, a]) => `${p}${d}host ${a}`),
  fc.tuple(fc.constantFrom('', 'ip '), fc.constantFrom(...DIRS), fc.constantFrom(...NETS4)).map(([p, d, a]) => `${p}${d}net ${a}`),
  fc.tuple(fc.constantFrom('', 'ip6 '), fc.constantFrom(...DIRS), fc.constantFrom(...NETS6)).map(([p, d, a]) => `${p}${d}net ${a}`),
);
/** A group of bare values after one set of qualifiers: `(tcp port 80 or 443)`. */
const listLeaf = fc.tuple(fc.oneof(portLeaf, fc.constantFrom('host 10.0.0.1', 'net fd00::/8', 'src host 10.0.0.2')), fc.constantFrom(' or ', ' and not ', ' or not ', ' and '),
  fc.constantFrom(...PORTS, ...HOSTS4, ...HOSTS6)).map(([l, op, v]) => `(${l}${op}${v})`);
const leaf = fc.oneof({ weight: 3, arbitrary: portLeaf }, { weight: 3, arbitrary: addrLeaf }, { weight: 1, arbitrary: rangeLeaf },
  { weight: 2, arbitrary: fc.constantFrom(...UNKNOWN) }, { weight: 1, arbitrary: listLeaf },
  // a bare value repeats the qualifiers before it, when there are any (else libpcap refuses it)
  { weight: 1, arbitrary: fc.constantFrom('443', '80', '10.0.0.1', 'fd00::1') });
const { expr } = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.tuple(tie('expr'), fc.constantFrom(' and ', ' or ', ' && ', ' || '), tie('expr')).map(([a, op, b]) => `${a}${op}${b}`),
    tie('expr').map((a) => `(${a})`),
    fc.tuple(fc.constantFrom('not ', '! '), tie('expr')).map(([n, a]) => `${n}${a}`)),
}));

interface Pkt { v6: boolean; src: string; dst: string; proto: number; sport: number; dport: number; frag: 0 | 1 | 2; options: boolean; ext: boolean; marker: boolean }

/**
 * Packets for `e`: ports and addresses mostly from the expression itself, so that `and` and `or`
 * of different clauses meet packets that match one, both or neither; a few from outside.
 */
function packetsFor(e: string): fc.Arbitrary<Pkt[]> {
  const ports = [...new Set([...e.matchAll(/(?<![.:\w])\d{1,5}(?![.:\w])/g)].map((m) => Number(m[0])).filter((n) => n >= 1 && n <= 65535)), 80, 9, 22];
  const addrs = [...e.matchAll(/[0-9a-f.:]+/gi)].map((m) => m[0]).filter((a) => /\d+\.\d+\.\d+\.\d+$|:/.test(a) && ipBytes(a));
  const v4 = [...new Set([...addrs.filter((a) => ipBytes(a)!.length === 4 && !a.includes(':')), '10.0.0.1', '10.1.2.3', '10.0.1.2', '172.16.0.9', '192.168.1.1'])];
  const v6 = [...new Set([...addrs.filter((a) => a.includes(':')), 'fd00::1', 'fd00::1:2', '2001:db8::5', 'fe80::1', '::ffff:10.0.0.1'])];
  const port = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...ports) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 65535 }) });
  const pkt: fc.Arbitrary<Pkt> = fc.record({
    v6: fc.boolean(), src: fc.nat(), dst: fc.nat(),
    proto: fc.constantFrom(6, 6, 17, 17, 132, 1), sport: port, dport: port,
    frag: fc.constantFrom(0, 0, 0, 1, 2), options: fc.boolean(), ext: fc.constantFrom(false, false, false, true), marker: fc.boolean(),
  }).map((p) => {
    const pool = p.v6 ? v6 : v4;
    return { ...p, src: pool[p.src % pool.length]!, dst: pool[p.dst % pool.length]!, proto: p.v6 && p.proto === 1 ? 58 : p.proto } as Pkt;
  });
  return fc.array(pkt, { minLength: 16, maxLength: 16 });
}

/** A raw IPv4/IPv6 packet (DLT_RAW) with its transport header and a payload. */
function build(p: Pkt): Buffer {
  const payload = Buffer.from(p.marker ? 'tapwire-drain 0123456789abcdef' : 'hello, filter!');
  const l4 = Buffer.alloc(p.proto === 6 ? 20 : p.proto === 132 ? 12 : 8);
  if (p.proto === 1 || p.proto === 58) l4[0] = 8;
  else {
    l4.writeUInt16BE(p.sport, 0);
    l4.writeUInt16BE(p.dport, 2);
  }
  if (p.proto === 6) l4[12] = 0x50;
  if (p.proto === 17) l4.writeUInt16BE(8 + payload.length, 4);
  let body = Buffer.concat([l4, payload]);
  if (p.v6) {
    let next = p.proto;
    if (p.ext) { // hop-by-hop options with one PadN (RFC 8200 §4.3), which neither side walks
      body = Buffer.concat([Buffer.from([next, 0, 1, 4, 0, 0, 0, 0]), body]);
      next = 0;
    }
    const h = Buffer.alloc(40);
    h[0] = 0x60;
    h.writeUInt16BE(body.length, 4);
    h[6] = next;
    h[7] = 64;
    ipBytes16(p.src)!.copy(h, 8);
    ipBytes16(p.dst)!.copy(h, 24);
    return Buffer.concat([h, body]);
  }
  const h = Buffer.alloc(p.options ? 24 : 20);
  h[0] = 0x40 | (h.length / 4);
  h.writeUInt16BE(h.length + body.length, 2);
  h.writeUInt16BE(p.frag === 0 ? 0 : p.frag === 1 ? 0x2000 : 0x2000 | 185, 6); // MF, and an offset for a later fragment
  h[8] = 64;
  h[9] = p.proto;
  ipBytes(p.src)!.copy(h, 12);
  ipBytes(p.dst)!.copy(h, 16);
  if (p.options) h[20] = 1; // NOPs, then end of options
  return Buffer.concat([h, body]);
}

/** native/tc.bpf.c keep(), on a raw IP packet: what the kernel lets through for `f`. */
function kernelAccepts(f: TcFilter, b: Buffer): boolean {
  const ports = f.ports ?? [], nets = f.nets ?? [];
  if (!ports.length && !nets.length) return true;
  const v = b[0]! >> 4;
  if (v !== 4 && v !== 6) return false;
  const src = v === 4 ? b.subarray(12, 16) : b.subarray(8, 24), dst = v === 4 ? b.subarray(16, 20) : b.subarray(24, 40);
  const l4proto = v === 4 ? b[9]! : b[6]!, l4off = v === 4 ? (b[0]! & 15) * 4 : 40;
  const frag = v === 4 && (b.readUInt16BE(6) & 0x1fff) !== 0;
  const inPrefix = (addr: Buffer, net: string) => {
    const [a = '', len = ''] = net.split('/');
    const bytes = a.includes(':') ? ipBytes16(a)! : ipBytes(a)!;
    if (bytes.length !== addr.length) return false;
    for (let bit = 0; bit < Number(len); bit++) {
      if (((bytes[bit >> 3]! ^ addr[bit >> 3]!) >> (7 - (bit & 7))) & 1) return false;
    }
    return true;
  };
  if (nets.length && !nets.some((n) => inPrefix(src, n) || inPrefix(dst, n))) return false;
  if (!ports.length) return true;
  if (frag || ![6, 17, 132].includes(l4proto) || b.length < l4off + 4) return false;
  return ports.includes(b.readUInt16BE(l4off)) || ports.includes(b.readUInt16BE(l4off + 2));
}

describe.skipIf(why !== '')('kernelPrefilter against libpcap', () => {
  const addon = loadAddon()!;

  it('the kernel filter keeps every packet libpcap keeps, and exactly those when it says exact', () => {
    let checked = 0, exact = 0, narrowed = 0;
    fc.assert(fc.property(expr.chain((e) => packetsFor(e).map((pkts) => [e, pkts] as const)), ([e, pkts]) => {
      const bufs = pkts.map(build);
      let pcap: boolean[];
      try {
        pcap = addon.filterMatches(e, bufs);
      } catch {
        return; // libpcap refuses it (a bare value with no qualifiers to repeat, "rejects all packets" …)
      }
      const got = kernelPrefilter(e);
      compileTcFilter(got.filter);
      checked++;
      if (got.exact) exact++;
      if (got.filter.ports || got.filter.nets) narrowed++;
      bufs.forEach((b, i) => {
        const kern = kernelAccepts(got.filter, b);
        const at = `${e}\n${JSON.stringify(got)}\n${JSON.stringify(pkts[i])}`;
        if (pcap[i]) expect(kern, at).toBe(true);
        if (got.exact) expect(kern, at).toBe(pcap[i]);
      });
    }), { numRuns: 300 });
    // the generator must mostly make expressions libpcap takes, and some of each outcome
    expect(checked).toBeGreaterThan(200);
    expect(exact).toBeGreaterThan(10);
    expect(narrowed).toBeGreaterThan(50);
  });

  it('clauses that share ports and addresses, on every packet of a small grid', () => {
    const grid: Buffer[] = [];
    const addrs = ['10.0.0.1', '10.0.0.2', '0.0.0.2', '10.1.2.3'], ports = [1, 2, 3, 80];
    for (const src of addrs) for (const dst of addrs) for (const sport of ports) for (const dport of ports) for (const proto of [6, 17]) {
      grid.push(build({ v6: false, src, dst, proto, sport, dport, frag: 0, options: false, ext: false, marker: false }));
    }
    for (const e of ['(port 1 or port 2) and (port 2 or port 3)', '(port 1 or port 2) and port 3', 'port 1 and port 1',
      '(port 1 and host 10.0.0.1) or (port 2 and host 10.0.0.2)', '(port 1 and host 10.0.0.1) or (port 2 and host 10.0.0.1)',
      '(host 10.0.0.1 or host 10.0.0.2) and (host 10.0.0.2 or net 10.1)', 'host 10.0.0.1 and (port 1) or 2', 'port 1 or port 2 and port 3',
      'port 1 and port 2 or port 3', 'not port 1 and port 2', 'net 10.1 or host 10.1', 'tcp port 1 or udp port 2', 'src port 1 and dst port 2',
      'src or dst host 10.0.0.1 and dst net 10.0.0.0/24', 'host 10.0.0.1 or 10.0.0.2 and port 80']) {
      const got = kernelPrefilter(e), pcap = addon.filterMatches(e, grid);
      grid.forEach((b, i) => {
        const kern = kernelAccepts(got.filter, b), at = `${e} ${JSON.stringify(got)} packet ${i}`;
        if (pcap[i]) expect(kern, at).toBe(true);
        if (got.exact) expect(kern, at).toBe(pcap[i]);
      });
      expect(pcap.some(Boolean), e).toBe(true);
    }
  });

  it('the examples above mean what libpcap means', () => {
    const pkt = (src: string, dst: string, sport: number, dport: number) => build({ v6: src.includes(':'), src, dst, proto: 6, sport, dport, frag: 0, options: false, ext: false, marker: false });
    const pkts = [pkt('10.0.0.1', '10.0.0.2', 80, 443), pkt('10.0.0.1', '0.0.1.187', 1, 2), pkt('10.1.2.3', '10.0.0.9', 8080, 1)];
    expect(addon.filterMatches('port 1 or port 2 and port 443', pkts)).toEqual([false, false, false]);
    expect(addon.filterMatches('port 80 and port 443', pkts)).toEqual([true, false, false]);
    expect(addon.filterMatches('host 10.9.9.9 and (port 80) or 443', pkts)).toEqual([false, true, false]);
    expect(addon.filterMatches('host 10.1', pkts)).toEqual([false, false, true]);
    expect(addon.filterMatches('port 0120', pkts)).toEqual([true, false, false]);
  });
});
