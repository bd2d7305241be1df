import { Redactor } from '../flows/index.js';
import { loadRedactKey } from '../pipeline/index.js';
import { diffFlows, diffText, type DiffSide } from '../verify/index.js';
import { apiFlows, captureFlows, notDecodedText } from './source.js';
import { fitToWidth } from '../common/index.js';
import { terminalWidth } from './output.js';

export const DIFF_EXIT = { same: 0, regression: 1, badInput: 2 } as const;

/**
 * `tapwire diff <before> <after>`: compares two captures, or with `api` two snapshots a running
 * agent holds (before and after are then snapshot ids). Returns the exit status.
 */
export async function runDiff(before: string, after: string, o: { format: 'text' | 'json'; api?: { url: string; token?: string }; progress?: boolean }): Promise<number> {
  if (o.api) {
    const sides: DiffSide[] = [];
    for (const snapshot of [before, after]) {
      const flows = await apiFlows({ ...o.api, snapshot });
      if (!flows) return DIFF_EXIT.badInput;
      sides.push({ label: `snapshot ${snapshot}`, flows });
    }
    return report(diffFlows(sides[0]!, sides[1]!), o.format);
  }
  if (before === '-' && after === '-') {
    process.stderr.write('tapwire: diff: only one of the two captures can be standard input ("-")\n');
    return DIFF_EXIT.badInput;
  }
  // One key for both sides: a secret redacts to the same token in each, so requests still compare.
  const redactor = new Redactor({ key: loadRedactKey().key });
  const sides: DiffSide[] = [];
  for (const file of [before, after]) {
    const c = await captureFlows(file, redactor, { progress: o.progress });
    if (!c) return DIFF_EXIT.badInput;
    const label = file === '-' ? 'stdin' : file;
    // A side that decoded nothing is not a side with no traffic: say what it did not decode.
    const unseen = notDecodedText(c.summary.coverage);
    if (unseen) process.stderr.write(`tapwire: ${label}: ${unseen}\n`);
    sides.push({ label, flows: c.flows });
  }
  return report(diffFlows(sides[0]!, sides[1]!), o.format);
}

function report(d: ReturnType<typeof diffFlows>, format: 'text' | 'json'): number {
  process.stdout.write(format === 'json' ? `${JSON.stringify(d, null, 2)}\n` : fitToWidth(diffText(d), terminalWidth()));
  return d.regression ? DIFF_EXIT.regression : DIFF_EXIT.same;
}
