import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runSegments } from '../helpers/pipeline.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { actual, build, exchanges, expected, mutate, mutation, wire, wrongPairs } from './exchanges.js';

/*
 * Properties over random HTTP/1 exchanges (generators in exchanges.ts):
 *  1. valid exchanges, cut into random segments and reordered within a window (sequence numbers
 *     stay right), decode to exactly the exchanges;
 *  2. random byte mutations never throw and never pair a response with a request it did not
 *     answer (each response echoes its request's unique path in x-echo-path).
 */
describe('HTTP/1 properties', () => {
  it('random valid exchanges, randomly segmented and reordered, decode to exactly those exchanges', () => {
    let reordered = 0;
    fc.assert(
      fc.property(exchanges(1, 5), wire, (xs, w) => {
        const { records, violations, pipeline } = runSegments(build(xs, w));
        expect(violations).toEqual({});
        expect(records.map(actual)).toEqual(xs.map(expected));
        if (pipeline.reassembler.stats.outOfOrderSegments > 0) reordered++;
      }),
      { numRuns: 300 },
    );
    // The generator really does hand reassembly out-of-order segments.
    expect(reordered).toBeGreaterThan(20);
  });

  it('random byte mutations never throw and never pair a response with a request it did not answer', () => {
    fc.assert(
      fc.property(exchanges(2, 5), wire, fc.array(mutation, { minLength: 1, maxLength: 6 }), (xs, w, muts) => {
        const segs = build(xs, w);
        mutate(segs, muts);
        let records: FlowRecord[] = [];
        expect(() => { records = runSegments(segs).records; }).not.toThrow();
        expect(wrongPairs(records, xs)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
