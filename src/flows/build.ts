import type { ConnectionInfo } from '../reassembly/types.js';
import type { HttpRequestHalf, HttpResponseHalf, MessageHalf, Transaction } from '../protocols/types.js';
import { preview } from './body.js';
import type { FlowRecord, RecordHalf, RecordRequest, RecordResponse } from './record.js';
import type { Redactor } from './redact.js';

export interface BuildOptions {
  bodyLimit: number;
  /** Undefined turns redaction off (--no-redact). */
  redactor?: Redactor;
  /** Keep frame numbers (capture files; a live source has none that mean anything later). */
  frames: boolean;
}

/** Turns a protocol's Transaction into a FlowRecord: ids, peers, body previews, redaction. */
export class FlowBuilder {
  private counters = new WeakMap<ConnectionInfo, number>();

  constructor(private readonly opts: BuildOptions) {}

  build(tx: Transaction, conn: ConnectionInfo): FlowRecord {
    const n = (this.counters.get(conn) ?? 0) + 1;
    this.counters.set(conn, n);
    const req = tx.request, resp = tx.response;
    const start = req ? req.start : resp!.start;
    const end = Math.max(resp ? resp.end : req!.end, start);
    const r: FlowRecord = {
      id: `${conn.id}-${n}`,
      protocol: tx.protocol,
      connectionId: conn.id,
      src: { ip: conn.client.ip, port: conn.client.port },
      dst: { ip: conn.server.ip, port: conn.server.port },
      start,
      end,
      durationMs: round3((end - start) * 1000),
    };
    if (req) r.request = this.request(req);
    if (resp) r.response = this.response(resp);
    if (tx.incomplete) {
      r.incomplete = true;
      r.incompleteReason = tx.incomplete;
    }
    if (tx.upgrade) r.upgrade = tx.upgrade;
    this.opts.redactor?.record(r);
    return r;
  }

  /** Copies the shared half fields into `out`, in the contract's field order. */
  private fill<T extends RecordHalf>(out: T, h: MessageHalf): T {
    out.start = h.start;
    out.end = h.end;
    if (this.opts.frames) out.frames = h.frames;
    out.size = h.size;
    out.headers = h.headers;
    out.bodySize = h.bodySize;
    if (h.trailers) out.trailers = h.trailers;
    if (h.body) {
      const p = preview(h.body, h.headers['content-encoding'], this.opts.bodyLimit, h.bodyTruncated === true || h.gap === true);
      if (p.body !== undefined) out.body = p.body;
      if (p.bodyEncoding) out.bodyEncoding = p.bodyEncoding;
      if (p.bodyDecodeError) out.bodyDecodeError = p.bodyDecodeError;
      if (h.bodyTruncated || p.cut) out.bodyTruncated = true;
    } else if (h.bodyTruncated) out.bodyTruncated = true;
    return out;
  }

  private request(h: HttpRequestHalf): RecordRequest {
    return this.fill({ method: h.method, path: h.path, version: h.version } as RecordRequest, h);
  }

  private response(h: HttpResponseHalf): RecordResponse {
    const out = this.fill({ status: h.status, reason: h.reason, version: h.version } as RecordResponse, h);
    if (h.interim) out.interim = this.opts.frames ? h.interim : h.interim.map(({ status, time }) => ({ status, time }));
    return out;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
