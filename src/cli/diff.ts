import { loadRedactKey, Redactor } from '../flows/redact.js';
import { diffFlows, diffText, type DiffSide } from '../verify/diff.js';
import { captureFlows } from './source.js';

export const DIFF_EXIT = { same: 0, regression: 1, badInput: 2 } as const;

/** `tapwire diff <before> <after>`: compares two captures. Returns the exit status. */
export async function runDiff(before: string, after: string, o: { format: 'text' | 'json' }): Promise<number> {
  if (before === '-' && after === '-') {
    process.stderr.write('tapwire: diff: only one of the two captures can be standard input ("-")\n');
    return DIFF_EXIT.badInput;
  }
  // One key for both sides: a secret redacts to the same token in each, so requests still compare.
  const redactor = new Redactor({ key: loadRedactKey().key });
  const sides: DiffSide[] = [];
  for (const file of [before, after]) {
    const flows = await captureFlows(file, redactor);
    if (!flows) return DIFF_EXIT.badInput;
    sides.push({ label: file === '-' ? 'stdin' : file, flows });
  }
  const d = diffFlows(sides[0]!, sides[1]!);
  process.stdout.write(o.format === 'json' ? `${JSON.stringify(d, null, 2)}\n` : diffText(d));
  return d.regression ? DIFF_EXIT.regression : DIFF_EXIT.same;
}
