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
