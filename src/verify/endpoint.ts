import { recordModule, type FlowRecord } from '../flows/index.js';
import { endpoint } from '../common/index.js';

export { pathTemplate } from '../flows/index.js';

/**
 * What a call is, without its parameters: "POST /payments", "GET /orders/{id}", the gRPC method
 * path, or the SQL fingerprint. Undefined when the request was not seen.
 */
export function operation(r: FlowRecord): string | undefined {
  return recordModule(r).operation(r);
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
