import type { Exchange } from '../types.js';
import type { MysqlError } from './messages.js';
import type { MysqlValue } from './values.js';

export type { MysqlError } from './messages.js';
export type { MysqlValue } from './values.js';

/** Where a half lies in the capture: first and last packet times and frames, bytes on the wire. */
export interface MysqlSpan {
  start: number;
  end: number;
  frames: [number, number];
  /** Bytes on the wire, packet headers included. */
  size: number;
}

/** One MySQL command and its answer (or a login: COM_CONNECT). Either half may be missing. */
export interface MysqlTransaction {
  request?: MysqlSpan & {
    /** COM_QUERY, COM_STMT_EXECUTE … (enum_server_command); COM_CONNECT for the login. */
    command: string;
    /** The SQL: COM_QUERY's text (one statement of a multi-statement query), COM_STMT_PREPARE's, or an execute's through its statement id. */
    query?: string;
    /** COM_STMT_PREPARE's answer, COM_STMT_EXECUTE/CLOSE/RESET's target. */
    statementId?: number;
    /** COM_STMT_EXECUTE's binary parameters, decoded by the types the execute (or an earlier one) bound. */
    params?: MysqlValue[];
    /** COM_INIT_DB's database, the login's database. */
    database?: string;
    /** The login's user name (never any auth data). */
    user?: string;
    /** The login asked for TLS (SSLRequest): nothing after it can be read. */
    ssl?: true;
    /** Which result of a multi-statement query or multi-result execute this record is (0-based), when there are several. */
    part?: number;
  };
  response?: MysqlSpan & {
    /** Column names of the result set. */
    columns?: string[];
    /** Rows of the result set. */
    rows?: number;
    /** The first rows, values decoded (text protocol: as sent; binary protocol: by column type). */
    preview?: MysqlValue[][];
    /** OK packet: rows changed, and the AUTO_INCREMENT id. */
    affectedRows?: number;
    lastInsertId?: number;
    warnings?: number;
    /** ERR packet. */
    error?: MysqlError;
    /** COM_STMT_PREPARE_OK: the statement's parameter and column counts. */
    paramCount?: number;
    columnCount?: number;
  };
  session: {
    serverVersion?: string;
    connectionId?: number;
    user?: string;
    database?: string;
    /** The connection switched to TLS after the login's SSLRequest. */
    ssl?: true;
  };
}

/** What a MySQL session emits: protocol "mysql" and the command in `mysql`. */
export interface MysqlExchange extends Exchange {
  protocol: 'mysql';
  mysql: MysqlTransaction;
}
