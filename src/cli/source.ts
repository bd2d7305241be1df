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

/** Pages are followed up to this many flows; more is refused rather than silently cut. */
const MAX_API_FLOWS = 1_000_000;

/**
 * The flows a running agent holds: one snapshot (`/api/snapshots/:id/flows`), or a time window
 * (`/api/flows?since=&until=`), following `next` cursors page by page. Returns undefined after
 * printing why when the agent cannot be reached or answers with an error (bad input: exit 2).
 */
export async function apiFlows(src: ApiSource): Promise<FlowRecord[] | undefined> {
  let base: URL;
  try {
    base = new URL(src.url);
  } catch {
    return fail(`--api: "${src.url}" is not a URL (expected e.g. http://127.0.0.1:8899)`);
  }
  const path = src.snapshot !== undefined ? `/api/snapshots/${encodeURIComponent(src.snapshot)}/flows` : '/api/flows';
  const flows: FlowRecord[] = [];
  let cursor: string | null = null;
  do {
    const u = new URL(path, base);
    if (src.since) u.searchParams.set('since', src.since);
    if (src.until) u.searchParams.set('until', src.until);
    u.searchParams.set('limit', '1000');
    if (cursor) u.searchParams.set('cursor', cursor);
    let res: Response;
    try {
      res = await fetch(u, { headers: src.token ? { authorization: `Bearer ${src.token}` } : {} });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return fail(`--api: cannot reach the agent at ${base.origin}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const text = await res.text();
    let body: { flows?: unknown; next?: unknown; error?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      return fail(`--api: ${u.pathname} answered ${res.status} with something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
    }
    if (!res.ok) return fail(`--api: ${u.pathname} answered ${res.status}: ${typeof body.error === 'string' ? body.error : JSON.stringify(body.error ?? body)}`);
    if (!Array.isArray(body.flows)) return fail(`--api: ${u.pathname} answered without a "flows" array`);
    flows.push(...(body.flows as FlowRecord[]));
    if (flows.length > MAX_API_FLOWS) return fail(`--api: more than ${MAX_API_FLOWS} flows in that window; narrow it with --since/--until`);
    cursor = typeof body.next === 'string' && body.next !== '' ? body.next : null;
  } while (cursor);
  return flows;
}

function fail(msg: string): undefined {
  process.stderr.write(`tapwire: ${msg}\n`);
  return undefined;
}
