import { describe, expect, it } from 'vitest';
import { addonLoadError, plaintextFilter } from '../../../src/capture/index.js';

/**
 * The capture filter on TLS plaintext (src/capture/tls/filter.ts): libpcap itself judges synthetic
 * headers of a connection's two directions, so tcpdump syntax means what it means for packets.
 */
const why = addonLoadError() ?? '';
if (why) console.warn(`test/capture/tls/filter.test.ts skipped: ${why}`);

const ends = (local: [string, number], remote: [string, number]) => ({ local: { ip: local[0], port: local[1] }, remote: { ip: remote[0], port: remote[1] } });
const client = ends(['10.0.0.5', 43512], ['10.0.0.9', 8443]);
const server = ends(['10.0.0.9', 8443], ['10.0.0.5', 43512]);

describe.skipIf(why !== '')('plaintextFilter', () => {
  it('a connection is kept when either direction matches, from either end', () => {
    for (const [expr, want] of [
      ['tcp port 8443', true], ['port 43512', true], ['host 10.0.0.9', true], ['net 10.0.0.0/24', true],
      ['src host 10.0.0.5 and dst port 8443', true], ['src host 10.0.0.9 and src port 8443', true],
      ['net 10.1.0.0/16', false], ['udp', false], ['tcp port 80', false], ['not net 10.0.0.0/8', false],
    ] as const) {
      const keep = plaintextFilter(expr);
      expect([expr, keep(client)], expr).toEqual([expr, want]);
      expect([expr, keep(server)], expr).toEqual([expr, want]);
    }
  });

  it('IPv6, and IPv4-mapped IPv6, in any spelling', () => {
    const v6 = ends(['fd00::5', 40000], ['fd00:0:0:0:0:0:0:9', 443]);
    expect(plaintextFilter('ip6 and net fd00::/64 and port 443')(v6)).toBe(true);
    expect(plaintextFilter('ip and port 443')(v6)).toBe(false);
    expect(plaintextFilter('ip6 host ::ffff:10.0.0.9')(ends(['::ffff:10.0.0.5', 1], ['::ffff:10.0.0.9', 2]))).toBe(true);
  });

  it('a filter libpcap cannot parse is refused with its words, before any connection', () => {
    expect(() => plaintextFilter('tcp prot 443')).toThrow(/^filter: .*syntax error/);
  });
});
