import { GRPC_STATUS_NAMES } from '../../protocols/grpc/framing.js';
import type { GrpcFlow } from '../record.js';
import { httpFamily, statusProblem, unanswered, httpFailed } from './http.js';
import { streamEnd, streamEndNote } from './http2.js';
import type { RecordModule } from './module.js';

/** "grpc 5 NOT_FOUND": the one way tapwire writes a gRPC status (rows, table, MCP text). */
export function grpcStatusLabel(code: number): string {
  return `grpc ${code} ${GRPC_STATUS_NAMES[code] ?? ''}`.trim();
}

/** gRPC over HTTP/2: a call is its method path; grpc-status, not the HTTP status, says whether it failed. */
export const grpc: RecordModule<GrpcFlow> = {
  ...httpFamily,
  protocol: 'grpc',
  title: 'gRPC',
  column: 'grpc',
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
