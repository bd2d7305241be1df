import type { CarriedProtocol } from '../types.js';
import { GrpcMessageReader, parseGrpcTimeout, splitGrpcPath } from './framing.js';

/** gRPC's status code for a call whose deadline passed (grpc/doc/statuscodes.md). */
const DEADLINE_EXCEEDED = 4;

/**
 * gRPC as HTTP/2 carries it (grpc/doc/PROTOCOL-HTTP2.md): found by name through the registry
 * (registry.ts CARRIED), so http2/ never imports this folder.
 */
export const grpc: CarriedProtocol = {
  name: 'grpc',
  carries: (contentType) => contentType !== undefined && /^application\/grpc(?:$|[+;])/i.test(contentType),
  reader: (keep, max) => new GrpcMessageReader(keep, max),
  call(path, request, response, ended) {
    const parts = splitGrpcPath(path);
    const call: ReturnType<CarriedProtocol['call']> = { service: parts?.service ?? '', method: parts?.method ?? '' };
    const enc = request['grpc-encoding'] ?? response?.['grpc-encoding'];
    if (enc) call.encoding = enc;
    const timeoutMs = parseGrpcTimeout(request['grpc-timeout']);
    if (timeoutMs !== undefined) {
      call.timeoutMs = timeoutMs;
      call.deadlineExceeded = ended.status === DEADLINE_EXCEEDED || (ended.reset && ended.tookMs >= timeoutMs);
    }
    return call;
  },
  status(headers, trailers) {
    // grpc-status is a trailer, or a header of a Trailers-Only response (PROTOCOL-HTTP2.md).
    const out: { status?: number; message?: string } = {};
    const st = trailers?.['grpc-status'] ?? headers['grpc-status'];
    if (st !== undefined && /^\d+$/.test(st)) out.status = Number(st);
    const msg = trailers?.['grpc-message'] ?? headers['grpc-message'];
    if (msg !== undefined) out.message = percentDecode(msg);
    return out;
  },
};

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md). */
function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
