/**
 * The flow record: one request/response exchange as tapwire saw it on the wire. This is the
 * JSONL contract (README "Flow record"); tools outside the test suite read it, so fields are
 * only ever added. A half that was not seen is omitted, never null.
 */

import type { RawField } from '../protocols/grpc/protobuf.js';

/** One gRPC message of a call, in order. */
export interface RecordMessage {
  /** Capture time of the packet that completed the message. */
  time: number;
  /** Length as framed, in bytes (the compressed length when compressed). */
  size: number;
  compressed?: true;
  /** Schema-based decode (only with --proto). */
  json?: Record<string, unknown>;
  /** Schemaless decode: field numbers, wire types, nested messages, strings. */
  fields?: RawField[];
  /** Base64 of the kept bytes, when neither decode applies. */
  data?: string;
  /** Only the start of the message was kept or seen. */
  truncated?: true;
  /** Why the message could not be decoded (also counted as a violation). */
  error?: string;
}

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
  /** HTTP method; for HTTP/2 and gRPC the :method pseudo-header (gRPC: always POST). */
  method: string;
  /** Request target as sent, with the query string (query values may be redacted); HTTP/2 :path. */
  path: string;
  /** "1.1", "1.0", "2". */
  version: string;
  /** HTTP/2 :authority and :scheme. */
  authority?: string;
  scheme?: string;
  /** gRPC request messages (up to --max-messages), and how many more there were. */
  messages?: RecordMessage[];
  messagesDropped?: number;
}

export interface RecordResponse extends RecordHalf {
  /** Status code. Absent only when the response's header block was not seen (HTTP/2 caught mid-connection): never guessed. */
  status?: number;
  reason: string;
  version: string;
  /** Interim 1xx responses before the final one. */
  interim?: { status: number; time: number; frame?: number }[];
  /** gRPC status code (0 = OK) from the trailers, or from a Trailers-Only response. */
  grpcStatus?: number;
  /** grpc-message, percent-decoded. */
  grpcMessage?: string;
  messages?: RecordMessage[];
  messagesDropped?: number;
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
  /** HTTP/2 and gRPC: the stream id within the connection. */
  streamId?: number;
  /** HTTP/2 RST_STREAM or GOAWAY that ended the stream: RFC 9113 error name, frame, and who sent it. */
  error?: { code: string; frame: 'RST_STREAM' | 'GOAWAY'; by: 'client' | 'server' };
  /** gRPC: "/pkg.Service/Method" split, grpc-encoding, grpc-timeout and whether the deadline passed. */
  grpc?: { service: string; method: string; encoding?: string; timeoutMs?: number; deadlineExceeded?: boolean };
  /** HTTP/2: some header fields could not be decoded (HPACK state unknown) and are left out. */
  headersPartial?: true;
}
