import { describe, expect, it } from 'vitest';
import { RecentFlows } from '../../src/store/memory.js';
import type { FlowRecord } from '../../src/flows/index.js';

const flow = (i: number): FlowRecord => ({ id: `f-${i}`, start: 1000 + i } as unknown as FlowRecord);

describe('the latest flows held in memory', () => {
  it('are bounded by their encoded bytes as well as by count: heavy flows leave sooner', () => {
    const m = new RecentFlows(1000, 64 * 1024);
    for (let i = 0; i < 100; i++) {
      m.add(flow(i), i, 4096);
      if (m.overBound) m.evict(Infinity);
    }
    // 100 flows of 4 KiB against a 64 KiB bound: about 16 stay, never more than a batch over.
    expect(m.bytes).toBeLessThanOrEqual(64 * 1024 + 64 * 1024 / 16);
    expect(m.size).toBeLessThanOrEqual(17);
    expect(m.get('f-99')).toBeDefined();
    expect(m.get('f-0')).toBeUndefined();
    expect(m.bytes).toBe(m.size * 4096);
  });

  it('never evicts a flow not yet written, whatever its weight', () => {
    const m = new RecentFlows(1000, 1024);
    for (let i = 0; i < 10; i++) m.add(flow(i), i, 4096);
    m.evict(5);
    expect(m.size).toBe(5);
    expect(m.get('f-5')).toBeDefined();
  });
});
