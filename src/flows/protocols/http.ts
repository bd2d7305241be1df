import { createHash } from 'node:crypto';
import type { ConnectionInfo } from '../../stream/index.js';
import type { Exchange, Transaction } from '../../protocols/index.js';
import type { HttpFlowRecord, RecordRequest, RecordResponse } from '../record.js';
import type { RecordModule, Routine } from './module.js';
import { round3, type PartBuilder } from './part.js';

/**
 * HTTP/1.x, and what HTTP/2 and gRPC share with it (http2.ts, grpc.ts spread `httpFamily`): the
 * halves are HTTP messages, the call is the method and path, the answer its status and body.
 */

/** The record of an HTTP-family exchange. Field order is the JSONL contract's: do not reorder. */
export function buildHttp<F extends HttpFlowRecord>(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): F {
  const t = tx as Transaction;
  const req = t.request, resp = t.response;
  const start = req ? req.start : resp!.start;
  const end = Math.max(resp ? resp.end : req!.end, start);
  const r = {
    id: `${conn.id}-${n}`,
    protocol: t.protocol,
    connectionId: conn.id,
    src: { ip: conn.client.ip, port: conn.client.port },
    dst: { ip: conn.server.ip, port: conn.server.port },
    start,
    end,
    durationMs: round3((end - start) * 1000),
  } as HttpFlowRecord & { streamId?: number; grpc?: Transaction['grpc']; error?: Transaction['error']; headersPartial?: true; upgrade?: string };
  if (t.streamId !== undefined) r.streamId = t.streamId;
  if (req) r.request = b.request(req);
  if (resp) r.response = b.response(resp);
  // The carried protocol's call facts (gRPC); its messages are decoded by its module (grpc.ts).
  if (t.grpc) r.grpc = t.grpc;
  if (t.error) r.error = t.error;
  if (t.headersPartial) r.headersPartial = true;
  if (t.incomplete) {
    r.incomplete = true;
    r.incompleteReason = t.incomplete;
  }
  if (t.upgrade) r.upgrade = t.upgrade;
  b.opts.redactor?.record(r);
  return r as F;
}

/** Content of a request or response: gRPC carries messages, HTTP a body. */
export function content(h: RecordRequest | RecordResponse): unknown {
  return h.messages ? h.messages.map((m) => m.json ?? m.fields ?? m.data ?? m.size) : undefined;
}

/** No answer: a stream reset, or a connection reset with the request pending. */
export function unanswered(r: HttpFlowRecord): boolean {
  return ('error' in r && r.error !== undefined) || r.incompleteReason === 'connection-rst';
}

/** HTTP 5xx, 429 and 408 are failures a client may retry. */
export function httpFailed(s: RecordResponse): boolean {
  return s.status !== undefined && (s.status >= 500 || s.status === 429 || s.status === 408);
}

/** The HTTP status as a problem: 5xx, and 4xx marked as the client's. */
export function statusProblem(r: HttpFlowRecord, dst: string): ReturnType<RecordModule['problem']> {
  const s = r.response?.status;
  if (s === undefined || s < 400) return undefined;
  return { key: `http ${dst} ${r.request?.path} ${s}`, label: `HTTP ${s}`, clientError: s < 500 };
}

const HEALTH = /^\/(?:health|healthz|livez|readyz|ready|ping|status|metrics)(?:[/?]|$)/i;

/**
 * The HTTP family's answers to RecordModule, shared by http, http2 and grpc; each spreads it and
 * overrides what differs.
 */
export const httpFamily = {
  halves: 'http',
  pathParams: true,
  build: buildHttp,
  operation: (r: HttpFlowRecord) => (r.request ? `${r.request.method} ${pathTemplate(r.request.path)}` : undefined),
  callKey(r: HttpFlowRecord, dst: string) {
    const q = r.request;
    if (!q) return undefined;
    const c = content(q);
    const text = c !== undefined ? JSON.stringify(c) : q.body;
    const body = text ? createHash('sha1').update(text).digest('hex').slice(0, 16) : '';
    return `${r.protocol} ${dst} ${q.method} ${q.path} ${body}`;
  },
  answer: (r: HttpFlowRecord) => {
    const q = r.response!;
    return [q.status, q.grpcStatus, q.bodySize, q.body ?? null, content(q)];
  },
  callName: (r: HttpFlowRecord, server: string) => `${r.request?.method ?? '?'} ${r.request?.path ?? '?'} on ${server}`,
  operationName: (op: string, server: string) => `${op} on ${server}`,
  failed: (r: HttpFlowRecord) => (r.response ? httpFailed(r.response) : unanswered(r)),
  problem: (r: HttpFlowRecord, dst: string) => (r.response ? statusProblem(r, dst) : undefined),
  routine: (r: HttpFlowRecord): Routine => (HEALTH.test(r.request?.path ?? '') ? 'health-check' : undefined),
  repeatDetail: () => '',
  outcome(r: HttpFlowRecord) {
    const s = r.response;
    if (!s) return { label: ('error' in r && r.error ? `${r.error.frame} ${r.error.code}` : undefined) ?? 'no-response', error: false };
    return { label: s.status === undefined ? 'unknown' : String(s.status), error: (s.status ?? 0) >= 500 };
  },
  rowCall: (r: HttpFlowRecord) => (r.request ? `${r.request.method} ${r.request.path}` : undefined),
  rowStatus: (r: HttpFlowRecord) => (r.response?.status !== undefined ? String(r.response.status) : undefined),
  table(r: HttpFlowRecord) {
    const tail = 'upgrade' in r && r.upgrade ? [`upgrade: ${r.upgrade}`] : [];
    return { method: r.request?.method ?? '-', status: r.response?.status !== undefined ? String(r.response.status) : '-', what: r.request?.path ?? '', notes: [] as string[], tail };
  },
  filterVariables: {},
} as const;

export const http: RecordModule<Extract<HttpFlowRecord, { protocol: 'http' }>> = {
  ...httpFamily,
  protocol: 'http',
  title: 'HTTP/1.x',
  column: 'http',
};

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
