/**
 * The flow record: one request/response exchange as tapwire saw it on the wire. This is the
 * JSONL contract (docs/flow-record.md, schema/flow-record.schema.json); tools outside the test
 * suite read it, so fields are only ever added. A half that was not seen is omitted, never null.
 *
 * Shape (../shared/STYLE.md "Records", as Hubble's Flow with its l7 oneof): one envelope every protocol
 * shares (FlowEnvelope) and one protocol-specific part, picked by `protocol`. FlowRecord is the
 * union of the parts; code that needs a protocol's meaning asks its record module
 * (src/flows/protocols/), never tests a protocol name itself. The schema test
 * (test/schema/flow-record.test.ts) reads the interfaces of this file to check the JSON Schema.
 */

import type { MysqlValue, PgNotice, PgValue, RawField } from '../protocols/index.js';

export type { MysqlValue, PgNotice, PgValue, RawField };

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
  /** The Service behind the address: a ClusterIP's own, or one a pod backs (EndpointSlices). */
  service?: string;
  /** The pod's labels, when the address is a pod's (Kubernetes enricher). */
  labels?: Record<string, string>;
  /**
   * The process holding this end of the connection, when it is on the agent's host (live agent:
   * kernel tracepoints on connect and accept; issue 18, "Process attribution").
   */
  process?: PeerProcess;
}

