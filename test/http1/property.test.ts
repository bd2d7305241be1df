import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { httpRun, runSegments } from '../helpers/pipeline.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { actual, build, exchanges, expected, loseSegments, mutate, mutation, wire, wrongPairs } from './exchanges.js';

/*
 * Properties over random HTTP/1 exchanges (generators in exchanges.ts):
 *  1. valid exchanges, cut into random segments and reordered within a window (sequence numbers
 *     stay right), decode to exactly the exchanges;
 *  2. random byte mutations never throw and never pair a response with a request it did not
 *     answer (each response echoes its request's unique path in x-echo-path);
 *  3. random segments missing from the capture (the peers' ACKs still cover them) never make a
 *     response pair with a request it did not answer, and pairing recovers: every exchange before
 *     the first loss decodes exactly; without pipelining, so does every exchange whose bytes were
 *     all captured, and its two predecessors' too. (A lost segment can take the first bytes of
 *     the next message in the same direction with it, when reassembly declares the hole up to the
 *     first segment held after it; what is left of that message can run into the one after it
 *     while the parser resynchronises.)
 */
describe('HTTP/1 properties', () => {
  it('random valid exchanges, randomly segmented and reordered, decode to exactly those exchanges', () => {
    let reordered = 0;
    fc.assert(
      fc.property(exchanges(1, 5), wire, (xs, w) => {
        const { records, violations, pipeline } = httpRun(runSegments(build(xs, w)));
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

  it('random segment loss never mis-pairs, and later exchanges the loss did not touch pair again', () => {
    let recovered = 0;
    let unrecognised = 0;
    fc.assert(
      fc.property(exchanges(2, 8), wire, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), (xs, w, picks) => {
        const { kept, damaged } = loseSegments(build(xs, w), xs, picks);
        const { records, pipeline } = httpRun(runSegments(kept));
        expect(wrongPairs(records, xs)).toEqual([]);
        // Tiny segments with the first ones lost can exhaust the dispatcher's probe attempts
        // (PROBE_LIMITS) before any message start is seen: no session, nothing to pair.
        if (pipeline.dispatcher.stats.byProtocol.http !== 1) {
          unrecognised++;
          return;
        }
        // Each request and each response is reported at most once.
        for (const x of xs) {
          expect(records.filter((r) => r.request?.path === x.path).length).toBeLessThanOrEqual(1);
          expect(records.filter((r) => r.response?.headers['x-echo-path'] === x.path).length).toBeLessThanOrEqual(1);
        }
        const first = Math.min(...damaged);
        const last = Math.max(...damaged);
        xs.forEach((x, i) => {
          const must = i < first || (!w.pipelined && !damaged.has(i) && !damaged.has(i - 1) && !damaged.has(i - 2));
          if (!must) return;
          expect(records.filter((r) => r.request?.path === x.path).map(actual), `exchange ${i} (lost: ${[...damaged]})`).toEqual([expected(x)]);
          if (i > last) recovered++;
        });
      }),
      { numRuns: 500 },
    );
    // The generator really does lose segments before exchanges that must then pair.
    expect(recovered).toBeGreaterThan(30);
    expect(unrecognised).toBeLessThan(100);
  });
});
