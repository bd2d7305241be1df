import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpHistory } from '../../../src/enrich/kubernetes/history.js';
import { LateIdentities, type KnownSource } from '../../../src/enrich/kubernetes/late.js';
import type { FlowRecord } from '../../../src/flows/index.js';
import type { Identity } from '../../../src/enrich/types.js';

/** An IP history that tells when an address becomes known, as KubernetesIdentity does. */
class Source implements KnownSource {
  readonly h = new IpHistory();
  private listeners = new Set<(ip: string) => void>();
  lookup(ip: string, at?: number) {
    return this.h.lookup(ip, at);
  }
  onKnown(l: (ip: string) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(ip: string, id: Identity | undefined, at: number) {
    this.h.set(ip, id, at);
    if (id) for (const l of this.listeners) l(ip);
  }
}

let n = 0;
const rec = (src: string, dst: string, start: number) =>
  ({ id: `r${++n}`, protocol: 'http', connectionId: 'c', start, end: start, durationMs: 0, src: { ip: src, port: 1 }, dst: { ip: dst, port: 2 } }) as FlowRecord;

describe('LateIdentities', () => {
  it('passes a record with both peers known at once, enriched', () => {
    const s = new Source();
    s.set('10.0.0.1', { name: 'a' }, 0);
    s.set('10.0.0.2', { name: 'b' }, 0);
    const out: FlowRecord[] = [];
    const late = new LateIdentities(s, (r) => out.push(r));
    late.push(rec('10.0.0.1', '10.0.0.2', 10), 10);
    expect(out.map((r) => [r.src.name, r.dst.name])).toEqual([['a', 'b']]);
    expect(late.stats()).toMatchObject({ held: 0, releasedKnown: 1 });
  });

  it('holds a record until its pod is known, then releases it enriched (loopback is an address like any other)', () => {
    const s = new Source();
    s.set('10.0.0.1', { name: 'a' }, 0);
    const out: FlowRecord[] = [];
    const late = new LateIdentities(s, (r) => out.push(r), { waitSec: 2 });
    late.push(rec('10.0.0.1', '127.0.0.9', 10), 10);
    late.push(rec('::ffff:127.0.0.9', '10.0.0.1', 10.5), 10.5);
    expect(out).toEqual([]);
    expect(late.stats().held).toBe(2);
    // The informer hears of the pod after its first packets: its version starts later than the records.
    s.set('127.0.0.9', { name: 'late' }, 11);
    expect(out.map((r) => [r.src.name, r.dst.name])).toEqual([['a', 'late'], ['late', 'a']]);
    expect(late.stats()).toMatchObject({ held: 0, releasedKnown: 2, releasedTimeout: 0 });
  });

  it('releases at the deadline, in capture time, with what is known', () => {
    const s = new Source();
    s.set('10.0.0.1', { name: 'a' }, 0);
    const out: FlowRecord[] = [];
    const late = new LateIdentities(s, (r) => out.push(r), { waitSec: 2 });
    late.push(rec('10.0.0.1', '8.8.8.8', 10), 10);
    late.push(rec('10.0.0.1', '8.8.4.4', 11), 11);
    late.tick(11.99);
    expect(out).toHaveLength(0);
    expect(late.nextDeadline()).toBe(12);
    late.tick(12);
    expect(out.map((r) => [r.src.name, r.dst.name])).toEqual([['a', undefined]]);
    late.push(rec('10.0.0.1', '10.0.0.1', 13), 13); // pushing moves time on too
    expect(out.map((r) => r.dst.ip)).toEqual(['8.8.8.8', '8.8.4.4', '10.0.0.1']);
    expect(late.stats()).toMatchObject({ held: 0, releasedKnown: 1, releasedTimeout: 2 });
  });

  it('holds at most maxHeld, releasing the oldest first; flush() releases the rest', () => {
    const s = new Source();
    const out: FlowRecord[] = [];
    const late = new LateIdentities(s, (r) => out.push(r), { maxHeld: 2 });
    for (let i = 0; i < 4; i++) late.push(rec('10.9.0.1', `10.9.0.${10 + i}`, i / 10), i / 10);
    expect(out.map((r) => r.dst.ip)).toEqual(['10.9.0.10', '10.9.0.11']);
    late.flush();
    expect(out).toHaveLength(4);
    expect(late.stats()).toEqual({ held: 0, releasedKnown: 0, releasedTimeout: 0, releasedFull: 2, releasedFlush: 2 });
  });

  it('releases every record exactly once, whatever happens (fast-check)', () => {
    const ips = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::3'];
    const step = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), src: fc.nat(3), dst: fc.nat(3), dt: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant('known' as const), ip: fc.nat(3), dt: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant('tick' as const), dt: fc.double({ min: 0, max: 3, noNaN: true }) }),
      fc.constant({ kind: 'flush' as const, dt: 0 }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.integer({ min: 0, max: 5 }), (steps, maxHeld) => {
        const s = new Source();
        const out: FlowRecord[] = [];
        const late = new LateIdentities(s, (r) => out.push(r), { waitSec: 2, maxHeld });
        const pushed: FlowRecord[] = [];
        let t = 0;
        for (const st of steps) {
          t += st.dt;
          if (st.kind === 'push') {
            const r = rec(ips[st.src]!, ips[st.dst]!, t);
            pushed.push(r);
            late.push(r, t);
          } else if (st.kind === 'known') s.set(ips[st.ip]!, { name: `n${st.ip}` }, t);
          else if (st.kind === 'tick') late.tick(t);
          else late.flush();
          expect(late.stats().held).toBeLessThanOrEqual(maxHeld);
        }
        late.close();
        expect(new Set(out).size).toBe(out.length);
        expect(out.length).toBe(pushed.length);
        const st = late.stats();
        expect(st.releasedKnown + st.releasedTimeout + st.releasedFull + st.releasedFlush).toBe(pushed.length);
      }),
    );
  });
});
