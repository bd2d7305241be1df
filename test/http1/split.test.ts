import { describe, expect, it } from 'vitest';
import { CASES } from './cases.js';
import { runScenario, shape, streamLengths } from '../helpers/http.js';

/**
 * Every case whose bytes fit a few segments is run once per split point: one direction's byte
 * stream cut into two TCP segments at byte k (segment 1 = bytes[0..k), segment 2 = the rest),
 * for every k of both directions. Records (without times and frame numbers) and violations must
 * equal the unsplit run's.
 */
const SPLIT_CASES = CASES.filter((c) => streamLengths(c).every((n) => n < 4096));

describe('HTTP/1 cases split at every byte boundary', () => {
  it('covers most of the table', () => {
    expect(SPLIT_CASES.length).toBeGreaterThanOrEqual(CASES.length - 2);
  });

  for (const c of SPLIT_CASES) {
    it(c.name, () => {
      const base = runScenario(c);
      const want = { records: base.records.map(shape), violations: base.violations };
      const lengths = streamLengths(c);
      const mismatches: string[] = [];
      for (const dir of [0, 1] as const) {
        for (let at = 1; at < lengths[dir]; at++) {
          const run = runScenario(c, { dir, at });
          const got = { records: run.records.map(shape), violations: run.violations };
          try {
            expect(got).toEqual(want);
          } catch {
            mismatches.push(`${dir === 0 ? 'client' : 'server'} stream split at ${at}: ${JSON.stringify(got).slice(0, 400)}`);
          }
        }
      }
      expect(mismatches.slice(0, 5), `${mismatches.length} split points differ from the unsplit run ${JSON.stringify(want).slice(0, 400)}`).toEqual([]);
    });
  }
});
