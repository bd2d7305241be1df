import type { ConnectionInfo } from '../reassembly/types.js';
import type { GrpcMessage, HttpRequestHalf, HttpResponseHalf, MessageHalf, PgTransaction, Transaction } from '../protocols/types.js';
import { decompressMessage, schemaless, type ProtoSchemas } from '../protocols/grpc/protobuf.js';
import { preview } from './body.js';
import type { FlowRecord, PgRecordRequest, PgRecordResponse, RecordHalf, RecordMessage, RecordRequest, RecordResponse } from './record.js';
import { fingerprint } from '../protocols/postgres/fingerprint.js';
import type { Redactor } from './redact.js';

export interface BuildOptions {
  bodyLimit: number;
  /** Undefined turns redaction off (--no-redact). */
  redactor?: Redactor;
  /** Keep frame numbers (capture files; a live source has none that mean anything later). */
  frames: boolean;
  /** Schemas from --proto, for gRPC messages. */
  protos?: ProtoSchemas;
  /** Counts a message that could not be decoded. */
  violation?: (code: string, reason: string) => void;
  /** --redact-params: PostgreSQL bind parameters become this redactor's keyed-hash tokens. */
  redactParams?: Redactor;
}

/** Turns a protocol's Transaction into a FlowRecord: ids, peers, body previews, redaction. */
export class FlowBuilder {
  private counters = new WeakMap<ConnectionInfo, number>();

  constructor(private readonly opts: BuildOptions) {}

  build(tx: Transaction, conn: ConnectionInfo): FlowRecord {
    const n = (this.counters.get(conn) ?? 0) + 1;
    this.counters.set(conn, n);
    const r = tx.postgres ? this.postgres(tx, tx.postgres, conn, n) : this.http(tx, conn, n);
    // What the first call waited for before its first byte: the TCP handshake (and any TLS or
    // startup exchange). Only when the SYN was seen; connection-churn compares it to the call.
    if (n === 1 && conn.handshakeSeen && r.start >= conn.startTime) r.connectMs = round3((r.start - conn.startTime) * 1000);
    return r;
  }

  private http(tx: Transaction, conn: ConnectionInfo, n: number): FlowRecord {
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
    if (tx.streamId !== undefined) r.streamId = tx.streamId;
    if (req) r.request = this.request(req);
    if (resp) r.response = this.response(resp);
    if (tx.grpc) {
      r.grpc = tx.grpc;
      const path = req?.path ?? '';
      if (req?.messages) (r.request as RecordRequest).messages = this.messages(req.messages, path, 0, req.headers['grpc-encoding'], r.id);
      if (resp?.messages) (r.response as RecordResponse).messages = this.messages(resp.messages, path, 1, resp.headers['grpc-encoding'], r.id);
    }
    if (tx.error) r.error = tx.error;
    if (tx.headersPartial) r.headersPartial = true;
    if (tx.incomplete) {
      r.incomplete = true;
      r.incompleteReason = tx.incomplete;
    }
    if (tx.upgrade) r.upgrade = tx.upgrade;
    this.opts.redactor?.record(r);
    return r;
  }

