/**
 * The flow record: one request/response exchange as tapwire saw it on the wire. This is the
 * JSONL contract (README "Flow record"); tools outside the test suite read it, so fields are
 * only ever added. A half that was not seen is omitted, never null.
 */

/** One side of a flow. */
export interface Peer {
  ip: string;
  port: number;
  /** Identity, when an identity source knows this address (live agent, later issues). */
  name?: string;
  namespace?: string;
  workload?: string;
  node?: string;
}

/** What both halves share. Times are capture timestamps in epoch seconds. */
export interface RecordHalf {
  /** Capture time of the packet with the first byte of this message. */
  start: number;
  /** Capture time of the packet with its last byte. */
  end: number;
  /** Frame numbers (1-based, file order) of those two packets. Present for capture files. */
  frames?: [number, number];
  /** Bytes on the wire: start line, headers, framing and body. */
  size: number;
  /** Header fields, lower-case names; repeated fields joined by ", " (Set-Cookie by "\n"). */
  headers: Record<string, string>;
  /** Chunked-encoding trailer fields, same shape as headers. */
  trailers?: Record<string, string>;
  /** Body length after transfer decoding (de-chunked), before content decoding, in bytes. */
  bodySize: number;
  /**
   * Body preview: the first `--body-limit` bytes, with Content-Encoding (gzip, deflate, br)
   * undone. UTF-8 text as is; anything else base64 with bodyEncoding "base64". Absent when empty.
   */
  body?: string;
  bodyEncoding?: 'base64';
  /** The body was longer than the capture limit: `body` holds only its start. */
  bodyTruncated?: boolean;
  /** Content-Encoding could not be undone; `body` holds the encoded bytes. */
  bodyDecodeError?: string;
}

export interface RecordRequest extends RecordHalf {
  method: string;
  /** Request target as sent, with the query string (query values may be redacted). */
  path: string;
  /** "1.1", "1.0". */
  version: string;
}

export interface RecordResponse extends RecordHalf {
  status: number;
  reason: string;
  version: string;
  /** Interim 1xx responses before the final one. */
  interim?: { status: number; time: number; frame?: number }[];
}

export interface FlowRecord {
  /** Stable id: "<connectionId>-<n>", n counting the connection's exchanges from 1. */
  id: string;
  /** "http" for HTTP/1.x (later "http2", "grpc", "postgres"). */
  protocol: string;
  /** Same for every flow of one TCP connection. */
  connectionId: string;
  /** The client side. */
  src: Peer;
  /** The server side. */
  dst: Peer;
  /** First byte of the request (or of the response when no request was seen), epoch seconds. */
  start: number;
  /** Last byte of the response (or of the request when no response was seen), epoch seconds. */
  end: number;
  /** end − start in milliseconds. */
  durationMs: number;
  request?: RecordRequest;
  response?: RecordResponse;
  /** True when evidence is missing (a gap, an unmatched half, a cut-off body). */
  incomplete?: boolean;
  /** Why, as a stable code: no-response, no-request-seen, gap-in-body, response-lost-in-gap … */
  incompleteReason?: string;
  /** The protocol the connection switched to after this exchange: websocket, h2c, tunnel. */
  upgrade?: string;
}
