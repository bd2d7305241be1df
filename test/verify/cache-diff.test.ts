import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { diffFlows, diffText, type FlowDiff } from '../../src/verify/diff.js';

/**
 * Issue 19: `tapwire diff` on the cache demo pair shows the hit ratio going up, and `tapwire verify`
 * fails the demo and passes its fix (the CLI as a user runs it: dist/cli/main.js).
 */
const CACHE = 'pcaps/demo/cache.pcap';
const FIXED = 'pcaps/demo/cache-fixed.pcap';
const UP = 'cache hit ratio up: order:{n}:{n} → order:{n}: hit ratio 0% (0 of 40 reads) → 75% (30 of 40 reads)';

const flows = async (f: string): Promise<FlowRecord[]> => (await analyzeFile(f)).records!;
const side = async (f: string) => ({ label: f, flows: await flows(f) });
const cli = (...args: string[]) => spawnSync(process.execPath, ['dist/cli/main.js', ...args], { encoding: 'utf8', timeout: 60_000 });

describe('diff: the cache hit ratio per key pattern', () => {
  it('cache → fixed: the hit ratio of the order cache goes up, an improvement; the error finding is resolved', async () => {
    const d = diffFlows(await side(CACHE), await side(FIXED));
    expect(d.cache).toEqual([{
      pattern: 'order:{n}',
      before: { pattern: 'order:{n}:{n}', reads: 40, hits: 0, misses: 40, sets: 40, hitRatio: 0 },
      after: { pattern: 'order:{n}', reads: 40, hits: 30, misses: 10, sets: 10, hitRatio: 0.75 },
      change: 'up',
    }]);
    expect(d.improvements).toContain(UP);
    expect(d.improvements.some((l) => l.startsWith('resolved error finding: cache-aside: 40 cache keys of pattern order:{id}:{timestamp}'))).toBe(true);
    expect(d.regressions.filter((l) => l.includes('cache'))).toEqual([]);
    const text = diffText(d);
    expect(text).toContain(` ✓ ${UP}\n`);
    // named once, as an improvement, not again in the cache section
    expect(text).not.toContain('cache hit ratio by key pattern, changed');
  });

  it('fixed → cache: the hit ratio falls from 75% to 0% over 40 reads each, a regression', async () => {
    const d = diffFlows(await side(FIXED), await side(CACHE));
    expect(d.cache.map((c) => [c.pattern, c.change])).toEqual([['order:{n}:{n}', 'down']]);
    expect(d.regressions).toContain('cache hit ratio down: order:{n} → order:{n}:{n}: hit ratio 75% (30 of 40 reads) → 0% (0 of 40 reads)');
    expect(d.regression).toBe(true);
  });

  it('a capture against itself: the same hit ratio, nothing said', async () => {
    const s = await side(FIXED);
    const d = diffFlows(s, s);
    expect(d.cache.map((c) => c.change)).toEqual(['same']);
    expect(d.improvements).toEqual([]);
    expect(diffText(d)).toMatch(/^no regression\nno differences\n$/m);
  });

  it('no Redis reads: an empty cache section', async () => {
    const s = await side('pcaps/demo/demo.pcap');
    expect(diffFlows(s, s).cache).toEqual([]);
  });

  it('a pattern on one side only is added or removed, and a few reads are not a ratio to regress on', async () => {
    const s = await side(FIXED);
    const d = diffFlows({ label: 'none', flows: [] }, s);
    expect(d.cache).toMatchObject([{ pattern: 'order:{n}', change: 'added' }]);
    expect(d.regressions.filter((l) => l.includes('cache'))).toEqual([]);
    expect(diffText(d)).toContain('cache hit ratio by key pattern, changed:\n   added   order:{n}: hit ratio - → 75% (30 of 40 reads)\n');
    // the last 5 requests of each capture: 5 hits before, 5 misses after; down, but 5 reads are too few to call it a regression
    const tail = (fs: FlowRecord[]) => {
      const from = fs.filter((f) => f.protocol === 'http').map((f) => f.start).sort((x, y) => x - y)[35]!;
      return fs.filter((f) => f.start >= from);
    };
    const few = diffFlows({ label: 'fixed', flows: tail(s.flows) }, { label: 'cache', flows: tail(await flows(CACHE)) });
    expect(few.cache.map((c) => [c.change, c.before?.reads, c.before?.hits, c.after?.reads, c.after?.hits])).toEqual([['down', 5, 5, 5, 0]]);
    expect(few.regressions.filter((l) => l.includes('cache'))).toEqual([]);
    expect(diffText(few)).toContain('   down    order:{n} → order:{n}:{n}: hit ratio 100% (5 of 5 reads) → 0% (0 of 5 reads)\n');
  });
});

describe('the CLI on the cache demo', () => {
  it('verify cache.pcap exits 1 and names cache-aside with the pattern', () => {
    const r = cli('verify', CACHE);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^verdict: FAIL/m);
    expect(r.stdout).toMatch(/ERROR {3}cache-aside: 40 cache keys of pattern order:\{id\}:\{timestamp\}/);
  });

  it('verify cache-fixed.pcap exits 0', () => {
    const r = cli('verify', FIXED);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^verdict: PASS/m);
    expect(r.stdout).not.toMatch(/(ERROR|WARNING) +cache-aside/);
  });

  it('diff cache.pcap cache-fixed.pcap: the hit ratio up, in text and in JSON (field cache)', () => {
    const text = cli('diff', CACHE, FIXED);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain(UP);
    const json = cli('diff', '--format', 'json', CACHE, FIXED);
    expect(json.status, json.stderr).toBe(0);
    const d = JSON.parse(json.stdout) as FlowDiff;
    expect(d.cache[0]).toMatchObject({ pattern: 'order:{n}', change: 'up', before: { hitRatio: 0 }, after: { hitRatio: 0.75 } });
  });
});
