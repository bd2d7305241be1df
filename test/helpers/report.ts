import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll } from 'vitest';

/**
 * Long reports (conformance tables, deviations) are kept out of `npm test`'s output so that a
 * failure is easy to find. Each report is written to .tmp/reports/<name>.md; it is printed when
 * TAPWIRE_TEST_REPORTS=1, or when any test of the file that made it failed.
 */
export function keepReport(name: string, text: string): void {
  mkdirSync('.tmp/reports', { recursive: true });
  writeFileSync(`.tmp/reports/${name}.md`, `${text}\n`);
  if (process.env.TAPWIRE_TEST_REPORTS === '1') console.log(text);
  else held.push(text);
}

const held: string[] = [];

interface TaskLike { result?: { state?: string }; tasks?: TaskLike[] }
const failed = (t: TaskLike): boolean => t.result?.state === 'fail' || (t.tasks ?? []).some(failed);

/** Call once at the top of a test file that keeps reports: prints them if the file failed. */
export function printReportsOnFailure(): void {
  // vitest reads the first argument of a hook as its fixtures and requires an object pattern there;
  // this hook uses none, only the suite after it.
  // eslint-disable-next-line no-empty-pattern
  afterAll(({}, suite) => {
    if (held.length && failed(suite as TaskLike)) console.log(held.join('\n\n'));
  });
}
