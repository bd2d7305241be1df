/**
 * The static types of the filter language, and the shape of a flow record in those types. The
 * checker (check.ts) uses them to reject `response.stauts` or `duration_ms > "200"` before any
 * record is read; vars.ts uses the same shapes to turn a record into CEL values.
 *
 * Every field of the record types is listed: `satisfies Fields<…>` makes tsc fail here when a
 * field is added to src/flows/record.ts and not to the filter.
 */

import type { FlowRecord, GrpcCall, MysqlSessionRecord, Peer, PeerProcess, PgSessionRecord, RecordMessage, RedisSessionRecord, StreamErrorRecord, TlsEndProcess } from '../flows/index.js';
import type { PgNotice } from '../protocols/index.js';

export type Scalar = 'bool' | 'int' | 'uint' | 'double' | 'string' | 'bytes' | 'null' | 'timestamp' | 'duration' | 'type' | 'dyn';

/** A CEL type as the checker knows it. `struct` is a map whose keys are known: a record object. */
export type CelT =
  | { k: Scalar }
  | { k: 'list'; elem: CelT }
  | { k: 'map'; key: CelT; value: CelT }
  | { k: 'struct'; name: string; fields: Record<string, CelT> };

export const BOOL: CelT = { k: 'bool' };
export const INT: CelT = { k: 'int' };
export const DOUBLE: CelT = { k: 'double' };
export const STRING: CelT = { k: 'string' };
export const NULL: CelT = { k: 'null' };
export const TIMESTAMP: CelT = { k: 'timestamp' };
export const DURATION: CelT = { k: 'duration' };
export const TYPE: CelT = { k: 'type' };
export const DYN: CelT = { k: 'dyn' };

export const list = (elem: CelT): CelT => ({ k: 'list', elem });
export const map = (key: CelT, value: CelT): CelT => ({ k: 'map', key, value });
const struct = (name: string, fields: Record<string, CelT>): CelT & { k: 'struct' } => ({ k: 'struct', name, fields });

/** How a type is named in messages: `int`, `list(string)`, `map(string, string)`, `response`. */
export function show(t: CelT): string {
  switch (t.k) {
    case 'list': return `list(${show(t.elem)})`;
    case 'map': return `map(${show(t.key)}, ${show(t.value)})`;
    case 'struct': return t.name;
    case 'null': return 'null';
    default: return t.k;
  }
}

/** One CEL type per field, for every field of T (optional ones too). */
type Fields<T> = { [K in keyof T]-?: CelT };
/** Every field any protocol's part has: `record` offers them all (absent ones read as absent). */
type AnyFields<U> = { [K in U extends unknown ? keyof U : never]-?: CelT };

const HEADERS = map(STRING, STRING);
const FRAMES = list(INT);

/** The process at a connection's end (Peer.process). */
const PEER_PROCESS = struct('process', { pid: INT, comm: STRING, containerId: STRING, podUid: STRING } satisfies Fields<PeerProcess>);

export const PEER = struct('peer', {
  ip: STRING, port: INT, name: STRING, namespace: STRING, workload: STRING, node: STRING, service: STRING, labels: map(STRING, STRING), process: PEER_PROCESS,
} satisfies Fields<Peer>);

const MESSAGE = struct('message', {
  time: DOUBLE, size: INT, compressed: BOOL, json: map(STRING, DYN), fields: list(DYN), data: STRING, truncated: BOOL, error: STRING,
} satisfies Fields<RecordMessage>);

const NOTICE = struct('notice', {
  severity: STRING, code: STRING, message: STRING, detail: STRING, hint: STRING, position: INT,
} satisfies Fields<PgNotice>);

/** What both HTTP halves share (RecordHalf). */
const HALF = {
  start: DOUBLE, end: DOUBLE, frames: FRAMES, size: INT, headers: HEADERS, trailers: HEADERS, bodySize: INT, body: STRING,
  bodyEncoding: STRING, bodyTruncated: BOOL, bodyDecodeError: STRING,
};

