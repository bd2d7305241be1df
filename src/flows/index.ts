/**
 * flows/: the flow record (record.ts: one envelope plus one protocol part) and each protocol's
 * record module (protocols/: how its part is built, named, keyed, judged failed, shown and
 * filtered), body previews, redaction and HAR.
 */
export { FlowBuilder } from './build.js';
export { harEntry, harLog } from './har.js';
export { grpcStatusLabel } from './protocols/grpc.js';
export { pathTemplate } from './protocols/http.js';
export { keyPattern as redisKeyPattern } from './protocols/redis.js';
export { PROTOCOL_NAMES, RECORDS, httpHalves, recordModule, sqlHalves, type Problem } from './protocols/index.js';
export type { FlowRecord, GrpcCall, HttpFlowRecord, MysqlErrorRecord, MysqlFlow, MysqlRecordRequest, MysqlRecordResponse, MysqlSessionRecord, MysqlValue, Peer, PeerProcess, PgRecordRequest, PgRecordResponse, PgSessionRecord, RecordHalf, RedisFlow, RedisSessionRecord, RecordMessage, RecordRequest, RecordResponse, SqlFlow, StreamErrorRecord, TlsEndProcess, TlsFlow, TlsOrigin } from './record.js';
export { DEFAULT_REDACTED_HEADERS, Redactor, SECRET_NAME } from './redact.js';
// The protocol-specific value types a record's parts carry, for code above flows/ that renders them.
export type { PgNotice, PgValue, RawField } from '../protocols/index.js';
