import { CaptureFormatError } from '../capture/types.js';
import type { FlowRecord } from '../flows/record.js';
import type { Redactor } from '../flows/redact.js';
import { analyzeFile } from '../pipeline/analyze.js';

/**
 * The flows of a capture file ("-" for stdin), redacted. A file that is not a capture, or cannot
 * be read, prints one line naming it and gives undefined: the caller exits 2 (bad input).
 */
export async function captureFlows(file: string, redactor: Redactor): Promise<FlowRecord[] | undefined> {
  const flows: FlowRecord[] = [];
  try {
    await analyzeFile(file, { redactor, onRecord: (r) => flows.push(r) });
  } catch (e) {
    if (e instanceof CaptureFormatError) {
      process.stderr.write(`tapwire: ${e.message}\n`);
      return undefined;
    }
    throw e;
  }
  return flows;
}
