import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIp, IpHistory } from '../../../src/enrich/kubernetes/history.js';
import type { Identity } from '../../../src/enrich/types.js';

const A: Identity = { name: 'a', namespace: 'shop', labels: { app: 'a' } };
const B: Identity = { name: 'b', namespace: 'shop', service: 'cart' };

describe('IpHistory', () => {
  it('answers for a time: from ≤ at < to, the current one without a time', () => {
    const h = new IpHistory();
    h.set('10.0.0.1', A, 100);
    h.set('10.0.0.1', undefined, 110);
    h.set('10.0.0.1', B, 120);
    expect(h.lookup('10.0.0.1', 99)).toBeUndefined();
    expect(h.lookup('10.0.0.1', 100)).toEqual(A);
    expect(h.lookup('10.0.0.1', 109.9)).toEqual(A);
    expect(h.lookup('10.0.0.1', 110)).toBeUndefined();
    expect(h.lookup('10.0.0.1', 120)).toEqual(B);
    expect(h.lookup('10.0.0.1')).toEqual(B);
    expect(h.versionsOf('10.0.0.1')).toEqual([{ from: 100, to: 110, identity: A }, { from: 120, identity: B }]);
  });

  it('opens no version for an identity equal to the current one (labels by content)', () => {
    const h = new IpHistory();
    expect(h.set('10.0.0.1', A, 100)).toBe(true);
    expect(h.set('10.0.0.1', { ...A, labels: { app: 'a' } }, 105)).toBe(false);
    expect(h.set('10.0.0.1', { ...A, labels: { app: 'x' } }, 106)).toBe(true);
    expect(h.versions).toBe(2);
  });

  it('starts a first version at `since` (an object\'s creation), never before the previous one ended', () => {
    const h = new IpHistory();
    h.set('10.0.0.1', A, 100, 50);
    expect(h.lookup('10.0.0.1', 50)).toEqual(A);
    h.set('10.0.0.1', undefined, 200);
    h.set('10.0.0.1', B, 300, 150); // created before A's end: starts at A's end
    expect(h.lookup('10.0.0.1', 199)).toEqual(A);
    expect(h.lookup('10.0.0.1', 200)).toEqual(B);
    h.set('10.0.0.1', A, 310, 0); // B is open: `since` does not apply
    expect(h.lookup('10.0.0.1', 305)).toEqual(B);
  });

  it('resolves any IPv6 spelling and IPv4-mapped IPv6 as the record form, loopback included', () => {
    const h = new IpHistory();
    h.set('FD00:0:0:0::0A', A, 1);
    h.set('::ffff:127.0.0.1', B, 1);
    expect(h.lookup('fd00::a')).toEqual(A);
    expect(h.lookup('fd00:0000::000a')).toEqual(A);
    expect(h.lookup('127.0.0.1')).toEqual(B);
    expect(h.lookup('::ffff:7f00:1')).toEqual(B);
    expect(h.lookup('not an ip')).toBeUndefined();
    expect(h.set('not an ip', A, 1)).toBe(false);
    expect(canonicalIp('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('2001:DB8::1')).toBe('2001:db8::1');
  });

  it('is bounded: versions that ended keepSec ago go, and each IP keeps at most maxVersions', () => {
    const h = new IpHistory({ keepSec: 60, maxVersions: 3 });
    for (let i = 0; i < 10; i++) h.set('10.0.0.1', { name: `p${i}` }, i);
    expect(h.versionsOf('10.0.0.1').map((v) => v.identity.name)).toEqual(['p7', 'p8', 'p9']);
    expect(h.versions).toBe(3);
    h.set('10.0.0.2', A, 10);
    h.set('10.0.0.2', undefined, 20);
    h.set('10.0.0.3', B, 100); // 80 s after 10.0.0.2 ended: a sweep drops it
    expect(h.lookup('10.0.0.2', 15)).toBeUndefined();
    expect(h.ips).toBe(2);
    // The current version is never pruned, however old.
    h.prune(10_000);
    expect(h.lookup('10.0.0.3')).toEqual(B);
    expect(h.lookup('10.0.0.1')?.name).toBe('p9');
    expect(h.versions).toBe(2);
  });

  it('agrees with a naive model: the last identity set at or before the time (fast-check)', () => {
    const ids: (Identity | undefined)[] = [undefined, A, B, { name: 'c' }];
    const op = fc.record({ ip: fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00::1'), dt: fc.integer({ min: 0, max: 5 }), id: fc.integer({ min: 0, max: 3 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.array(fc.double({ min: -5, max: 250, noNaN: true }), { maxLength: 20 }), (ops, queries) => {
        const h = new IpHistory({ keepSec: 1e9, maxVersions: 1000 });
        const model: { ip: string; at: number; id: Identity | undefined }[] = [];
        let t = 0;
        for (const o of ops) {
          t += o.dt;
          h.set(o.ip, ids[o.id], t);
          model.push({ ip: o.ip, at: t, id: ids[o.id] });
        }
        for (const ip of ['10.0.0.1', '10.0.0.2', 'fd00::1']) {
          const mine = model.filter((m) => m.ip === ip);
          for (const q of queries) {
            const last = mine.filter((m) => m.at <= q).at(-1);
            expect(h.lookup(ip, q)).toEqual(last?.id);
          }
          expect(h.lookup(ip)).toEqual(mine.at(-1)?.id);
        }
      }),
    );
  });
});
