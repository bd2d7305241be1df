/*
 * One small pure parser per MySQL message, over the kept bytes of exactly that payload
 * (PAGE_PROTOCOL.html: page_protocol_connection_phase_packets_*, page_protocol_basic_ok_packet,
 * _err_packet, _eof_packet, page_protocol_com_query_response_text_resultset*,
 * page_protocol_com_stmt_prepare, page_protocol_com_stmt_execute). Each returns undefined when the
 * payload is too short for it: never a throw. Authentication data is skipped, never returned.
 */
import { binaryValue, BINARY_CHARSET, textValue, type MysqlValue } from './values.js';
import { type Cursor, parse } from './wire.js';

/** Capability flags ("Capabilities Flags", group__group__cs__capabilities__flags). */
export const CAP = {
  LONG_PASSWORD: 0x1, CONNECT_WITH_DB: 0x8, PROTOCOL_41: 0x200, SSL: 0x800, TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000, MULTI_STATEMENTS: 0x10000, MULTI_RESULTS: 0x20000, PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000, CONNECT_ATTRS: 0x100000, PLUGIN_AUTH_LENENC_DATA: 0x200000, SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
} as const;

/**
 * MariaDB's capabilities past the 32 bits (sent in reserved bytes when CLIENT_MYSQL, bit 0, is off;
 * MariaDB's "Connection" page): the extended column metadata adds a string to each column definition.
 */
export const MARIADB_CAP = { EXTENDED_METADATA: 0x8 } as const;

/** Server status flags (SERVER_STATUS_flags_enum). */
export const STATUS = { IN_TRANS: 0x1, AUTOCOMMIT: 0x2, MORE_RESULTS_EXISTS: 0x8 } as const;

/** Command bytes (enum_server_command, my_command.h). */
export const COMMAND = {
  COM_SLEEP: 0x00, COM_QUIT: 0x01, COM_INIT_DB: 0x02, COM_QUERY: 0x03, COM_FIELD_LIST: 0x04, COM_CREATE_DB: 0x05,
  COM_DROP_DB: 0x06, COM_REFRESH: 0x07, COM_SHUTDOWN: 0x08, COM_STATISTICS: 0x09, COM_PROCESS_INFO: 0x0a,
  COM_CONNECT: 0x0b, COM_PROCESS_KILL: 0x0c, COM_DEBUG: 0x0d, COM_PING: 0x0e, COM_TIME: 0x0f, COM_DELAYED_INSERT: 0x10,
  COM_CHANGE_USER: 0x11, COM_BINLOG_DUMP: 0x12, COM_TABLE_DUMP: 0x13, COM_CONNECT_OUT: 0x14, COM_REGISTER_SLAVE: 0x15,
  COM_STMT_PREPARE: 0x16, COM_STMT_EXECUTE: 0x17, COM_STMT_SEND_LONG_DATA: 0x18, COM_STMT_CLOSE: 0x19,
  COM_STMT_RESET: 0x1a, COM_SET_OPTION: 0x1b, COM_STMT_FETCH: 0x1c, COM_DAEMON: 0x1d, COM_BINLOG_DUMP_GTID: 0x1e,
  COM_RESET_CONNECTION: 0x1f, COM_STMT_BULK_EXECUTE: 0xfa,
} as const;

export const COMMAND_NAME: ReadonlyMap<number, string> = new Map(Object.entries(COMMAND).map(([k, v]) => [v, k]));

/** Packet headers ("Generic Response Packets"). */
export const HEADER = { OK: 0x00, LOCAL_INFILE: 0xfb, EOF: 0xfe, ERR: 0xff } as const;

/** Column definition flag for unsigned integers (UNSIGNED_FLAG). */
const UNSIGNED_FLAG = 0x20;

export interface Greeting {
  version: string;
  connectionId: number;
  capabilities: number;
  /** MariaDB's extended capabilities (MARIADB_CAP), 0 from MySQL. */
  mariadbCaps: number;
  plugin?: string;
}

/** Protocol::HandshakeV10: the server's first packet. */
export function parseGreeting(b: Buffer): Greeting | undefined {
  return parse(b, (c) => {
    if (c.u8() !== 10) return undefined;
    const version = c.nulstr().toString('latin1');
    const connectionId = c.u32();
    c.skip(8 + 1); // auth-plugin-data-part-1, filler
    let capabilities = c.u16();
    if (c.left === 0) return { version, connectionId, capabilities, mariadbCaps: 0 };
    c.skip(1 + 2); // character set, status flags
    capabilities |= c.u16() << 16;
    const authLen = c.u8();
    c.skip(6);
    const mariadbCaps = capabilities & 1 ? 0 : c.u32();
    if (capabilities & 1) c.skip(4);
    if (capabilities & CAP.SECURE_CONNECTION) c.skip(Math.min(c.left, Math.max(13, authLen - 8)));
    const plugin = capabilities & CAP.PLUGIN_AUTH && c.left > 0 ? c.nulstr().toString('latin1') : undefined;
    return { version, connectionId, capabilities: capabilities >>> 0, mariadbCaps, ...(plugin ? { plugin } : {}) };
  });
}

