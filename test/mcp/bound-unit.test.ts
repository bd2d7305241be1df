import { describe, expect, it } from 'vitest';
import { fitRows, shrinkFindings, tokens, truncationNote } from '../../src/mcp/bound.js';

/** The bound's rules on plain data: evidence first, then details, then summaries; a finding never goes. */
describe('bound.ts', () => {
  const finding = (n: number, detail = 10) => ({
    summary: `finding with ${n} entries ${'s'.repeat(300)}`,
    evidence: Array.from({ length: n }, (_, i) => ({ flowId: `f-${i}`, summary: 'x'.repeat(40) })),
    details: { evidenceTotal: n, blob: 'd'.repeat(detail) },
  });

  it('caps every evidence list at the largest length that fits', () => {
    const fs = [finding(500), finding(3), finding(80)];
    const cut = shrinkFindings(fs, () => tokens(fs) <= 1500)!;
    const cap = Math.max(...fs.map((f) => f.evidence.length));
    expect(tokens(fs)).toBeLessThanOrEqual(1500);
    expect(fs.map((f) => f.evidence.length)).toEqual([cap, 3, cap]);
    // One more entry each would not have fitted.
    const more = [finding(500), finding(3), finding(80)];
    more.forEach((f) => { f.evidence = f.evidence.slice(0, cap + 1); });
    expect(tokens(more)).toBeGreaterThan(1500);
    expect(cut).toEqual({ evidenceOmitted: 583 - fs.reduce((n, f) => n + f.evidence.length, 0) });
    expect(fs.map((f) => f.details.evidenceTotal)).toEqual([500, 3, 80]);
  });

  it('then cuts details to the evidence total, then summaries, and keeps every finding', () => {
    const fs = [finding(10, 5000), finding(10, 5000)];
    const cut = shrinkFindings(fs, () => tokens(fs) <= 150)!;
    expect(fs).toHaveLength(2);
    expect(fs.map((f) => f.evidence.length)).toEqual([0, 0]);
    expect(fs.map((f) => f.details)).toEqual([{ evidenceTotal: 10 }, { evidenceTotal: 10 }]);
    expect(fs[0]!.summary.length).toBe(200);
    expect(cut).toEqual({ evidenceOmitted: 20, detailsOmitted: 2, findingsCompacted: 2 });
  });

  it('leaves what fits alone', () => {
    const fs = [finding(5)];
    expect(shrinkFindings(fs, () => true)).toBeUndefined();
    expect(fs[0]!.evidence).toHaveLength(5);
  });

  it('fitRows: the most rows that fit, at least one', () => {
    expect(fitRows(0, () => false)).toBe(0);
    expect(fitRows(10, () => true)).toBe(10);
    expect(fitRows(1000, (n) => n <= 377)).toBe(377);
    expect(fitRows(10, () => false)).toBe(1);
  });

  it('states the cut in words', () => {
    expect(truncationNote(20000, { evidenceOmitted: 12, rowsOmitted: 3 }, 'use the cursor').note)
      .toBe('result bounded to about 20000 tokens: 12 evidence entries left out (every finding is kept; details.evidenceTotal has each one\'s count); page ended 3 rows early; use the cursor');
  });
});
