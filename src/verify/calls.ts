import { createHash } from 'node:crypto';
import { isHttpLike, isPostgres, type FlowRecord } from '../flows/record.js';
import type { ServiceNames } from './services.js';
import { endpoint } from '../common/address.js';

/**
 * What makes two calls "the same call": for HTTP and gRPC the destination, method, path and a hash
 * of the request body; for PostgreSQL the destination, query fingerprint and parameters. Retries and
 * redundant calls are both found by grouping on this key.
 */
export function callKey(r: FlowRecord): string | undefined {
  const dst = endpoint(r.dst);
  if (isPostgres(r)) {
    const q = r.request;
    if (!q?.fingerprint) return undefined;
    return `pg ${dst} ${q.fingerprint} ${JSON.stringify(q.params ?? [])}`;
  }
  if (isHttpLike(r)) {
    const q = r.request;
    if (!q) return undefined;
    // gRPC requests carry their content as messages, HTTP as a body.
    const content = q.messages ? JSON.stringify(q.messages.map((m) => m.json ?? m.fields ?? m.data ?? m.size)) : q.body;
    const body = content ? createHash('sha1').update(content).digest('hex').slice(0, 16) : '';
    return `${r.protocol} ${dst} ${q.method} ${q.path} ${body}`;
  }
  return undefined;
}

/**
 * What a call got back, as a hash: status and body for HTTP and gRPC, the command tag, rows and
 * error for PostgreSQL. Identical answers to identical calls mean the first could have been reused.
 */
export function answerKey(r: FlowRecord): string | undefined {
  const s = r.response;
  if (!s) return undefined;
  const h = createHash('sha1');
  if (isPostgres(r)) {
    const p = r.response!;
    h.update(JSON.stringify([p.command, p.rows, p.preview, p.error?.code]));
  } else if (isHttpLike(r)) {
    const q = r.response!;
    h.update(JSON.stringify([q.status, q.grpcStatus, q.bodySize, q.body ?? null, q.messages?.map((m) => m.json ?? m.fields ?? m.data ?? m.size)]));
  }
  return h.digest('hex').slice(0, 16);
}

/** A human name for the call in summaries: the operation and the service it went to. */
export function callName(r: FlowRecord, names?: ServiceNames): string {
  const server = names ? names.name(r.dst) : endpoint(r.dst);
  if (isPostgres(r)) return `postgres ${r.request?.query ?? '?'}${names && server !== endpoint(r.dst) ? ` on ${server}` : ''}`;
  if (isHttpLike(r)) return `${r.request?.method ?? '?'} ${r.request?.path ?? '?'} on ${server}`;
  return r.protocol;
}

/** HTTP 5xx, gRPC non-OK, SQL errors, and no answer at all: a failure a client may retry. */
export function failed(r: FlowRecord): boolean {
  if (isPostgres(r)) return r.response?.error !== undefined;
  if (isHttpLike(r)) {
    const s = r.response;
    // No answer: a stream reset, or a connection reset with the request pending.
    if (!s) return r.error !== undefined || r.incompleteReason === 'connection-rst';
    if (s.grpcStatus !== undefined) return s.grpcStatus !== 0;
    return s.status !== undefined && (s.status >= 500 || s.status === 429 || s.status === 408);
  }
  return false;
}

/** Statements that are not work: transaction control and session settings (issue 5, "Not redundant"). */
export function isTransactionControl(r: FlowRecord): boolean {
  if (!isPostgres(r)) return false;
  return /^(begin|start transaction|commit|end|rollback|abort|set|reset|savepoint|release|discard|show)\b/.test(r.request?.fingerprint ?? '');
}

/** Health checks are expected to repeat. */
export function isHealthCheck(r: FlowRecord): boolean {
  if (!isHttpLike(r)) return false;
  return /^\/(?:health|healthz|livez|readyz|ready|ping|status|metrics)(?:[/?]|$)/i.test(r.request?.path ?? '') || /grpc\.health\.v1/.test(r.request?.path ?? '');
}
