import { SingleBar } from 'cli-progress';
import { AgentClientError, MAX_CLIENT_FLOWS } from '../client/index.js';
import { CaptureFormatError, captureSize } from '../capture/index.js';
import { notDecodedParts, plural } from '../common/index.js';
import type { Enricher } from '../enrich/index.js';
import type { FlowRecord, Redactor } from '../flows/index.js';
import { decodeCapture, type DecodeCoverage, type DecodedCapture } from '../pipeline/index.js';
import { collectFlows, RemoteSource, SourceError } from '../service/index.js';

/** Below this size a progress bar would only flicker. */
export const PROGRESS_MIN_BYTES = 16 << 20;

/**
 * The progress bar of reading a capture, on stderr: shown on a terminal (or when `enabled` is
 * true) for files of PROGRESS_MIN_BYTES and more, never for stdin. `analyze`, `verify` and `diff`
 * all show this one.
 */
export class CaptureProgress {
  private readonly bar?: SingleBar;
  private last = 0;

  constructor(file: string, enabled: boolean | undefined = process.stderr.isTTY) {
    const size = captureSize(file);
    if (!enabled || size === undefined || size < PROGRESS_MIN_BYTES) return;
    this.bar = new SingleBar({ format: 'tapwire {bar} {percentage}% | {value}/{total} MB | {flows}', stream: process.stderr, hideCursor: true, clearOnComplete: true });
    this.bar.start(Math.ceil(size / 1e6), 0, { flows: plural(0, 'flow') });
  }

  /** Bytes of the file read so far, and flows decoded; redrawn at most every 100 ms. */
  update(bytesRead: number, flows: number): void {
    const now = Date.now();
    if (!this.bar || now - this.last <= 100) return;
    this.last = now;
    this.bar.update(Math.floor(bytesRead / 1e6), { flows: plural(flows, 'flow') });
  }

  stop(): void {
    this.bar?.stop();
  }
}

/**
 * The flows of a capture file ("-" for stdin), redacted, in the order they were decoded, with its summary (the
 * decode coverage included: connections and UDP flows seen but not decoded). A file that is not a
 * capture, or cannot be read, prints one line naming it and gives undefined: the caller exits 2.
 */
export async function captureFlows(file: string, redactor: Redactor, o: { progress?: boolean; enricher?: Enricher } = {}): Promise<DecodedCapture | undefined> {
  const bar = new CaptureProgress(file, o.progress ?? process.stderr.isTTY);
  try {
    return await decodeCapture(file, { redactor, enricher: o.enricher, onProgress: (n, flows) => bar.update(n, flows) });
  } catch (e) {
    if (e instanceof CaptureFormatError) {
      process.stderr.write(`tapwire: ${e.message}\n`);
      return undefined;
    }
    throw e;
  } finally {
    bar.stop();
  }
}

/**
 * "3 connections not decoded (tls: 1, unknown: 2)", and UDP flows likewise; '' when nothing went
 * undecoded. The words tapwire uses wherever it says what it did not decode.
 */
export function notDecodedText(c: DecodeCoverage): string {
  return notDecodedParts(c, ': ').join(', ');
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
export async function apiFlows(src: ApiSource, onPartial?: (missing: { agent: string; error: string }[]) => void): Promise<FlowRecord[] | undefined> {
  try {
    const remote = RemoteSource.open(src.url, src.token);
    // A hub's pages name the agents it could not reach (issue 16): told to the caller, page by page.
    const source = onPartial ? { query: async (q: Parameters<RemoteSource['query']>[0]) => {
      const p = await remote.query(q);
      if (p.partial) onPartial(p.partial.missing);
      return p;
    } } : remote;
    return await collectFlows(source, { snapshot: src.snapshot, since: src.since, until: src.until }, MAX_CLIENT_FLOWS,
      (max) => new AgentClientError(`more than ${max} flows in that window; narrow it with since/until`));
  } catch (err) {
    // The agent refused the query: said as it answered, with its URL and path.
    const e = err instanceof SourceError && err.cause instanceof AgentClientError ? err.cause : err;
    if (!(e instanceof AgentClientError)) throw e;
    process.stderr.write(`tapwire: ${e.message.startsWith('--api') ? '' : '--api: '}${e.message}\n`);
    return undefined;
  }
}
