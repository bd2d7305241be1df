import { execFileSync } from 'node:child_process';

/**
 * Some tests run the built code (the CLI as a user runs it, the golden baselines through
 * scripts/golden.mjs's library): build dist/ first when src/ is newer, so that
 * `vitest run test/golden` after an edit checks the edited code, not yesterday's build.
 * A type error does not stop the run here (tsc still emits, and `npm test` fails on it before
 * vitest starts): the tests say what the emitted code does.
 */
export default function setup(): void {
  try {
    execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
  } catch {
    console.warn('test/setup/build.ts: tsc reported errors (above); the tests run what it emitted');
  }
}
