import { isHttpLike, isPostgres, type FlowRecord } from '../flows/record.js';
import { callName } from './calls.js';
import { evidence, type Finding } from './types.js';

/** Evidence entries listed per finding (the total is always stated in details). */
const MAX_EVIDENCE = 20;
/** 4xx responses to one endpoint at or above this count in a capture are a burst. */
export const DEFAULT_4XX_BURST = 5;

/** What went wrong on a flow, or undefined: HTTP 5xx, gRPC non-OK, SQL errors; 4xx separately. */
function problem(r: FlowRecord): { key: string; label: string; clientError: boolean } | undefined {
  if (isPostgres(r)) {
    const e = r.response?.error;
    return e ? { key: `pg ${r.dst.ip}:${r.dst.port} ${e.code}`, label: `SQLSTATE ${e.code} (${e.message})`, clientError: false } : undefined;
  }
  if (!isHttpLike(r) || !r.response) return undefined;
  const s = r.response;
  if (s.grpcStatus !== undefined && s.grpcStatus !== 0) {
    return { key: `grpc ${r.dst.ip}:${r.dst.port} ${r.request?.path} ${s.grpcStatus}`, label: `grpc-status ${s.grpcStatus}${s.grpcMessage ? ` (${s.grpcMessage})` : ''}`, clientError: false };
  }
  if (s.status !== undefined && s.status >= 500) return { key: `http ${r.dst.ip}:${r.dst.port} ${r.request?.path} ${s.status}`, label: `HTTP ${s.status}`, clientError: false };
  if (s.status !== undefined && s.status >= 400) return { key: `http ${r.dst.ip}:${r.dst.port} ${r.request?.path} ${s.status}`, label: `HTTP ${s.status}`, clientError: true };
  return undefined;
}

/**
 * `error-status`: HTTP 5xx, gRPC non-OK and SQL errors, one finding per endpoint and code, and
 * bursts of 4xx (a lone 404 is often intended). Warnings by default; a spec can raise them.
 */
export function detectErrorStatus(flows: readonly FlowRecord[], burst4xx = DEFAULT_4XX_BURST): Finding[] {
  const groups = new Map<string, { label: string; clientError: boolean; flows: FlowRecord[] }>();
  for (const r of flows) {
    const p = problem(r);
    if (!p) continue;
    (groups.get(p.key) ?? groups.set(p.key, { label: p.label, clientError: p.clientError, flows: [] }).get(p.key)!).flows.push(r);
  }
  const out: Finding[] = [];
  for (const g of groups.values()) {
    if (g.clientError && g.flows.length < burst4xx) continue;
    const first = g.flows[0]!;
    out.push({
      kind: 'error-status',
      severity: 'warning',
      summary: `${g.flows.length} × ${g.label} from ${callName(first)}`,
      evidence: g.flows.slice(0, MAX_EVIDENCE).map((r) => evidence(r, g.label)),
      details: { count: g.flows.length, status: g.label },
    });
  }
  return out;
}
