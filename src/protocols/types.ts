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

export interface HttpRequestHalf extends MessageHalf {
  method: string;
  /** The request target as sent, with its query string. */
  path: string;
  version: string;
}

export interface HttpResponseHalf extends MessageHalf {
  status: number;
  reason: string;
  version: string;
  /** 1xx interim responses (100 Continue, 103 Early Hints) that came before this one. */
  interim?: { status: number; time: number; frame: number }[];
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
}

export interface AnalyzerOptions {
  /** Body bytes kept per message half. */
  bodyLimit: number;
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

export interface ProtocolSession {
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