export interface Login {
  capabilities: number;
  /** MariaDB's extended capabilities the client asked for (MARIADB_CAP), 0 from a MySQL client. */
  mariadbCaps?: number;
  /** Protocol::SSLRequest: the rest of the connection is TLS. */
  ssl?: true;
  user?: string;
  database?: string;
  plugin?: string;
}

/**
 * Protocol::HandshakeResponse41 (or 320 from a pre-4.1 client), or an SSLRequest: the same first 32
 * bytes and nothing after them. The auth response is skipped, never kept.
 */
export function parseLogin(b: Buffer): Login | undefined {
  return parse(b, (c) => {
    const caps16 = c.u16();
    if (!(caps16 & CAP.PROTOCOL_41)) {
      // HandshakeResponse320: capabilities int<2>, max packet int<3>, user, auth, database.
      c.skip(3);
      const user = c.nulstr().toString('utf8');
      return { capabilities: caps16, user };
    }
    c.p = 0;
    const capabilities = c.u32();
    c.skip(4 + 1 + 19);
    const mariadbCaps = capabilities & 1 ? 0 : c.u32();
    if (capabilities & 1) c.skip(4);
    if (c.left === 0) return capabilities & CAP.SSL ? { capabilities, ssl: true } : undefined;
    const user = c.nulstr().toString('utf8');
    if (capabilities & CAP.PLUGIN_AUTH_LENENC_DATA) c.lenstr();
    else if (capabilities & CAP.SECURE_CONNECTION) c.skip(c.u8());
    else c.nulstr();
    const out: Login = { capabilities, user };
    if (mariadbCaps) out.mariadbCaps = mariadbCaps;
    if (capabilities & CAP.CONNECT_WITH_DB && c.left > 0) {
      const db = c.nulstr().toString('utf8');
      if (db) out.database = db;
    }
    if (capabilities & CAP.PLUGIN_AUTH && c.left > 0) out.plugin = c.nulstr().toString('latin1');
    return out;
  });
}

export interface Ok {
  affectedRows: number;
  lastInsertId: number;
  status: number;
  warnings: number;
}

/** OK_Packet (header 0x00, or 0xfe ending a result set under CLIENT_DEPRECATE_EOF). */
export function parseOk(b: Buffer): Ok | undefined {
  return parse(b, (c) => {
    c.skip(1);
    const affectedRows = c.lenenc() ?? 0;
    const lastInsertId = c.lenenc() ?? 0;
    const status = c.left >= 2 ? c.u16() : 0;
    const warnings = c.left >= 2 ? c.u16() : 0;
    return { affectedRows, lastInsertId, status, warnings };
  });
}

/** EOF_Packet: header 0xfe, warnings, status (4.1). */
export function parseEof(b: Buffer): { status: number; warnings: number } | undefined {
  return parse(b, (c) => {
    c.skip(1);
    if (c.left < 4) return { status: 0, warnings: 0 };
    const warnings = c.u16();
    return { warnings, status: c.u16() };
  });
}

export interface MysqlError {
  /** The server's error number: 1045, 1062, 1146 … */
  code: number;
  /** Five-character SQLSTATE, absent before 4.1 and in some handshake errors. */
  sqlstate?: string;
  message: string;
}

/** ERR_Packet: 0xff, error code, optional '#' + SQLSTATE, message. */
export function parseErr(b: Buffer, limit: number): MysqlError | undefined {
  return parse(b, (c) => {
    c.skip(1);
    const code = c.u16();
    let sqlstate: string | undefined;
    if (c.left >= 6 && c.b[c.p] === 0x23) {
      c.skip(1);
      sqlstate = c.bytes(5).toString('latin1');
    }
    const message = c.rest().toString('utf8');
    return { code, ...(sqlstate ? { sqlstate } : {}), message: message.length > limit ? `${message.slice(0, limit)}…` : message };
  });
}

/** A packet that ends a result set or a list: 0xfe and shorter than a row that starts so can be. */
export function isEnd(p: { payload: Buffer; length: number }): boolean {
  return p.payload[0] === HEADER.EOF && p.length < 0xffffff;
}

