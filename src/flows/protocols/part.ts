import type { ConnectionInfo } from '../../stream/index.js';
import type { HttpRequestHalf, HttpResponseHalf, ProtoSchemas } from '../../protocols/index.js';
import type { RecordRequest, RecordResponse } from '../record.js';
import type { Redactor } from '../redact.js';

export interface BuildOptions {
  bodyLimit: number;
  /** Undefined turns redaction off (--no-redact). */
  redactor?: Redactor;
  /** Keep frame numbers (capture files; a live source has none that mean anything later). */
  frames: boolean;
  /** Schemas from --proto, for gRPC messages. */
  protos?: ProtoSchemas;
  /** Counts a message that could not be decoded. */
  violation?: (code: string, reason: string) => void;
  /**
   * --redact-params: SQL bind parameters (PostgreSQL and MySQL executes) become this redactor's
   * keyed-hash tokens. Values a client interpolated into COM_QUERY text stay in `query`.
   */
  redactParams?: Redactor;
}

/** What FlowBuilder lends a record module while it builds a part: options and the shared converters. */
export interface PartBuilder {
  readonly opts: BuildOptions;
  request(h: HttpRequestHalf): RecordRequest;
  response(h: HttpResponseHalf): RecordResponse;
}

/** end − start in milliseconds, to the microsecond. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Where a half lies in the capture: first and last packet times. */
interface Span {
  start: number;
  end: number;
}

/**
 * The envelope of a record whose halves are a request and a response span (a statement, a command),
 * either of which may be missing: from the first byte seen to the last. Field order is the contract's.
 */
export function spanEnvelope<P extends string>(protocol: P, conn: ConnectionInfo, n: number, req: Span | undefined, resp: Span | undefined) {
  const start = req?.start ?? resp?.start ?? 0;
  const end = Math.max(resp?.end ?? req?.end ?? start, start);
  return {
    id: `${conn.id}-${n}`, protocol, connectionId: conn.id,
    src: conn.client, dst: conn.server,
    start, end, durationMs: round3((end - start) * 1000),
  };
}

/** Marks a record whose evidence is missing, with the session's reason (the record's last fields). */
export function markIncomplete(r: { incomplete?: boolean; incompleteReason?: string }, reason: string | undefined): void {
  if (!reason) return;
  r.incomplete = true;
  r.incompleteReason = reason;
}

/** `fn` with its answers remembered for the last `max` distinct inputs (emptied when full): SQL fingerprints by text. */
export function boundedMemo(fn: (s: string) => string, max: number): (s: string) => string {
  const seen = new Map<string, string>();
  return (s) => {
    let v = seen.get(s);
    if (v === undefined) {
      v = fn(s);
      if (seen.size >= max) seen.clear();
      seen.set(s, v);
    }
    return v;
  };
}
