/**
 * protocols/: one folder per protocol behind one interface (types.ts): a probe on a direction's
 * first bytes and a session fed in-order bytes, gaps and the end (TCP), or whole datagrams (UDP).
 * dispatch.ts and datagrams.ts route by content, not port; registry.ts lists them; pairing.ts
 * pairs requests and responses after loss for any request/response protocol.
 */
export { DatagramDispatcher } from './datagrams.js';
export { Dispatcher } from './dispatch.js';
export { GRPC_STATUS_NAMES } from './grpc/framing.js';
export { ProtoLoadError, ProtoSchemas, decompressMessage, schemaless, type RawField } from './grpc/protobuf.js';
export { fingerprint as mysqlFingerprint } from './mysql/fingerprint.js';
export type { MysqlExchange } from './mysql/types.js';
export type { MysqlValue } from './mysql/values.js';
export { fingerprint } from './postgres/fingerprint.js';
export type { PgExchange, PgNotice } from './postgres/types.js';
export type { PgValue } from './postgres/values.js';
export { secretLooking } from './redis/commands.js';
export type { RedisExchange } from './redis/types.js';
export { recognizeUdp } from './recognize.js';
export * as tlsNames from './tls/names.js';
export type { TlsExchange } from './tls/types.js';
export { ANALYZERS } from './registry.js';
export type { Analyzer, DatagramAnalyzer, Exchange, GrpcMessage, HttpRequestHalf, HttpResponseHalf, MessageHalf, ProtocolAnalyzer, Transaction } from './types.js';
