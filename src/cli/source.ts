import { AgentClient, AgentClientError } from '../client/agent.js';
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

/** Where `verify` and `diff` read flows from a running agent (the flow API of the live agent). */
export interface ApiSource {
  url: string;
  snapshot?: string;
  since?: string;
  until?: string;
  /** Bearer token: --token, else TAPWIRE_TOKEN. */
  token?: string;
}

/**
 * The flows a running agent holds: one snapshot (`/api/snapshots/:id/flows`), or a time window
 * (`/api/flows?since=&until=`), following `next` cursors page by page. Returns undefined after
 * printing why when the agent cannot be reached or answers with an error (bad input: exit 2).
 */
export async function apiFlows(src: ApiSource): Promise<FlowRecord[] | undefined> {
  try {
    const client = new AgentClient(src.url, src.token);
    return await client.allFlows({ snapshot: src.snapshot, since: src.since, until: src.until });
  } catch (e) {
    if (!(e instanceof AgentClientError)) throw e;
    process.stderr.write(`tapwire: ${e.message.startsWith('--api') ? '' : '--api: '}${e.message}\n`);
    return undefined;
  }
}
