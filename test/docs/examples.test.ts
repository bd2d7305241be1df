import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The docs' examples are what the commands print. A fenced block that starts with
 * "$ tapwire <args>" is run (as the built CLI); each following line must appear in its stdout, in
 * order and one after the other, except that a line "…" stands for any number of lines. Only the
 * offline commands are run (analyze, verify, diff): live ones need root, services and time, and
 * their examples show timings that vary.
 */
const OFFLINE = new Set(['analyze', 'verify', 'diff']);
interface Example { file: string; args: string[]; expected: string[] }

/**
 * A block may hold several commands, each "$ tapwire <args>" line followed by its output; a
 * "# …" after the arguments is a comment, not an argument.
 */
function examples(file: string): Example[] {
  const out: Example[] = [];
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/```[a-z]*\n(\$ tapwire [\s\S]*?)```/g)) {
    for (const part of m[1]!.split(/^(?=\$ )/m)) {
      const [command = '', ...lines] = part.replace(/\n$/, '').split('\n');
      const c = /^\$ tapwire ([^#]+)/.exec(command);
      if (c) out.push({ file, args: c[1]!.trim().split(/\s+/), expected: lines });
    }
  }
  return out;
}

/** Where the expected lines fail to follow the output, or undefined when they do. */
function mismatch(expected: string[], actual: string[]): string | undefined {
  let at = 0;
  let skipping = false;
  for (const want of expected) {
    if (want.trim() === '…') { skipping = true; continue; }
    const found = skipping ? actual.indexOf(want, at) : actual[at] === want ? at : -1;
    if (found < 0) return `expected ${skipping ? 'somewhere after' : 'at'} output line ${at + 1}: ${want}\n got: ${actual[at] ?? '<end of output>'}`;
    at = found + 1;
    skipping = false;
  }
  return undefined;
}

const files = ['README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const all = files.flatMap(examples).filter((e) => OFFLINE.has(e.args[0]!));

describe('examples in the docs match what the commands print', () => {
  it('the README has examples to check', () => expect(all.filter((e) => e.file === 'README.md').length).toBeGreaterThanOrEqual(2));
  for (const ex of all) {
    it(`${ex.file}: tapwire ${ex.args.join(' ')}`, () => {
      const r = spawnSync(process.execPath, ['dist/cli/main.js', ...ex.args], { encoding: 'utf8', env: { ...process.env, TAPWIRE_REDACT_KEY: '' } });
      expect(r.status, r.stderr).not.toBeNull();
      const problem = mismatch(ex.expected, r.stdout.replace(/\n$/, '').split('\n').map((l) => l.trimEnd()));
      expect(problem).toBeUndefined();
    });
  }
});
