import type { FlowOf, FlowRecord, HttpFlowRecord, Protocol, SqlFlow } from '../record.js';
import type { RecordModule } from './module.js';
import { grpc } from './grpc.js';
import { http } from './http.js';
import { http2 } from './http2.js';
import { mysql } from './mysql.js';
import { postgres } from './postgres.js';
import { redis } from './redis.js';
import { tls } from './tls.js';

export type { Problem, RecordModule, Routine } from './module.js';

/** The registry: one record module per protocol. A protocol missing here is a compile error. */
export const RECORDS: { readonly [P in Protocol]: RecordModule<FlowOf<P>> } = { http, http2, grpc, postgres, tls, redis, mysql };

/** Every protocol name, in registry order. */
export const PROTOCOL_NAMES = Object.keys(RECORDS) as Protocol[];

/** The module for a record's protocol (one property read), typed to take that record. */
export function recordModule(r: FlowRecord): RecordModule {
  return RECORDS[r.protocol] as unknown as RecordModule;
}

/** The module for a protocol name a session emitted, or undefined for one tapwire does not record. */
export function moduleFor(protocol: string): RecordModule | undefined {
  return Object.hasOwn(RECORDS, protocol) ? RECORDS[protocol as Protocol] as unknown as RecordModule : undefined;
}

/** Whether the flow's halves are HTTP messages (headers, bodies), as its module says. */
export function httpHalves(r: FlowRecord): r is HttpFlowRecord {
  return RECORDS[r.protocol].halves === 'http';
}

/** Whether the flow's halves are a SQL statement and its result (PostgreSQL, MySQL), as its module says. */
export function sqlHalves(r: FlowRecord): r is SqlFlow {
  return RECORDS[r.protocol].halves === 'sql';
}
