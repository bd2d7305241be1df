import type { CloseReason, ConnectionInfo, Dir, StreamMeta } from '../reassembly/types.js';

/**
 * The one interface every protocol implements (see STYLE.md): a probe that looks at the first
 * bytes of a direction, and a per-connection session fed in-order bytes, gaps and the end.
 */

/**
 * - match: this protocol, directions as given;
 * - reverse: this protocol, but the bytes show client and server are the other way round;
 * - no: not this protocol (at this position);
 * - more: cannot tell yet, give me more bytes of this direction.
 */
export type ProbeResult = 'match' | 'reverse' | 'no' | 'more';

/** One message half as a protocol decoded it. Times are capture times (epoch seconds). */
export interface MessageHalf {
  /** Capture time of the packet carrying the first byte, and of the one carrying the last. */
  start: number;
  end: number;
  /** Frame numbers of those two packets. */
  frames: [number, number];
  /** Bytes of this message on the wire (start line, headers, framing and body). */
  size: number;
  headers: Record<string, string>;
  trailers?: Record<string, string>;
  /** Body bytes after transfer decoding (de-chunked), before content decoding. */
  bodySize: number;
  /** The first bodyLimit bytes of the body, copied. Turned into a preview by flows/. */
  body?: Buffer;
  /** Set when the body was longer than the capture limit. */
  bodyTruncated?: boolean;
  /** Set when part of this message was lost in a capture gap. */
  gap?: boolean;
}

/** One length-prefixed gRPC message (gRPC over HTTP/2, "Length-Prefixed-Message"). */
export interface GrpcMessage {
  /** Capture time of the packet that completed the message. */
  time: number;
  /** Message length as framed (compressed length when compressed). */
  size: number;
  compressed: boolean;
  /** The first bodyLimit bytes of the message, copied; decoded by flows/. */
  data?: Buffer;
  /** The message was longer than what was kept, or bytes of it were lost in a gap. */
  truncated?: boolean;
}

export interface HttpRequestHalf extends MessageHalf {
  method: string;
  /** The request target as sent, with its query string. */
  path: string;
  version: string;
  /** HTTP/2 :authority and :scheme. */
  authority?: string;
  scheme?: string;
  /** gRPC request messages, in order (up to the configured count). */
  messages?: GrpcMessage[];
  /** Messages beyond the kept count. */
  messagesDropped?: number;
}

export interface HttpResponseHalf extends MessageHalf {
  /** Absent only when the response's header block was never seen (HTTP/2 caught mid-connection). */
  status?: number;
  reason: string;
  version: string;
  /** 1xx interim responses (100 Continue, 103 Early Hints) that came before this one. */
  interim?: { status: number; time: number; frame: number }[];
  /** gRPC: grpc-status (from trailers, or from the headers of a Trailers-Only response). */
  grpcStatus?: number;
  grpcMessage?: string;
  messages?: GrpcMessage[];
  messagesDropped?: number;
}

/** An HTTP/2 stream or connection error that ended the exchange. */
export interface StreamError {
  /** RFC 9113 §7 name: CANCEL, REFUSED_STREAM, PROTOCOL_ERROR … */
  code: string;
  frame: 'RST_STREAM' | 'GOAWAY';
  by: 'client' | 'server';
}

/** A request/response pair (either half may be missing) as a protocol session emits it. */
export interface Transaction {
  protocol: string;
  request?: HttpRequestHalf;
  response?: HttpResponseHalf;
  /** Why the evidence is not whole, as a stable code; absent when complete. */
  incomplete?: string;
  /** Protocol the connection switched to after this exchange (websocket, h2c, tunnel). */
  upgrade?: string;
  /** HTTP/2 stream id. */
  streamId?: number;
  error?: StreamError;
  /** gRPC call facts beyond the halves. */
  grpc?: { service: string; method: string; encoding?: string; timeoutMs?: number; deadlineExceeded?: boolean };
  /** Some header fields could not be decoded (HPACK table unknown): they are omitted, never guessed. */
  headersPartial?: boolean;
  /** PostgreSQL: the statement, its result and the session (protocol "postgres"; request/response unset). */
  postgres?: PgTransaction;
}

export interface AnalyzerOptions {
  /** Body bytes kept per message half (and per gRPC message). */
  bodyLimit: number;
  /** gRPC messages kept per direction of a call; further ones are counted. */
  maxMessages?: number;
  /** PostgreSQL rows kept in a result preview. */
  previewRows?: number;
}

export interface SessionContext {
  readonly conn: ConnectionInfo;
  readonly options: AnalyzerOptions;
  /** Begin by looking for a message start in both directions (bytes before the match were not messages). */
  readonly resync?: boolean;
  emit(tx: Transaction): void;
  /** Counts malformed wire input; `offset` is the stream offset in that direction. */
  violation(code: string, reason: string, offset?: number): void;
  /**
   * Hands the rest of the connection to another protocol (an HTTP/1.1 Upgrade). Returns the new
   * session, which the caller feeds any bytes it already holds, or undefined when tapwire has no
   * analyzer for that protocol.
   */
  handover(protocol: string): ProtocolSession | undefined;
}

/** The HTTP/1.1 request that asked for an Upgrade, handed to the protocol that took over. */
export interface UpgradeRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  time: number;
  frame: number;
}

export interface ProtocolSession {
  /** After an HTTP/1.1 Upgrade to this protocol (h2c makes that request stream 1, RFC 7540 §3.2). */
  adoptUpgrade?(req: UpgradeRequest): void;
  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void;
  gap(dir: Dir, length: number, meta: StreamMeta): void;
  fin(dir: Dir, time: number): void;
  end(time: number, reason: CloseReason): void;
}

export interface ProtocolAnalyzer {
  readonly name: string;
  probe(dir: Dir, bytes: Buffer): ProbeResult;
  createSession(ctx: SessionContext): ProtocolSession;
}

/** A PostgreSQL server error or notice (ErrorResponse / NoticeResponse fields). */
export interface PgNotice {
  severity: string;
  /** SQLSTATE, e.g. 22012. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query. */
  position?: number;
}

/** One executed PostgreSQL statement (or a cancel, a function call, a notification). */
export interface PgTransaction {
  request?: {
    start: number;
    end: number;
    frames: [number, number];
    /** Bytes of the frontend messages that made up the request. */
    size: number;
    /** Query (simple protocol), Execute (extended), FunctionCall, CancelRequest. */
    message: 'Query' | 'Execute' | 'FunctionCall' | 'CancelRequest';
    query?: string;
    statement?: string;
    portal?: string;
    params?: import('./postgres/values.js').PgValue[];
    /** Backend pid a CancelRequest targets. */
    pid?: number;
  };
  response?: {
    start: number;
    end: number;
    frames: [number, number];
    size: number;
    /** CommandComplete tag, e.g. "SELECT 1", "INSERT 0 1". */
    command?: string;
    rows?: number;
    columns?: string[];
    /** The first rows, values decoded as text or by type. */
    preview?: import('./postgres/values.js').PgValue[][];
    error?: PgNotice;
    notices?: PgNotice[];
    copy?: { direction: 'in' | 'out' | 'both'; bytes: number; rows: number };
    /** Execute stopped at its row limit (PortalSuspended). */
    suspended?: true;
    empty?: true;
  };
  notification?: { pid: number; channel: string; payload: string };
  session: { database?: string; user?: string; application?: string; auth?: string; transaction?: 'idle' | 'transaction' | 'failed' };
}
