import { describe, expect, it } from 'vitest';
import { mergeUsage, type PodUsage } from '../../../src/enrich/usage/index.js';

/** The hub's view: each agent samples its own node's pods; their answers for the same pods merge. */
const use = (cpu: number, mem: number): PodUsage => ({ cpu: { max: cpu, mean: cpu }, memory: { max: mem, mean: mem }, samples: 1 });

describe('mergeUsage', () => {
  it('a pod sampled by one agent is sampled; unsampled only when no agent sampled it', () => {
    const m = mergeUsage([
      { pods: { 'shop/a-1': use(10, 100) }, unsampled: ['shop/b-1', 'shop/c-1'], interval: 15 },
      { pods: { 'shop/b-1': use(20, 200) }, unsampled: ['shop/a-1', 'shop/c-1'], interval: 15, skipped: 2 },
    ]);
    expect(m).toEqual({ pods: { 'shop/a-1': use(10, 100), 'shop/b-1': use(20, 200) }, unsampled: ['shop/c-1'], interval: 15, skipped: 2 });
  });

  it('an agent that could not say is named; none that could is unavailable with each reason once', () => {
    const no = { unavailable: 'metrics API not reachable: metrics.k8s.io/v1beta1 answered 404 (metrics-server not installed)' };
    expect(mergeUsage([{ pods: { 'shop/a-1': use(1, 1) }, interval: 15 }, no])).toMatchObject({ note: `not every source answered: ${no.unavailable}` });
    expect(mergeUsage([no, no])).toEqual(no);
    expect(mergeUsage([])).toEqual({ unavailable: 'no source of resource use answered' });
  });
});
