import type { ConnectionInfo } from '../../stream/index.js';
import { decompressMessage, GRPC_STATUS_NAMES, schemaless, type Exchange, type GrpcMessage, type Transaction } from '../../protocols/index.js';
import type { GrpcFlow, RecordMessage } from '../record.js';
import { buildHttp, httpFamily, statusProblem, unanswered, httpFailed } from './http.js';
import type { BuildOptions, PartBuilder } from './part.js';
import { streamEnd, streamEndNote } from './http2.js';
import type { RecordModule } from './module.js';

/** "grpc 5 NOT_FOUND": the one way tapwire writes a gRPC status (rows, table, MCP text). */
export function grpcStatusLabel(code: number): string {
  return `grpc ${code} ${GRPC_STATUS_NAMES[code] ?? ''}`.trim();
}

/** An HTTP exchange whose messages are decoded: the call facts come from the request, so without it they stay undecoded. */
function build(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): GrpcFlow {
  const r = buildHttp<GrpcFlow>(tx, conn, n, b);
  const t = tx as Transaction;
  if (t.grpc) {
    const req = t.request, resp = t.response;
    const path = req?.path ?? '';
    if (req?.messages) r.request!.messages = messages(b.opts, req.messages, path, 0, req.headers['grpc-encoding'], r.id);
    if (resp?.messages) r.response!.messages = messages(b.opts, resp.messages, path, 1, resp.headers['grpc-encoding'], r.id);
  }
  return r;
}

/**
 * gRPC messages: decompressed (grpc-encoding), then decoded with the --proto schema when one
 * covers the method, else schemalessly. A message neither can read is kept as base64 with the
 * reason, and counted: the flow is never dropped.
 */
function messages(opts: BuildOptions, list: GrpcMessage[], path: string, dir: 0 | 1, encoding: string | undefined, id: string): RecordMessage[] {
  return list.map((m) => {
    const out: RecordMessage = { time: m.time, size: m.size };
    if (m.compressed) out.compressed = true;
    if (m.truncated) out.truncated = true;
    if (!m.data) return out;
    let bytes = m.data;
    try {
      if (m.compressed) bytes = decompressMessage(bytes, encoding, opts.bodyLimit);
    } catch (err) {
      return undecoded(opts, out, m.data, `decompression failed: ${(err as Error).message}`, id);
    }
    if (opts.protos) {
      try {
        const json = opts.protos.decode(path, dir, bytes);
        if (json) {
          out.json = json;
          return out;
        }
      } catch (err) {
        if (!m.truncated) return undecoded(opts, out, bytes, `does not decode as its --proto type: ${(err as Error).message}`, id);
      }
    }
    const fields = schemaless(bytes);
    if (fields) out.fields = fields;
    else if (m.truncated) out.data = bytes.toString('base64');
    else return undecoded(opts, out, bytes, 'not a well-formed protobuf message', id);
    return out;
  });
}

function undecoded(opts: BuildOptions, out: RecordMessage, bytes: Buffer, error: string, id: string): RecordMessage {
  out.data = bytes.toString('base64');
  out.error = error;
  opts.violation?.('grpc.message_undecodable', `flow ${id}: message ${error}`);
  return out;
}

/** gRPC over HTTP/2: a call is its method path; grpc-status, not the HTTP status, says whether it failed. */
export const grpc: RecordModule<GrpcFlow> = {
  ...httpFamily,
  protocol: 'grpc',
  title: 'gRPC',
  column: 'grpc',
  build,
  pathParams: false,
  operation: (r) => r.request?.path,
  failed(r) {
    const s = r.response;
    if (!s) return unanswered(r);
    return s.grpcStatus !== undefined ? s.grpcStatus !== 0 : httpFailed(s);
  },
  problem(r, dst) {
    const s = r.response;
    if (!s) return undefined;
    if (s.grpcStatus !== undefined && s.grpcStatus !== 0) {
      return { key: `grpc ${dst} ${r.request?.path} ${s.grpcStatus}`, label: `grpc-status ${s.grpcStatus}${s.grpcMessage ? ` (${s.grpcMessage})` : ''}`, clientError: false };
    }
    return statusProblem(r, dst);
  },
  routine: (r) => httpFamily.routine(r) ?? (/grpc\.health\.v1/.test(r.request?.path ?? '') ? 'health-check' : undefined),
  outcome(r) {
    const s = r.response;
    if (s?.grpcStatus !== undefined) return { label: grpcStatusLabel(s.grpcStatus), error: s.grpcStatus !== 0 };
    return httpFamily.outcome(r);
  },
  rowCall: (r) => r.request?.path,
  rowStatus(r) {
    const s = r.response;
    if (s?.grpcStatus !== undefined) return grpcStatusLabel(s.grpcStatus);
    return httpFamily.rowStatus(r) ?? streamEnd(r);
  },
  table(r) {
    const t = httpFamily.table(r);
    const gs = r.response?.grpcStatus;
    if (gs !== undefined) t.notes.push(grpcStatusLabel(gs));
    t.notes.push(...streamEndNote(r));
    return t;
  },
  filterVariables: {
    grpc_service: (r) => r.grpc?.service ?? '',
    grpc_method: (r) => r.grpc?.method ?? '',
  },
};
