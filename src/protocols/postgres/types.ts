import type { Exchange } from '../types.js';
import type { PgValue } from './values.js';

/** A PostgreSQL server error or notice (ErrorResponse / NoticeResponse fields). */
export interface PgNotice {
  severity: string;
  /** SQLSTATE, e.g. 22012. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character position in the query. */
  position?: number;
}

/** One executed PostgreSQL statement (or a cancel, a function call, a notification). */
export interface PgTransaction {
  request?: {
    start: number;
    end: number;
    frames: [number, number];
    /** Bytes of the frontend messages that made up the request. */
    size: number;
    /** Query (simple protocol), Execute (extended), FunctionCall, CancelRequest. */
    message: 'Query' | 'Execute' | 'FunctionCall' | 'CancelRequest';
    query?: string;
    statement?: string;
    portal?: string;
    params?: PgValue[];
    /** Backend pid a CancelRequest targets. */
    pid?: number;
  };
  response?: {
    start: number;
    end: number;
    frames: [number, number];
    size: number;
    /** CommandComplete tag, e.g. "SELECT 1", "INSERT 0 1". */
    command?: string;
    rows?: number;
    columns?: string[];
    /** The first rows, values decoded as text or by type. */
    preview?: PgValue[][];
    error?: PgNotice;
    notices?: PgNotice[];
    copy?: { direction: 'in' | 'out' | 'both'; bytes: number; rows: number };
    /** Execute stopped at its row limit (PortalSuspended). */
    suspended?: true;
    empty?: true;
  };
  notification?: { pid: number; channel: string; payload: string };
  session: { database?: string; user?: string; application?: string; auth?: string; transaction?: 'idle' | 'transaction' | 'failed' };
}

/** What a PostgreSQL session emits: protocol "postgres" and the statement in `postgres`. */
export interface PgExchange extends Exchange {
  protocol: 'postgres';
  postgres: PgTransaction;
}
