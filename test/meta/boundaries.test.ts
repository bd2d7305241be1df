import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The dependency rules (.dependency-cruiser.cjs) catch what they are for: each kind of bad import
 * is planted in a scratch copy of the tree, and the check must fail naming its rule. The real
 * tree must pass (npm test runs the same check first).
 */
const ROOT = resolve('.');
let scratch = '';

function cruise(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs'), 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** A fresh copy of src/ and the config, with `files` added (path → content). */
function plant(files: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, 'tree-'));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  for (const f of ['.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) cpSync(join(ROOT, f), join(dir, f));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

beforeAll(() => { scratch = mkdtempSync(join(tmpdir(), 'tapwire-boundaries-')); });
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('dependency rules hold, and catch each kind of bad import', () => {
  it('the real tree passes', () => {
    const r = cruise(ROOT);
    expect(r.status, r.out).toBe(0);
  });

  const cases: [string, Record<string, string>, RegExp][] = [
    ['a protocol importing another protocol', { 'src/protocols/redis/session.ts': "import { http1 } from '../http1/index.js';\nexport const x = http1;\n" }, /no-protocol-imports-another/],
    ['a protocol reaching into another protocol\'s session', { 'src/protocols/redis/session.ts': "import * as pg from '../postgres/session.js';\nexport const x = pg;\n" }, /no-protocol-imports-another/],
    ['node:fs in a decoder stage', { 'src/protocols/redis/session.ts': "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n" }, /no-io-in-decoders/],
    ['node:net in reassembly', { 'src/reassembly/sneaky.ts': "import { connect } from 'node:net';\nexport const x = connect;\n" }, /no-io-in-decoders/],
    ['node:child_process in flows', { 'src/flows/sneaky.ts': "import { spawn } from 'node:child_process';\nexport const x = spawn;\n" }, /no-io-in-decoders/],
    ['a front door importing reassembly internals', { 'src/mcp/sneaky.ts': "import { TcpReassembler } from '../reassembly/tcp.js';\nexport const x = TcpReassembler;\n" }, /front-doors-use-the-core/],
    ['a stage imported past its index.ts', { 'src/verify/sneaky.ts': "import { Pipeline } from '../pipeline/pipeline.js';\nexport const x = Pipeline;\n" }, /through-index/],
    ['a cycle', { 'src/common/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n", 'src/common/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n" }, /no-circular/],
    ['an upward import', { 'src/decode/sneaky.ts': "import { verify } from '../verify/index.js';\nexport const x = verify;\n" }, /decode-not-upward/],
  ];
  for (const [what, files, rule] of cases) {
    it(`fails on ${what}`, () => {
      const r = cruise(plant(files));
      expect(r.status, r.out).not.toBe(0);
      expect(r.out).toMatch(rule);
    });
  }
});