/** The process at one end of a connection (Peer.process): the one that connected, or accepted. */
export interface PeerProcess {
  pid: number;
  /** Its name (task comm) when it connected or accepted. */
  comm: string;
  /** Its container, as the runtime names it (64 hex digits), when its cgroup is a container's. */
  containerId?: string;
  /** Its pod's metadata.uid, when its cgroup path carries it (kubepods). */
  podUid?: string;
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

/** A PostgreSQL statement as sent: simple Query, or Execute of a (named) prepared statement. */
export interface PgRecordRequest {
  start: number;
  end: number;
  frames?: [number, number];
  size: number;
  message: 'Query' | 'Execute' | 'FunctionCall' | 'CancelRequest';
  /** SQL text verbatim as sent (for Execute, from its Parse); one statement of a multi-statement Query. */
  query?: string;
  /** Normalised fingerprint: literals as ?, whitespace and case folded (src/protocols/postgres/fingerprint.ts). */
  fingerprint?: string;
  /** Prepared statement name ("" is the unnamed statement). */
  statement?: string;
  portal?: string;
  /** Bind parameters: text format as strings, binary decoded by type; cut past 256 characters. */
  params?: PgValue[];
  /** CancelRequest: the backend it targets. */
  pid?: number;
}

export interface PgRecordResponse {
  start: number;
  end: number;
  frames?: [number, number];
  size: number;
  /** CommandComplete tag, e.g. "SELECT 1". */
  command?: string;
  /** Rows returned (DataRow count). */
  rows?: number;
  columns?: string[];
  /** The first rows (--preview-rows), values decoded. */
  preview?: PgValue[][];
  error?: PgNotice;
  notices?: PgNotice[];
  copy?: { direction: 'in' | 'out' | 'both'; bytes: number; rows: number };
  suspended?: true;
  empty?: true;
}

/** A TLS ClientHello as offered (RFC 8446 §4.1.2): the request half of a TLS connection. */
export interface TlsRecordRequest {
  /** Capture times of the packets with the ClientHello's first and last byte. */
  start: number;
  end: number;
  frames?: [number, number];
  /** Bytes of the ClientHello handshake message, its 4-byte header included. */
  size: number;
  /** legacy_version by name ("TLS 1.2": TLS 1.3 clients send that too, RFC 8446 §4.1.2). */
  legacyVersion: string;
  /** supported_versions (RFC 8446 §4.2.1) by name, in offered order, GREASE left out; absent when the extension is. */
  versions?: string[];
  /** server_name's host name (RFC 6066 §3); absent when none was sent. */
  sni?: string;
  /** ALPN protocol names offered, in preference order (RFC 7301); absent when the extension is. */
  alpn?: string[];
  /** Cipher suites offered, in order, as 4-digit hex codes ("1301"), GREASE included. */
  ciphers: string[];
  /** Extension types in the order sent, as numbers (GREASE included). */
  extensions: number[];
  /** signature_algorithms (RFC 8446 §4.2.3) as 4-digit hex codes, in order; absent when the extension is. */
  signatureAlgorithms?: string[];
  /** Length of legacy_session_id (0–32). */
  sessionIdLength: number;
  /** A pre_shared_key extension: the client offered to resume (TLS 1.3). */
  psk?: true;
  /** An early_data extension: the client sent 0-RTT data. */
  earlyData?: true;
  /** A non-empty session_ticket extension: the client offered a ticket to resume (TLS 1.2, RFC 5077). */
  ticket?: true;
  /** JA4 fingerprint of the ClientHello (FoxIO's JA4 specification), e.g. "t13d1516h2_8daaf6152771_e5627efa2ab1". */
  ja4: string;
}

/** A TLS ServerHello (RFC 8446 §4.1.3): the response half of a TLS connection. */
export interface TlsRecordResponse {
  start: number;
  end: number;
  frames?: [number, number];
  /** Bytes of the ServerHello handshake message, header included. */
  size: number;
  /** The negotiated version by name ("TLS 1.3"): supported_versions' selected_version, else legacy_version. */
  version: string;
  /** The chosen cipher suite by IANA name ("TLS_AES_128_GCM_SHA256"), or its code ("0x1305") when tapwire has no name for it. */
  cipher: string;
  /**
   * The ALPN protocol the server chose (TLS ≤ 1.2, in the ServerHello). Absent when none was, and
   * always in TLS 1.3, where the choice travels encrypted in EncryptedExtensions (RFC 8446 §4.3.1).
   */
  alpn?: string;
  /**
   * The session was resumed rather than a full handshake: TLS 1.3 by a pre_shared_key in the
   * ServerHello; TLS 1.2 by an echoed session id, or a ChangeCipherSpec with no Certificate
   * before it (a session ticket). Absent when a TLS 1.2 server's next message was not seen.
   */
  resumed?: boolean;
  /** A HelloRetryRequest came first (RFC 8446 §4.1.4): the client had to send a second ClientHello. */
  helloRetry?: true;
}

/** Every protocol tapwire records. Adding one here without a record module is a compile error. */
export type Protocol = 'http' | 'http2' | 'grpc' | 'postgres' | 'tls' | 'redis' | 'mysql';

/** What every flow carries, whatever its protocol: ids, peers, times, completeness, identity (in the peers). */
export interface FlowEnvelope {
  /** Stable id: "<connectionId>-<n>", n counting the connection's exchanges from 1. */
  id: string;
  /** Which protocol-specific part the record carries. */
  protocol: Protocol;
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
  /**
   * First exchange of a connection whose SYN was seen: milliseconds from the SYN to the first
   * byte of this exchange (the TCP handshake, and any TLS or startup exchange, it waited for).
   */
  connectMs?: number;
  /** True when evidence is missing (a gap, an unmatched half, a cut-off body). */
  incomplete?: boolean;
  /** Why, as a stable code: no-response, no-request-seen, gap-in-body, response-lost-in-gap … */
  incompleteReason?: string;
  /** Decoded from TLS plaintext a library handed over (eBPF uprobes), not from packets: which, and where. */
  tls?: TlsOrigin;
}

/** Where a record decoded from TLS plaintext came from. */
export interface TlsOrigin {
  /** The TLS library probed: openssl (libssl, or linked into a binary such as node), or go (crypto/tls). */
  library: string;
  via: 'uprobe';
  /** The probed process (the first of the two ends seen, when both are on the host). */
  pid?: number;
  comm?: string;
  /**
   * The server name the connection's ClientHello asked for (RFC 6066 §3), when the agent's packet
   * capture saw the handshake of the same connection.
   */
  sni?: string;
}

/** HTTP/1.x: one request/response exchange. */
export interface HttpFlow extends FlowEnvelope {
  protocol: 'http';
  request?: RecordRequest;
  response?: RecordResponse;
  /** The protocol the connection switched to after this exchange: websocket, h2c, tunnel. */
  upgrade?: string;
}

/** HTTP/2: one stream. */
export interface Http2Flow extends FlowEnvelope {
  protocol: 'http2';
  request?: RecordRequest;
  response?: RecordResponse;
  /** The stream id within the connection. */
  streamId?: number;
  /** RST_STREAM or GOAWAY that ended the stream: RFC 9113 error name, frame, and who sent it. */
  error?: StreamErrorRecord;
  /** Some header fields could not be decoded (HPACK state unknown) and are left out. */
  headersPartial?: true;
}

/** gRPC: one call, on one HTTP/2 stream. */
export interface GrpcFlow extends FlowEnvelope {
  protocol: 'grpc';
  request?: RecordRequest;
  response?: RecordResponse;
  streamId?: number;
  error?: StreamErrorRecord;
  /** "/pkg.Service/Method" split, grpc-encoding, grpc-timeout and whether the deadline passed. */
  grpc?: GrpcCall;
  headersPartial?: true;
}

/** PostgreSQL: one statement (or a cancel, a function call, a notification). */
export interface PostgresFlow extends FlowEnvelope {
  protocol: 'postgres';
  request?: PgRecordRequest;
  response?: PgRecordResponse;
  /** Session facts at the statement, and an asynchronous NOTIFY as `notification`. */
  postgres?: PgSessionRecord;
}

/** TLS: one connection's handshake (ClientHello, ServerHello) and the encrypted bytes after it; nothing decrypted. */
export interface TlsFlow extends FlowEnvelope {
  protocol: 'tls';
  /** The ClientHello. */
  request?: TlsRecordRequest;
  /** The ServerHello; absent (and the record incomplete, "no-server-hello") when it was not seen. */
  response?: TlsRecordResponse;
  /** Milliseconds from the ClientHello's first byte to the client's Finished (its first encrypted record); absent when not seen. */
  handshakeMs?: number;
  /** application_data payload bytes after the handshake, each way (TLS 1.3: the server's session tickets included). */
  bytes?: { toServer: number; toClient: number };
  /** The first alert sent in clear, before encryption started (a failed handshake). */
  alert?: { level: 'warning' | 'fatal' | 'unknown'; description: string; by: 'client' | 'server' };
  /**
   * The processes holding the connection's ends on the agent's host (kernel tracepoints on connect
   * and accept), with their TLS library and whether the uprobes read it: why a connection was not
   * decrypted. An end not on this host, or not seen connecting or accepting, is absent.
   */
  processes?: { client?: TlsEndProcess; server?: TlsEndProcess };
}

/** A process at one end of a TLS connection, and what its TLS library allows (TlsFlow.processes). */
export interface TlsEndProcess {
  pid: number;
  /** Its name (task comm) when it connected or accepted. */
  comm?: string;
  /** Its TLS library: openssl, go, java (JSSE), gnutls, nss, boringssl, rustls, or unknown. */
  library: string;
  /** The uprobes read this library's plaintext (OpenSSL; Go crypto/tls with its functions found). */
  probed: boolean;
  /** Why not, as a stable code, when not probed: unsupported-library, stripped-binary, no-symbols, not-probed. */
  reason?: string;
  /** The same in words: what was found ("libjvm.so mapped: Java's own TLS (JSSE)"). */
  detail?: string;
  /** The cgroup the process ran in (its pod or container, as the kernel numbers cgroups). */
  cgroupId?: number;
}

/** Redis: one command and its reply, or a message the server pushed (pub/sub). */
export interface RedisFlow extends FlowEnvelope {
  protocol: 'redis';
  /** The command; absent for a pushed message (and for a reply whose command was not seen). */
  request?: RedisRecordRequest;
  /** Its reply; absent when none was seen (the record is incomplete, "no-response"). */
  response?: RedisRecordResponse;
  /** The connection's RESP version and the MULTI the command was in. */
  redis?: RedisSessionRecord;
}

/** A Redis command as sent (RESP array of bulk strings, or an inline command). */
export interface RedisRecordRequest {
  /** Capture times of the packets with the command's first and last byte. */
  start: number;
  end: number;
  frames?: [number, number];
  /** Bytes of the command on the wire, RESP framing included. */
  size: number;
  /** The command's first word, upper-case: GET, SET, CLIENT, HELLO. */
  command: string;
  /**
   * The other words, each cut at 512 bytes and at most 63 of them. AUTH's arguments always, and
   * secrets (HELLO's AUTH pair, a value after a field or key named like a password or token) are
   * replaced by the redactor's keyed-hash token, unless redaction is off (--no-redact).
   */
  args: string[];
  /** How many arguments there were, when more than `args` holds. */
  argc?: number;
  /** The key, for commands that have one (GET's, SET's, the first of DEL's …); redacted never. */
  key?: string;
  /** Sent as an inline command (a plain text line), not a RESP array. */
  inline?: true;
}

/** A Redis reply, or a pushed pub/sub message. */
export interface RedisRecordResponse {
  start: number;
  end: number;
  frames?: [number, number];
  /** Bytes of the reply on the wire; 0 for a command queued in MULTI (its result is inside EXEC's reply). */
  size: number;
  /**
   * The RESP type: "nil" (a null: a cache miss for GET), "simple", "error", "integer", "bulk",
   * "array", and in RESP3 "map", "set", "push", "double", "boolean", "verbatim", "bignum".
   * A pushed message is "push" (RESP2's subscribed-mode arrays too).
   */
  type: string;
  /** The value as text, cut at 256 characters: strings as they are, numbers as digits, aggregates as a list. */
  value?: string;
  /** Elements of an aggregate (maps: pairs), or a bulk string's length in bytes. */
  length?: number;
  /** An error reply's message: "ERR unknown command …", "WRONGTYPE …". */
  error?: string;
  /** A pushed message: its channel, the pattern it matched (PSUBSCRIBE), and the message (cut at 256 characters). */
  channel?: string;
  pattern?: string;
  message?: string;
}

/** Redis facts beyond the halves. */
export interface RedisSessionRecord {
  /** The RESP version when the reply came: 3 after a successful HELLO 3, else 2. */
  resp: 2 | 3;
  /** Commands sent between MULTI and EXEC or DISCARD share this number (1, 2 … per connection), MULTI and EXEC included. */
  transaction?: number;
  /** The command was queued (QUEUED): its response is its element of EXEC's reply. */
  queued?: true;
}

/** MySQL / MariaDB: one command and its answer (one per result of a multi-statement query), or a login. */
export interface MysqlFlow extends FlowEnvelope {
  protocol: 'mysql';
  /** The command (COM_CONNECT for the login); absent for an answer whose command was not seen. */
  request?: MysqlRecordRequest;
  /** Its answer: a result set, OK or ERR; absent when none was seen. */
  response?: MysqlRecordResponse;
  /** Session facts at the command: server version, connection id, user, database, TLS. */
  mysql?: MysqlSessionRecord;
}

/** A MySQL command as sent (COM_QUERY, COM_STMT_EXECUTE …), or the login (COM_CONNECT). */
export interface MysqlRecordRequest {
  /** Capture times of the packets with the command's first and last byte. */
  start: number;
  end: number;
  frames?: [number, number];
  /** Bytes of the command on the wire, packet headers included. */
  size: number;
  /** The command's name (enum_server_command): COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_PING …; COM_CONNECT for the login. */
  command: string;
  /** The SQL: COM_QUERY's (one statement of a multi-statement query), COM_STMT_PREPARE's, or an execute's through its statement id. */
  query?: string;
  /** Normalised fingerprint, as PostgreSQL's: literals as ?, whitespace and case folded (src/protocols/mysql/fingerprint.ts). */
  fingerprint?: string;
  /** The prepared statement's id: COM_STMT_PREPARE's answer, COM_STMT_EXECUTE/CLOSE/RESET's target. */
  statementId?: number;
  /** COM_STMT_EXECUTE's binary parameters, decoded by their types; strings cut past 256 characters. */
  params?: MysqlValue[];
  /** COM_INIT_DB's database, the login's. */
  database?: string;
  /** The login's (or COM_CHANGE_USER's) user name; never any auth data. */
  user?: string;
  /** The login asked for TLS (SSLRequest): nothing after it can be read. */
  ssl?: true;
  /** Which result of a multi-statement query or multi-result execute this record is (0-based), when there are several. */
  part?: number;
}

/** A MySQL answer: a result set, an OK or an ERR packet, COM_STMT_PREPARE_OK. */
export interface MysqlRecordResponse {
  start: number;
  end: number;
  frames?: [number, number];
  /** Bytes of the answer on the wire, packet headers included. */
  size: number;
  /** Column names of the result set. */
  columns?: string[];
  /** Rows of the result set. */
  rows?: number;
  /** The first rows (--preview-rows), values decoded. */
  preview?: MysqlValue[][];
  /** OK packet: rows changed, and the AUTO_INCREMENT id (when not 0). */
  affectedRows?: number;
  lastInsertId?: number;
  /** Warnings the server counted (OK or EOF packet), when not 0. */
  warnings?: number;
  /** ERR packet: the server's error number (1045, 1062, 1146 …), SQLSTATE and message. */
  error?: MysqlErrorRecord;
  /** COM_STMT_PREPARE_OK: the statement's parameter and column counts. */
  paramCount?: number;
  columnCount?: number;
}

/** A MySQL ERR packet. */
export interface MysqlErrorRecord {
  /** The server's error number: 1045, 1062, 1146 … */
  code: number;
  /** Five-character SQLSTATE; absent before protocol 4.1 and in some handshake errors. */
  sqlstate?: string;
  /** The message, cut at 256 characters. */
  message: string;
}

/** MySQL session facts at the command. */
export interface MysqlSessionRecord {
  /** The server's version string from its greeting ("8.0.36"; MariaDB: "5.5.5-10.11.19-MariaDB-0+deb12u1"). */
  serverVersion?: string;
  /** The connection (thread) id from the greeting. */
  connectionId?: number;
  /** The logged-in user, and the current database (the login's, then COM_INIT_DB's). */
  user?: string;
  database?: string;
  /** The connection switched to TLS after the login's SSLRequest. */
  ssl?: true;
}

/** An HTTP/2 stream or connection error that ended the exchange. */
export interface StreamErrorRecord {
  /** RFC 9113 §7 name: CANCEL, REFUSED_STREAM, PROTOCOL_ERROR … */
  code: string;
  frame: 'RST_STREAM' | 'GOAWAY';
  by: 'client' | 'server';
}

export interface GrpcCall {
  service: string;
  method: string;
  /** grpc-encoding of the call's messages. */
  encoding?: string;
  /** grpc-timeout, in milliseconds. */
  timeoutMs?: number;
  /** grpc-status 4, or a reset after the timeout passed. */
  deadlineExceeded?: boolean;
}

/** Database, user, application, auth mechanism, and the transaction status from the last ReadyForQuery. */
export interface PgSessionRecord {
  database?: string;
  user?: string;
  application?: string;
  auth?: string;
  transaction?: 'idle' | 'transaction' | 'failed';
  notification?: { pid: number; channel: string; payload: string };
}

/** One flow: the envelope and the part its `protocol` names. */
export type FlowRecord = HttpFlow | Http2Flow | GrpcFlow | PostgresFlow | TlsFlow | RedisFlow | MysqlFlow;

/** The record type of one protocol. */
export type FlowOf<P extends Protocol> = Extract<FlowRecord, { protocol: P }>;

/** The flows whose halves are HTTP messages (HTTP/1.x, HTTP/2, gRPC). */
export type HttpFlowRecord = HttpFlow | Http2Flow | GrpcFlow;
export type PgFlowRecord = PostgresFlow;
/**
 * The flows whose halves are a SQL statement and its result (PostgreSQL, MySQL): what the SQL
 * detectors read (request.query, fingerprint, params; response.error, rows) is in both.
 */
export type SqlFlow = PostgresFlow | MysqlFlow;

/** For a switch over `protocol` that must name every protocol: a forgotten one does not compile. */
export function unhandled(p: never): never {
  throw new Error(`unknown protocol ${String(p)}`);
}

/**
 * Type guards over the union, for code that cannot reach the registry (tests, and front doors not
 * yet moved). verify/, query/, the MCP rows and the CLI ask the record modules instead:
 * httpHalves and sqlHalves in src/flows/protocols/index.ts.
 */

/** The flow's halves are HTTP messages (headers, bodies): HTTP/1.x, HTTP/2, gRPC. */
export function isHttpLike(r: FlowRecord): r is HttpFlowRecord {
  switch (r.protocol) {
    case 'http': case 'http2': case 'grpc': return true;
    case 'postgres': case 'tls': case 'redis': case 'mysql': return false;
    default: return unhandled(r);
  }
}

export function isPostgres(r: FlowRecord): r is PostgresFlow {
  return r.protocol === 'postgres';
}
