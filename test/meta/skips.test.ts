import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function testFiles(dir = 'test'): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? testFiles(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

/** A skipped test that says nothing looks like a pass: every conditional skip prints why. */
describe('skips say why', () => {
  const self = join('test', 'meta', 'skips.test.ts');
  for (const file of testFiles().filter((f) => f !== self)) {
    const text = readFileSync(file, 'utf8');
    const skips = (text.match(/\.(skipIf|runIf)\(/g) ?? []).length + (text.match(/\b(it|test|describe)\.skip\(/g) ?? []).length;
    if (skips === 0) continue;
    it(`${file}: ${skips} conditional skip(s), with a printed reason`, () => {
      expect(/console\.(warn|log)\([^\n]*(skip|SKIP|MISSING_REASON)/.test(text), `${file} skips without printing why`).toBe(true);
    });
  }
});
