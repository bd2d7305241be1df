import { CaptureFormatError } from '../capture/types.js';
import type { FlowRecord } from '../flows/record.js';
import { loadRedactKey, Redactor } from '../flows/redact.js';
import { analyzeFile } from '../pipeline/analyze.js';
import { verdictText, verify } from '../verify/verdict.js';

export const VERIFY_EXIT = { pass: 0, fail: 1, badInput: 2, inconclusive: 3 } as const;

/** `tapwire verify <capture>`: built-in detectors over a capture's flows. Returns the exit status. */
export async function runVerify(file: string, o: { format: 'text' | 'json' }): Promise<number> {
  const flows: FlowRecord[] = [];
  try {
    // Redacted like analyze: evidence shown to people carries tokens, not secrets.
    await analyzeFile(file, { redactor: new Redactor({ key: loadRedactKey().key }), onRecord: (r) => flows.push(r) });
  } catch (e) {
    if (e instanceof CaptureFormatError) {
      process.stderr.write(`tapwire: ${e.message}\n`);
      return VERIFY_EXIT.badInput;
    }
    throw e;
  }
  const v = verify(flows);
  process.stdout.write(o.format === 'json' ? `${JSON.stringify(v, null, 2)}\n` : verdictText(v));
  return v.verdict === 'pass' ? VERIFY_EXIT.pass : v.verdict === 'fail' ? VERIFY_EXIT.fail : VERIFY_EXIT.inconclusive;
}
