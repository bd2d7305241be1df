import { describe, expect, it } from 'vitest';
import { DEFAULT_TIME_ORDER, TimeOrder, type TimeOrderOptions } from '../../src/capture/timeorder.js';
import type { Packet } from '../../src/capture/types.js';

let frame = 0;
function pkt(time: number, size = 10): Packet {
  return { frame: ++frame, time, linkType: 1, iface: 0, data: Buffer.alloc(size), wireLen: size };
}

function run(times: number[], opts: Partial<TimeOrderOptions> = {}, sizes?: number[]) {
  const out: Packet[] = [];
  const order = new TimeOrder((p) => out.push(p), { ...DEFAULT_TIME_ORDER, ...opts });
  const input = times.map((t, i) => pkt(t, sizes?.[i]));
  const releasedAfterPush: number[] = [];
  for (const p of input) {
    order.push(p);
    releasedAfterPush.push(out.length);
  }
  order.flush();
  return { out, order, input, releasedAfterPush };
}

describe('TimeOrder', () => {
  it('in-order packets pass through unchanged', () => {
    const { out, order, input } = run([1, 2, 3, 3, 4]);
    expect(out).toEqual(input);
    expect(order.reordered).toBe(0);
    expect(order.late).toBe(0);
  });

  it('out-of-order packets within the window come out sorted', () => {
    const { out, order } = run([10.0, 10.3, 10.1, 10.2, 10.05, 10.4], { windowSec: 0.5 });
    expect(out.map((p) => p.time)).toEqual([10.0, 10.05, 10.1, 10.2, 10.3, 10.4]);
    expect(order.reordered).toBe(3);
    expect(order.late).toBe(0);
  });

  it('is stable: equal times keep their arrival order, also when inserted back', () => {
    const { out, input } = run([5, 7, 6, 6, 5, 7, 6], { windowSec: 10 });
    const byFrame = (p: Packet) => input.indexOf(p);
    expect(out.map((p) => [p.time, byFrame(p)])).toEqual([
      [5, 0], [5, 4], [6, 2], [6, 3], [6, 6], [7, 1], [7, 5],
    ]);
  });

  it('packets older than what was already released are delivered at once and counted late', () => {
    // window 0.5: pushing 11 releases 10; a packet at 9.9 can no longer be put before it.
    const { out, order, releasedAfterPush } = run([10, 11, 9.9, 12], { windowSec: 0.5 });
    expect(out.map((p) => p.time)).toEqual([10, 9.9, 11, 12]);
    expect(order.late).toBe(1);
    expect(releasedAfterPush).toEqual([0, 1, 2, 3]);
  });

  it('a packet equal in time to the last released one is not late', () => {
    const { out, order } = run([10, 11, 10], { windowSec: 0.5 });
    expect(order.late).toBe(0);
    expect(out.map((p) => p.time)).toEqual([10, 10, 11]);
  });

  it('holds packets while they are within the window of the newest', () => {
    const { releasedAfterPush } = run([1, 1.1, 1.2, 1.6, 1.65, 3], { windowSec: 0.5 });
    // 1.6 pushes the cutoff to 1.1: 1 and 1.1 (not > cutoff) go; 3 releases everything up to 2.5.
    expect(releasedAfterPush).toEqual([0, 0, 0, 2, 2, 5]);
  });

  it('maxPackets releases the oldest early', () => {
    const { out, order, releasedAfterPush } = run([1, 1.001, 1.002, 1.003, 1.0005], { windowSec: 100, maxPackets: 3 });
    expect(releasedAfterPush).toEqual([0, 0, 0, 1, 2]);
    // 1.0005 still fit before 1.001 (held), but not before 1 (already released because of the bound).
    expect(out.map((p) => p.time)).toEqual([1, 1.0005, 1.001, 1.002, 1.003]);
    expect(order.late).toBe(0);
  });

  it('maxBytes releases the oldest early, and a late packet after that is counted', () => {
    const { out, order, releasedAfterPush } = run([1, 1.1, 1.2, 1.05], { windowSec: 100, maxBytes: 250 }, [100, 100, 100, 10]);
    expect(releasedAfterPush).toEqual([0, 0, 1, 1]); // 1.05 fits: 210 bytes held
    expect(out.map((p) => p.time)).toEqual([1, 1.05, 1.1, 1.2]);
    const late = run([1, 1.1, 1.2, 0.5], { windowSec: 100, maxBytes: 250 }, [100, 100, 100, 10]);
    expect(late.order.late).toBe(1);
    expect(late.out.map((p) => p.time)).toEqual([1, 0.5, 1.1, 1.2]);
    expect(order.late).toBe(0);
  });

  it('flush releases everything held, in order, and the instance can be used again', () => {
    const out: Packet[] = [];
    const order = new TimeOrder((p) => out.push(p), { windowSec: 100, maxPackets: 1e6, maxBytes: 1e9 });
    for (const t of [3, 1, 2]) order.push(pkt(t));
    expect(out).toHaveLength(0);
    order.flush();
    expect(out.map((p) => p.time)).toEqual([1, 2, 3]);
    order.push(pkt(4));
    order.flush();
    expect(out.map((p) => p.time)).toEqual([1, 2, 3, 4]);
  });

  it('stays correct over many packets (compaction of the held array)', () => {
    const times: number[] = [];
    for (let i = 0; i < 20_000; i++) times.push(i * 0.001 + (i % 7 === 3 ? -0.0025 : 0));
    const { out, order } = run(times, { windowSec: 0.01 });
    const sorted = [...times].sort((a, b) => a - b);
    expect(out.map((p) => p.time)).toEqual(sorted);
    expect(order.late).toBe(0);
    expect(order.reordered).toBeGreaterThan(0);
  });
});