  /** A PostgreSQL statement: same envelope, its own request/response shape, and session facts. */
  private postgres(tx: Transaction, pg: PgTransaction, conn: ConnectionInfo, n: number): FlowRecord {
    const req = pg.request, resp = pg.response;
    const start = req?.start ?? resp?.start ?? 0;
    const end = Math.max(resp?.end ?? req?.end ?? start, start);
    const r: FlowRecord = {
      id: `${conn.id}-${n}`, protocol: 'postgres', connectionId: conn.id,
      src: conn.client, dst: conn.server,
      start, end, durationMs: round3((end - start) * 1000),
    };
    if (req) {
      const out = { start: req.start, end: req.end } as PgRecordRequest;
      if (this.opts.frames) out.frames = req.frames;
      out.size = req.size;
      out.message = req.message;
      if (req.query !== undefined) {
        out.query = req.query;
        out.fingerprint = this.fingerprintOf(req.query);
      }
      if (req.statement !== undefined) out.statement = req.statement;
      if (req.portal) out.portal = req.portal;
      const pr = this.opts.redactParams;
      if (req.params) out.params = pr ? req.params.map((v) => (v === null ? null : pr.token(typeof v === 'string' ? v : JSON.stringify(v)))) : req.params;
      if (req.pid !== undefined) out.pid = req.pid;
      r.request = out;
    }
    if (resp) {
      const out: PgRecordResponse = { start: resp.start, end: resp.end, size: resp.size };
      if (this.opts.frames) out.frames = resp.frames;
      if (resp.command !== undefined) out.command = resp.command;
      if (resp.rows !== undefined) out.rows = resp.rows;
      if (resp.columns) out.columns = resp.columns;
      if (resp.preview) out.preview = resp.preview;
      if (resp.error) out.error = resp.error;
      if (resp.notices) out.notices = resp.notices;
      if (resp.copy) out.copy = resp.copy;
      if (resp.suspended) out.suspended = true;
      if (resp.empty) out.empty = true;
      r.response = out;
    }
    r.postgres = pg.notification ? { ...pg.session, notification: pg.notification } : pg.session;
    if (tx.incomplete) {
      r.incomplete = true;
      r.incompleteReason = tx.incomplete;
    }
    return r;
  }

  /** Fingerprints by SQL text: a service sends the same few statements again and again. */
  private readonly fingerprints = new Map<string, string>();

  private fingerprintOf(sql: string): string {
    let f = this.fingerprints.get(sql);
    if (f === undefined) {
      f = fingerprint(sql);
      if (this.fingerprints.size >= 10_000) this.fingerprints.clear();
      this.fingerprints.set(sql, f);
    }
    return f;
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
    const out = this.fill({ method: h.method, path: h.path, version: h.version } as RecordRequest, h);
    if (h.authority !== undefined) out.authority = h.authority;
    if (h.scheme !== undefined) out.scheme = h.scheme;
    if (h.messagesDropped) out.messagesDropped = h.messagesDropped;
    return out;
  }

  private response(h: HttpResponseHalf): RecordResponse {
    const out = this.fill((h.status !== undefined ? { status: h.status, reason: h.reason, version: h.version } : { reason: h.reason, version: h.version }) as RecordResponse, h);
    if (h.interim) out.interim = this.opts.frames ? h.interim : h.interim.map(({ status, time }) => ({ status, time }));
    if (h.grpcStatus !== undefined) out.grpcStatus = h.grpcStatus;
    if (h.grpcMessage !== undefined) out.grpcMessage = h.grpcMessage;
    if (h.messagesDropped) out.messagesDropped = h.messagesDropped;
    return out;
  }

  /**
   * gRPC messages: decompressed (grpc-encoding), then decoded with the --proto schema when one
   * covers the method, else schemalessly. A message neither can read is kept as base64 with the
   * reason, and counted: the flow is never dropped.
   */
  private messages(list: GrpcMessage[], path: string, dir: 0 | 1, encoding: string | undefined, id: string): RecordMessage[] {
    return list.map((m) => {
      const out: RecordMessage = { time: m.time, size: m.size };
      if (m.compressed) out.compressed = true;
      if (m.truncated) out.truncated = true;
      if (!m.data) return out;
      let bytes = m.data;
      try {
        if (m.compressed) bytes = decompressMessage(bytes, encoding, this.opts.bodyLimit);
      } catch (err) {
        return this.undecoded(out, m.data, `decompression failed: ${(err as Error).message}`, id);
      }
      if (this.opts.protos) {
        try {
          const json = this.opts.protos.decode(path, dir, bytes);
          if (json) {
            out.json = json;
            return out;
          }
        } catch (err) {
          if (!m.truncated) return this.undecoded(out, bytes, `does not decode as its --proto type: ${(err as Error).message}`, id);
        }
      }
      const fields = schemaless(bytes);
      if (fields) out.fields = fields;
      else if (m.truncated) out.data = bytes.toString('base64');
      else return this.undecoded(out, bytes, 'not a well-formed protobuf message', id);
      return out;
    });
  }

  private undecoded(out: RecordMessage, bytes: Buffer, error: string, id: string): RecordMessage {
    out.data = bytes.toString('base64');
    out.error = error;
    this.opts.violation?.('grpc.message_undecodable', `flow ${id}: message ${error}`);
    return out;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
