/**
 * Narrowing FlowRecord (a union over `protocol`) for tests that know which protocols a capture
 * holds: each helper checks that knowledge and throws naming the first record that breaks it, so a
 * test reads the protocol's fields typed, without casts.
 */
import { isHttpLike, type FlowOf, type FlowRecord, type HttpFlowRecord, type Protocol } from '../../src/flows/record.js';

/** HTTP/2 and gRPC records: one HTTP/2 stream each. */
export type H2FlowRecord = FlowOf<'http2' | 'grpc'>;

function isOneOf<P extends Protocol>(r: FlowRecord, protocols: readonly P[]): r is FlowOf<P> {
  return (protocols as readonly Protocol[]).includes(r.protocol);
}

/** The records, every one of which must be of one of `protocols`. */
export function only<P extends Protocol>(records: readonly FlowRecord[], ...protocols: P[]): FlowOf<P>[] {
  return records.map((r) => {
    if (!isOneOf(r, protocols)) throw new Error(`record ${r.id} is ${r.protocol}, expected ${protocols.join(' or ')}`);
    return r;
  });
}

/** The records, every one of which must be HTTP-like (HTTP/1.x, HTTP/2 or gRPC). */
export function httpOnly(records: readonly FlowRecord[]): HttpFlowRecord[] {
  return records.map((r) => {
    if (!isHttpLike(r)) throw new Error(`record ${r.id} is ${r.protocol}, not HTTP`);
    return r;
  });
}

/** One record, which must be HTTP-like. */
export function httpRecord(r: FlowRecord): HttpFlowRecord {
  return httpOnly([r])[0]!;
}

/** The HTTP/2 stream id of an HTTP-like record; undefined for HTTP/1.x, which has none. */
export function streamIdOf(r: HttpFlowRecord): number | undefined {
  return r.protocol === 'http' ? undefined : r.streamId;
}
