import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { goldenFiles, goldenRun, GOLDEN_DIR } from './golden-lib.mjs';

/**
 * Golden tests: each recorded capture in pcaps/ against its reviewed JSONL baseline.
 * After an intended decoder change: `npm run golden`, then review `git diff test/golden`.
 */
describe('golden baselines', () => {
  const files: string[] = goldenFiles();
  it('has captures to check', () => expect(files.length).toBeGreaterThan(10));
  it('every baseline has its capture: a baseline whose pcap is gone checks nothing', () => {
    const captures = new Set(files.map((f) => join(GOLDEN_DIR, relative('pcaps', f))));
    const orphans = baselines(GOLDEN_DIR).filter((b) => !captures.has(b.replace(/\.(jsonl|stats\.json)$/, '')));
    expect(orphans, 'baselines without a capture in pcaps/: delete them, or restore the capture').toEqual([]);
  });
  for (const file of files) {
    it(file, async () => {
      const base = join(GOLDEN_DIR, relative('pcaps', file));
      expect(existsSync(`${base}.jsonl`), `no baseline for ${file}: run npm run golden`).toBe(true);
      const { jsonl, stats } = await goldenRun(file);
      const want = readFileSync(`${base}.jsonl`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const got = jsonl.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      expect(got, `${file} differs from its baseline (npm run golden, then review the diff)`).toEqual(want);
      expect(stats).toEqual(JSON.parse(readFileSync(`${base}.stats.json`, 'utf8')));
    });
  }
});

function baselines(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? baselines(p) : /\.(jsonl|stats\.json)$/.test(e.name) ? [p] : [];
  });
}
