import type { ConnectionInfo } from '../../stream/index.js';
import type { Exchange } from '../../protocols/index.js';
import type { FlowRecord } from '../record.js';
import type { PartBuilder } from './part.js';

/** What went wrong on a flow, for `error-status`: a grouping key, a label, and whether it is the client's fault (4xx). */
export interface Problem {
  key: string;
  label: string;
  clientError: boolean;
}

/** Why a call is expected to repeat, or undefined for real work. */
export type Routine = 'transaction-control' | 'health-check' | undefined;

/**
 * Everything tapwire's upper layers need to know about one protocol's part of a flow record
 * (../shared/STYLE.md "Records"). verify/, query/, the MCP rows and the CLI table ask this module; none of
 * them tests a protocol's name.
 */
export interface RecordModule<F extends FlowRecord = FlowRecord> {
  readonly protocol: F['protocol'];
  /** The protocol's name in prose ("PostgreSQL") and in the table's narrow proto column ("pg"). */
  readonly title: string;
  readonly column: string;
  /**
   * What the halves are: HTTP messages (headers, bodies: HAR, redaction, OpenAPI and header checks
   * apply), SQL statements and results, a handshake's hellos (TLS: no message content at all), or
   * a command and its typed reply (Redis: no headers, bodies or SQL).
   */
  readonly halves: 'http' | 'sql' | 'handshake' | 'command';
  /** Whether request paths carry parameters as segments (REST paths: N+1 groups them by slug). */
  readonly pathParams: boolean;
  /** The record, from a session's exchange of this protocol: envelope, halves, the protocol's own block. */
  build(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): F;
  /** What the call is, without its parameters ("GET /orders/{id}", "/pkg.Svc/M", a SQL fingerprint). */
  operation(r: F): string | undefined;
  /** Identical calls have identical keys (redundant-call, retries); `dst` is the server's address. */
  callKey(r: F, dst: string): string | undefined;
  /** What the call got back, as a value to hash: identical answers to identical calls. */
  answer(r: F): unknown;
  /** The call in a finding's summary; `server` is the server's name (or address), `named` whether it is a name. */
  callName(r: F, server: string, named: boolean): string;
  /** An operation (see `operation`) and the server's name, as a detector names them. */
  operationName(op: string, server: string): string;
  /** A failure a client may retry, or no answer at all. */
  failed(r: F): boolean;
  /** What went wrong, for `error-status`; `dst` is the server's address. */
  problem(r: F, dst: string): Problem | undefined;
  /** Calls that are expected to repeat and are not work: transaction control, health checks. */
  routine(r: F): Routine;
  /**
   * The server is itself a cache (Redis): the same call repeated across inbound requests is the
   * cache being read as meant, not a copy the client should have kept (redundant-call). Unset: false.
   */
  readonly cacheServer?: boolean;
  /**
   * Whether the call waits by design (a blocking pop, WAIT): its duration is how long nothing
   * came, not a latency, so `slow` leaves it out. Unset: no call waits.
   */
  blocking?(r: F): boolean;
  /** Extra words for a redundant-call summary (the SQL parameters). */
  repeatDetail(r: F): string;
  /** The status as `tapwire diff` compares it, and whether it is an error (5xx, gRPC non-OK, SQL error). */
  outcome(r: F): { label: string; error: boolean };
  /** The `call` and `status` columns of a flow row (MCP list_flows, get_flow's first line). */
  rowCall(r: F): string | undefined;
  rowStatus(r: F): string | undefined;
  /** The CLI table's method, status and what columns, and the notes after them. */
  table(r: F): { method: string; status: string; what: string; notes: string[]; tail: string[] };
  /** Filter (CEL) variables this protocol adds, besides its name as a bool: name → string value. */
  readonly filterVariables: Readonly<Record<string, (r: F) => string>>;
}
