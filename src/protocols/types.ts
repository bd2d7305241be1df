import type { CloseReason, ConnectionInfo, Dir, StreamMeta } from '../stream/index.js';

/**
 * The one interface every protocol implements (see ../shared/STYLE.md, "One interface for every protocol"): a probe that looks at the first
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

/**
 * What every session emits: one exchange, named by its protocol. The rest is the protocol's own
 * (Transaction below for the HTTP family, PgExchange in postgres/types.ts); the protocol's record
 * module in src/flows/protocols/ reads it by that name.
 */
export interface Exchange {
  protocol: string;
  /** Why the evidence is not whole, as a stable code; absent when complete. */
  incomplete?: string;
}

/** An HTTP request/response pair (HTTP/1.x, HTTP/2, gRPC; either half may be missing). */
export interface Transaction extends Exchange {
  request?: HttpRequestHalf;
  response?: HttpResponseHalf;
  /** Protocol the connection switched to after this exchange (websocket, h2c, tunnel). */
  upgrade?: string;
  /** HTTP/2 stream id. */
  streamId?: number;
  error?: StreamError;
  /** Facts of the call a carried protocol (gRPC) found in the stream. */
  grpc?: CallFacts;
  /** Some header fields could not be decoded (HPACK table unknown): they are omitted, never guessed. */
  headersPartial?: boolean;
}

/** gRPC call facts beyond the halves: "/pkg.Service/Method" split, encoding, timeout, deadline. */
export interface CallFacts {
  service: string;
  method: string;
  encoding?: string;
  timeoutMs?: number;
  deadlineExceeded?: boolean;
}

/** Reads the length-prefixed messages of one direction of a stream, incrementally and bounded. */
export interface StreamMessageReader {
  readonly messages: GrpcMessage[];
  /** Messages beyond the kept count. */
  readonly dropped: number;
  /** Set when framing was lost; nothing more is read until restartAt finds a message start. */
  readonly broken: string | undefined;
  push(b: Buffer, time: number): void;
  gap(length: number): void;
  /** After lost framing: restarts at `b` when it is certainly a message boundary; says whether it did. */
  restartAt(b: Buffer): boolean;
  finish(time: number): void;
}

/**
 * A protocol carried inside HTTP/2 streams (gRPC): HTTP/2 finds it by name through
 * SessionContext.carried, so the two protocol folders never import each other.
 */
export interface CarriedProtocol {
  readonly name: string;
  /** Whether a stream with this content-type carries this protocol. */
  carries(contentType: string | undefined): boolean;
  reader(keep: number, maxMessages: number): StreamMessageReader;
  /**
   * The call's facts from the request's :path and headers, the response's headers, and how the
   * call ended: its status, whether the stream was reset, and how long it took.
   */
  call(path: string, request: Record<string, string>, response: Record<string, string> | undefined, ended: { status?: number; reset: boolean; tookMs: number }): CallFacts;
  /** The status and its message, from the trailers or a Trailers-Only response's headers. */
  status(headers: Record<string, string>, trailers: Record<string, string> | undefined): { status?: number; message?: string };
}

export interface AnalyzerOptions {
  /** Body bytes kept per message half (and per gRPC message). */
  bodyLimit: number;
  /** gRPC messages kept per direction of a call; further ones are counted. */
  maxMessages?: number;
  /** PostgreSQL rows kept in a result preview. */
  previewRows?: number;
  /**
   * Called as soon as a ClientHello's server_name (RFC 6066 §3) is read, long before the TLS
   * record (emitted at the connection's end): the live agent marks records it decrypted from the
   * same connection with it.
   */
  onServerName?(conn: ConnectionInfo, name: string): void;
}

export interface SessionContext {
  readonly conn: ConnectionInfo;
  readonly options: AnalyzerOptions;
  /** Begin by looking for a message start in both directions (bytes before the match were not messages). */
  readonly resync?: boolean;
  /** One exchange: the HTTP family emits a Transaction, other protocols their own Exchange (postgres/types.ts). */
  emit<T extends Exchange>(tx: T): void;
  /** Counts malformed wire input; `offset` is the stream offset in that direction. */
  violation(code: string, reason: string, offset?: number): void;
  /**
   * Hands the rest of the connection to another protocol (an HTTP/1.1 Upgrade). Returns the new
   * session, which the caller feeds any bytes it already holds, or undefined when tapwire has no
   * analyzer for that protocol.
   */
  handover(protocol: string): ProtocolSession | undefined;
  /** A protocol carried in HTTP/2 streams, by name (registry.ts CARRIED), or undefined when tapwire has none. */
  carried(protocol: string): CarriedProtocol | undefined;
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

/** A protocol over TCP: its sessions read one connection's reassembled byte streams. */
export interface ProtocolAnalyzer {
  readonly name: string;
  readonly transport: 'tcp';
  probe(dir: Dir, bytes: Buffer): ProbeResult;
  createSession(ctx: SessionContext): ProtocolSession;
}

/** Where a datagram came from: its capture time and frame. Reused between calls. */
export interface DatagramMeta {
  time: number;
  frame: number;
}

/** What a datagram session may do: no handover or carried protocols, which are stream notions. */
export type DatagramContext = Pick<SessionContext, 'conn' | 'options' | 'emit' | 'violation'>;

/**
 * One UDP flow (a pair of endpoints) of a datagram protocol, such as DNS: each datagram whole, in
 * capture order. `dir` 0 is the client → server direction the probe settled.
 */
export interface DatagramSession {
  datagram(dir: Dir, bytes: Buffer, meta: DatagramMeta): void;
  /** The flow went idle, or the capture ended: emit what is still pending. */
  end(time: number): void;
}

/** A protocol over UDP: probed on a flow's first datagram, then fed each datagram of the flow. */
export interface DatagramAnalyzer {
  readonly name: string;
  readonly transport: 'udp';
  /** `match`: the sender is the client; `reverse`: the sender is the server; `no`: not this protocol. */
  probe(bytes: Buffer): 'match' | 'reverse' | 'no';
  createSession(ctx: DatagramContext): DatagramSession;
}

/** Every analyzer declares its transport; the pipeline routes TCP streams and UDP datagrams to their own. */
export type Analyzer = ProtocolAnalyzer | DatagramAnalyzer;