/** An EOF_Packet proper (5 bytes in 4.1, 1 before), as opposed to an OK with the 0xfe header. */
export function isEof(p: { payload: Buffer; length: number }): boolean {
  return p.payload[0] === HEADER.EOF && p.length < 9;
}

export interface Column {
  name: string;
  type: number;
  flags: number;
  charset: number;
}

/**
 * Protocol::ColumnDefinition41 (catalog … name, org_name, fixed fields). `extended`: MariaDB's
 * extended metadata was agreed at the login, so a string of it precedes the fixed fields; when the
 * login was not seen, a byte other than the fixed fields' length (always 0x0c) there says the same.
 */
export function parseColumn(b: Buffer, extended = false): Column | undefined {
  return parse(b, (c) => {
    for (let i = 0; i < 4; i++) c.lenstr(); // catalog, schema, table, org_table
    const name = (c.lenstr() ?? Buffer.alloc(0)).toString('utf8');
    c.lenstr(); // org_name
    if (extended || (c.left > 0 && c.b[c.p] !== 0x0c)) c.lenstr(); // MariaDB's extended type info
    c.lenenc(); // length of the fixed fields (0x0c)
    const charset = c.u16();
    c.skip(4); // column length
    const type = c.u8();
    const flags = c.u16();
    return { name, type, flags, charset };
  });
}

/** A text-protocol row: one string<lenenc> (or 0xfb NULL) per column. */
export function parseTextRow(b: Buffer, cols: readonly Column[], limit: number): MysqlValue[] | undefined {
  return parse(b, (c) => cols.map((col) => textValue(c.lenstr(), col.charset === BINARY_CHARSET && col.type >= 249, limit)));
}

/** A binary-protocol row: 0x00, a NULL bitmap offset by 2 bits, then the non-NULL values. */
export function parseBinaryRow(b: Buffer, cols: readonly Column[], limit: number): MysqlValue[] | undefined {
  return parse(b, (c) => {
    if (c.u8() !== 0x00) return undefined;
    const bitmap = c.bytes((cols.length + 7 + 2) >> 3);
    return cols.map((col, i) => {
      const bit = i + 2;
      if (bitmap[bit >> 3]! & (1 << (bit & 7))) return null;
      return binaryValue(c, col.type, (col.flags & UNSIGNED_FLAG) !== 0, col.charset === BINARY_CHARSET, limit);
    });
  });
}

export interface PrepareOk {
  statementId: number;
  columns: number;
  params: number;
}

/** COM_STMT_PREPARE_OK: 0x00, statement id, column and parameter counts. */
export function parsePrepareOk(b: Buffer): PrepareOk | undefined {
  return parse(b, (c) => {
    c.skip(1);
    const statementId = c.u32();
    const columns = c.u16();
    const params = c.u16();
    return { statementId, columns, params };
  });
}

export interface Execute {
  statementId: number;
  /** Parameter types (type byte, 0x80 in the second byte for unsigned), from this execute or an earlier one. */
  types?: number[];
  params?: MysqlValue[];
}

/**
 * COM_STMT_EXECUTE: statement id, flags, iteration count, then for `paramCount` parameters a NULL
 * bitmap, new-params-bound flag, the types (when bound anew; else the previous execute's, `prev`)
 * and the values. Without the parameter count (statement prepared outside the capture) only the id is read.
 */
export function parseExecute(b: Buffer, paramCount: number | undefined, prev: number[] | undefined, limit: number): Execute | undefined {
  return parse(b, (c) => {
    c.skip(1);
    const statementId = c.u32();
    c.skip(1 + 4);
    if (paramCount === undefined) return { statementId };
    if (paramCount === 0) return { statementId, params: [] };
    const nulls = c.bytes((paramCount + 7) >> 3);
    const bound = c.u8();
    let types = prev;
    if (bound === 1) {
      types = [];
      for (let i = 0; i < paramCount; i++) types.push(c.u16());
    }
    if (!types || types.length !== paramCount) return { statementId };
    const params = decodeParams(c, types, nulls, limit);
    return { statementId, types, ...(params ? { params } : {}) };
  });
}

function decodeParams(c: Cursor, types: number[], nulls: Buffer, limit: number): MysqlValue[] | undefined {
  const out: MysqlValue[] = [];
  for (let i = 0; i < types.length; i++) {
    if (nulls[i >> 3]! & (1 << (i & 7))) {
      out.push(null);
      continue;
    }
    // Values cut by the kept-bytes limit end the list: what was read is still shown.
    const at = c.p;
    try {
      out.push(binaryValue(c, types[i]! & 0xff, (types[i]! & 0x8000) !== 0, false, limit));
    } catch {
      c.p = at;
      return out.length ? out : undefined;
    }
  }
  return out;
}
