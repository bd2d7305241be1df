// Builds dist/ with tsc when it is missing or older than any file in src/, so `npm start` and
// `npm test` work on a fresh clone without a separate build step.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const stamp = 'dist/cli/main.js';
const stale = !existsSync(stamp) || newest('src') > statSync(stamp).mtimeMs
  || statSync('tsconfig.json').mtimeMs > statSync(stamp).mtimeMs;
if (stale) {
  process.stderr.write('tapwire: building (tsc)…\n');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