/** `request`: the fields of every protocol's request half (a new protocol's fields must be added here to compile). */
export const REQUEST = struct('request', {
  ...HALF, method: STRING, path: STRING, version: STRING, authority: STRING, scheme: STRING, messages: list(MESSAGE), messagesDropped: INT,
  message: STRING, query: STRING, fingerprint: STRING, statement: STRING, portal: STRING, params: list(DYN), pid: INT,
  legacyVersion: STRING, versions: list(STRING), sni: STRING, alpn: list(STRING), ciphers: list(STRING), extensions: list(INT),
  signatureAlgorithms: list(STRING), sessionIdLength: INT, psk: BOOL, earlyData: BOOL, ticket: BOOL, ja4: STRING,
  command: STRING, args: list(STRING), argc: INT, key: STRING, inline: BOOL,
  statementId: INT, database: STRING, user: STRING, ssl: BOOL, part: INT,
} satisfies AnyFields<NonNullable<FlowRecord['request']>>);

/** `response`: the fields of every protocol's response half. */
export const RESPONSE = struct('response', {
  ...HALF, status: INT, reason: STRING, version: STRING, interim: list(struct('interim', { status: INT, time: DOUBLE, frame: INT })),
  grpcStatus: INT, grpcMessage: STRING, messages: list(MESSAGE), messagesDropped: INT,
  // error: PostgreSQL's is a notice (code, message …), Redis's the error's text, MySQL's { code (a number), sqlstate, message }: dyn takes all three.
  command: STRING, rows: INT, columns: list(STRING), preview: list(list(DYN)), error: DYN, notices: list(NOTICE),
  copy: struct('copy', { direction: STRING, bytes: INT, rows: INT }), suspended: BOOL, empty: BOOL,
  cipher: STRING, alpn: STRING, resumed: BOOL, helloRetry: BOOL,
  type: STRING, value: STRING, length: INT, channel: STRING, pattern: STRING, message: STRING,
  affectedRows: INT, lastInsertId: INT, warnings: INT, paramCount: INT, columnCount: INT,
} satisfies AnyFields<NonNullable<FlowRecord['response']>>);

/** One end of a wire TLS connection: its process and library (TlsFlow.processes). */
const TLS_END = struct('end', {
  pid: INT, comm: STRING, library: STRING, probed: BOOL, reason: STRING, detail: STRING, cgroupId: INT,
} satisfies Fields<TlsEndProcess>);

export const H2_ERROR = struct('error', { code: STRING, frame: STRING, by: STRING } satisfies Fields<StreamErrorRecord>);

/** `record`: the whole flow record, with the field names of the JSONL contract. */
export const RECORD = struct('record', {
  id: STRING, protocol: STRING, connectionId: STRING, src: PEER, dst: PEER, start: DOUBLE, end: DOUBLE, durationMs: DOUBLE, connectMs: DOUBLE,
  request: REQUEST, response: RESPONSE, incomplete: BOOL, incompleteReason: STRING, upgrade: STRING, streamId: INT, error: H2_ERROR,
  grpc: struct('grpc', { service: STRING, method: STRING, encoding: STRING, timeoutMs: INT, deadlineExceeded: BOOL } satisfies Fields<GrpcCall>),
  headersPartial: BOOL,
  postgres: struct('postgres', {
    database: STRING, user: STRING, application: STRING, auth: STRING, transaction: STRING,
    notification: struct('notification', { pid: INT, channel: STRING, payload: STRING } satisfies Fields<NonNullable<PgSessionRecord['notification']>>),
  } satisfies Fields<PgSessionRecord>),
  handshakeMs: DOUBLE, bytes: struct('bytes', { toServer: INT, toClient: INT }),
  alert: struct('alert', { level: STRING, description: STRING, by: STRING }),
  tls: struct('tls', { library: STRING, via: STRING, pid: INT, comm: STRING, sni: STRING }),
  processes: struct('processes', { client: TLS_END, server: TLS_END }),
  redis: struct('redis', { resp: INT, transaction: INT, queued: BOOL } satisfies Fields<RedisSessionRecord>),
  mysql: struct('mysql', {
    serverVersion: STRING, connectionId: INT, user: STRING, database: STRING, ssl: BOOL,
  } satisfies Fields<MysqlSessionRecord>),
} satisfies AnyFields<FlowRecord>);
