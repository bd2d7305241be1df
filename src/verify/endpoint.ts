import { isHttpLike, isPostgres, type FlowRecord } from '../flows/record.js';
import { endpoint } from '../common/address.js';

/**
 * A path with its variable segments replaced: numbers, UUIDs, long hex ids and redaction tokens
 * become "{id}", and the query string is dropped. `/orders/42?x=1` and `/orders/43` are one
 * endpoint, `/orders/{id}`: the unit that diffs, N+1 detection and latency distributions compare.
 */
export function pathTemplate(path: string): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return p.split('/').map((seg) =>
    /^\d+$/.test(seg) || /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(seg) || /^[0-9a-f]{16,}$/i.test(seg) || /^\[redacted:[0-9a-f]+\]$/.test(seg)
      ? '{id}' : seg).join('/');
}

/**
 * What a call is, without its parameters: "POST /payments", "GET /orders/{id}", the gRPC method
 * path, or the SQL fingerprint. Undefined when the request was not seen.
 */
export function operation(r: FlowRecord): string | undefined {
  if (isPostgres(r)) return r.request?.fingerprint;
  if (isHttpLike(r) && r.request) return r.protocol === 'grpc' ? r.request.path : `${r.request.method} ${pathTemplate(r.request.path)}`;
  return undefined;
}

/** The endpoint: protocol, server address and operation. */
export function endpointKey(r: FlowRecord, server = endpoint(r.dst)): string | undefined {
  const op = operation(r);
  return op === undefined ? undefined : `${r.protocol} ${server} ${op}`;
}

/**
 * A path glob as specs write them: `*` is one path segment (or part of one), `**` any number of
 * segments. Matched against the path without its query string.
 */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split(/(\*\*|\*)/).map((part) =>
    part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('');
  return new RegExp(`^${body}$`);
}
