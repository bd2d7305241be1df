import { loadRedactKey, Redactor } from '../flows/redact.js';
import { verdictText, verify } from '../verify/verdict.js';
import { captureFlows } from './source.js';

export const VERIFY_EXIT = { pass: 0, fail: 1, badInput: 2, inconclusive: 3 } as const;

/** `tapwire verify <capture>`: built-in detectors over a capture's flows. Returns the exit status. */
export async function runVerify(file: string, o: { format: 'text' | 'json'; maxEvidence?: number }): Promise<number> {
  // Redacted like analyze: evidence shown to people carries tokens, not secrets.
  const flows = await captureFlows(file, new Redactor({ key: loadRedactKey().key }));
  if (!flows) return VERIFY_EXIT.badInput;
  const v = verify(flows, { maxEvidence: o.maxEvidence });
  process.stdout.write(o.format === 'json' ? `${JSON.stringify(v, null, 2)}\n` : verdictText(v));
  return v.verdict === 'pass' ? VERIFY_EXIT.pass : v.verdict === 'fail' ? VERIFY_EXIT.fail : VERIFY_EXIT.inconclusive;
}
