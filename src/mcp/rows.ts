import { z } from 'zod';
import { recordModule, type FlowRecord, type Peer } from '../flows/index.js';
import { failed } from '../verify/index.js';
import { endpoint } from '../common/index.js';

/**
 * A flow as one compact row (list_flows, analyze_capture, snapshot://): what an agent scans to
 * pick the flows worth a `get_flow`. No headers, no bodies: those come by drill-down.
 */
export const flowRowSchema = z.object({
  id: z.string(),
  start: z.string().describe('ISO 8601'),
  protocol: z.string(),
  client: z.string().describe('name, else ip:port'),
  server: z.string().describe('name, else ip:port'),
  call: z.string().optional().describe('"METHOD /path", the gRPC method, or the SQL (shortened)'),
  status: z.string().optional().describe('HTTP status, "grpc <n> <NAME>", SQL command tag or "ERROR <SQLSTATE>", or the reset'),
  durationMs: z.number(),
  failed: z.boolean().optional().describe('5xx, 429, 408, gRPC non-OK, SQL error or reset'),
  incomplete: z.string().optional().describe('why evidence is missing'),
});

export type FlowRow = z.infer<typeof flowRowSchema>;

/** Longest `call` text in a row; the flow itself has all of it. */
const CALL_CHARS = 160;

export function flowRow(r: FlowRecord): FlowRow {
  const row: FlowRow = {
    id: r.id,
    start: new Date(r.start * 1000).toISOString(),
    protocol: r.protocol,
    client: peer(r.src),
    server: peer(r.dst),
    durationMs: Math.round(r.durationMs * 100) / 100,
  };
  const call = callText(r);
  if (call) row.call = call.length > CALL_CHARS ? `${call.slice(0, CALL_CHARS - 1)}…` : call;
  const status = statusText(r);
  if (status) row.status = status;
  if (failed(r)) row.failed = true;
  if (r.incomplete) row.incomplete = r.incompleteReason ?? 'unknown';
  return row;
}

/** One line for the text copy of a page of rows: every field of the row. */
export function rowLine(w: FlowRow): string {
  return `${w.id}  ${w.start}  ${w.client} → ${w.server}  ${[w.protocol, w.call].filter(Boolean).join(' ')}  ${w.status ?? '-'}  ${w.durationMs} ms`
    + `${w.failed ? '  FAILED' : ''}${w.incomplete ? `  incomplete: ${w.incomplete}` : ''}`;
}

function peer(p: Peer): string {
  return p.name ?? endpoint(p);
}

function callText(r: FlowRecord): string | undefined {
  return recordModule(r).rowCall(r);
}

function statusText(r: FlowRecord): string | undefined {
  return recordModule(r).rowStatus(r);
}
