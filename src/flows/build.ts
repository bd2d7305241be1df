import type { ConnectionInfo } from '../stream/index.js';
import type { Exchange, HttpRequestHalf, HttpResponseHalf, MessageHalf } from '../protocols/index.js';
import { preview } from './body.js';
import type { FlowRecord, Protocol, RecordHalf, RecordRequest, RecordResponse } from './record.js';
import { RECORDS } from './protocols/index.js';
import { round3, type BuildOptions, type PartBuilder } from './protocols/part.js';

export type { BuildOptions } from './protocols/part.js';

/**
 * Turns a session's exchange into a FlowRecord: the protocol's record module (src/flows/protocols/)
 * builds the envelope and its part; this class lends it HTTP halves with body previews, and the
 * options.
 */
export class FlowBuilder implements PartBuilder {
  private counters = new WeakMap<ConnectionInfo, number>();

  constructor(readonly opts: BuildOptions) {}

  build(tx: Exchange, conn: ConnectionInfo): FlowRecord {
    const n = (this.counters.get(conn) ?? 0) + 1;
    this.counters.set(conn, n);
    // The protocol's record module builds its part: one property read in the registry.
    const r = (RECORDS[tx.protocol as Protocol] ?? unrecorded(tx.protocol)).build(tx, conn, n, this);
    // What the first call waited for before its first byte: the TCP handshake (and any TLS or
    // startup exchange). Only when the SYN was seen; connection-churn compares it to the call.
    if (n === 1 && conn.handshakeSeen && r.start >= conn.startTime) r.connectMs = round3((r.start - conn.startTime) * 1000);
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

  request(h: HttpRequestHalf): RecordRequest {
    const out = this.fill({ method: h.method, path: h.path, version: h.version } as RecordRequest, h);
    if (h.authority !== undefined) out.authority = h.authority;
    if (h.scheme !== undefined) out.scheme = h.scheme;
    if (h.messagesDropped) out.messagesDropped = h.messagesDropped;
    return out;
  }

  response(h: HttpResponseHalf): RecordResponse {
    const out = this.fill((h.status !== undefined ? { status: h.status, reason: h.reason, version: h.version } : { reason: h.reason, version: h.version }) as RecordResponse, h);
    if (h.interim) out.interim = this.opts.frames ? h.interim : h.interim.map(({ status, time }) => ({ status, time }));
    if (h.grpcStatus !== undefined) out.grpcStatus = h.grpcStatus;
    if (h.grpcMessage !== undefined) out.grpcMessage = h.grpcMessage;
    if (h.messagesDropped) out.messagesDropped = h.messagesDropped;
    return out;
  }
}

/**
 * A session emitted a protocol with no record module: a programming error, not wire input. The
 * dispatcher turns the throw into a decoder.internal_error violation for that connection.
 */
function unrecorded(protocol: string): never {
  throw new Error(`no record module for protocol "${protocol}" (src/flows/protocols/index.ts)`);
}
