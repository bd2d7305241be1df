/**
 * The variables of the filter language: their types (for the checker) and how each is read from
 * a flow record (for the evaluator). README "Filter language" lists them.
 *
 * Record numbers that are whole by nature (status, port, sizes, counts) become CEL ints, so they
 * compare with int literals and do int arithmetic (`response.status / 100 == 5`); times and
 * milliseconds stay doubles. CEL compares ints with doubles by value, so `duration_ms > 200`,
 * `duration_ms > 200.5` and `response.status >= 500` all work. An absent half, peer field or
 * HTTP/2 error is left out (or `null` for a whole variable), so `has(response.status)` is false
 * and a comparison on it is an evaluation error, which the filter counts as no match.
 */

import { PROTOCOL_NAMES, RECORDS, type FlowRecord } from '../flows/index.js';
import { BOOL, type CelT, DOUBLE, H2_ERROR, PEER, RECORD, REQUEST, RESPONSE, STRING, TIMESTAMP } from './types.js';

export interface Variable {
  type: CelT;
  /**
   * The variable's value for one record. `only`, when given, names the only fields the
   * expression reads from it (`response.status` reads `status`), so the rest need not be converted.
   */
  read(r: FlowRecord, only?: ReadonlySet<string>): unknown;
}

const protocolIs = (p: string): Variable => ({ type: BOOL, read: (r) => r.protocol === p });
const plain = (type: CelT, read: (r: FlowRecord) => unknown): Variable => ({ type, read });
/** A record object (peer, half, error…) as a CEL map, or null when the record has none. */
const object = (type: CelT & { k: 'struct' }, get: (r: FlowRecord) => object | undefined): Variable => ({
  type,
  read: (r, only) => {
    const v = get(r);
    return v === undefined ? null : fields(v as Record<string, unknown>, type.fields, only);
  },
});

export const VARIABLES: Record<string, Variable> = {
  // Each protocol's name is a bool, and its record module may add variables of its own (grpc_service).
  ...Object.fromEntries(PROTOCOL_NAMES.map((p) => [p, protocolIs(p)])),
  ...Object.fromEntries(PROTOCOL_NAMES.flatMap((p) => Object.entries(RECORDS[p].filterVariables as Record<string, (r: FlowRecord) => string>)
    .map(([name, read]): [string, Variable] => [name, plain(STRING, (r) => (r.protocol === p ? read(r) : ''))]))),
  protocol: plain(STRING, (r) => r.protocol),
  id: plain(STRING, (r) => r.id),
  connectionId: plain(STRING, (r) => r.connectionId),
  src: object(PEER, (r) => r.src),
  dst: object(PEER, (r) => r.dst),
  request: object(REQUEST, (r) => r.request),
  response: object(RESPONSE, (r) => r.response),
  duration_ms: plain(DOUBLE, (r) => r.durationMs),
  start: plain(TIMESTAMP, (r) => timestamp(r.start)),
  end: plain(TIMESTAMP, (r) => timestamp(r.end)),
  incomplete: plain(BOOL, (r) => r.incomplete === true),
  error: object(H2_ERROR, (r) => ('error' in r ? r.error : undefined)),
  record: object(RECORD, (r) => r),
};

/** A google.protobuf.Timestamp message, as @bufbuild/cel takes it, from epoch seconds (to the microsecond). */
function timestamp(epochSeconds: number): { $typeName: string; seconds: bigint; nanos: number } {
  const us = Math.round(epochSeconds * 1e6);
  const s = Math.floor(us / 1e6);
  return { $typeName: 'google.protobuf.Timestamp', seconds: BigInt(s), nanos: (us - s * 1e6) * 1000 };
}

function fields(o: Record<string, unknown>, types: Record<string, CelT>, only?: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of only ?? Object.keys(o)) {
    const v = convert(o[k], types[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A record value as a CEL input of type t; undefined stays undefined (the key is left out). */
function convert(v: unknown, t: CelT | undefined): unknown {
  if (v === undefined || v === null || t === undefined) return dyn(v);
  switch (t.k) {
    case 'int': return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
    case 'list': return Array.isArray(v) ? v.map((e) => convert(e, t.elem) ?? null) : dyn(v);
    case 'map': return isObject(v) ? fields(v, {}) : dyn(v);
    case 'struct': return isObject(v) ? fields(v, t.fields) : dyn(v);
    case 'timestamp': return typeof v === 'number' ? timestamp(v) : v;
    case 'dyn': return dyn(v);
    default: return v;
  }
}

/**
 * A value of no declared type (decoded JSON, protobuf fields, PostgreSQL values): numbers stay
 * doubles, as CEL reads JSON; objects are copied into plain ones without undefined members.
 */
function dyn(v: unknown): unknown {
  if (v === undefined || v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((e) => dyn(e) ?? null);
  return fields(v as Record<string, unknown>, {});
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
