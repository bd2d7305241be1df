import type { ConnectionInfo } from '../../stream/index.js';
import { mysqlFingerprint, type Exchange, type MysqlExchange } from '../../protocols/index.js';
import type { MysqlFlow, MysqlRecordRequest, MysqlRecordResponse, MysqlSessionRecord } from '../record.js';
import type { RecordModule } from './module.js';
import { boundedMemo, markIncomplete, spanEnvelope, type PartBuilder } from './part.js';
import { redactSqlSecrets } from './sql-secrets.js';

/** Fingerprints by SQL text: a service sends the same few statements again and again. Bounded. */
const fingerprintOf = boundedMemo(mysqlFingerprint, 10_000);

/**
 * Statements that are not work: transaction control and session settings (issue 5, "Not
 * redundant"), MySQL's spelling (SET autocommit=0, XA, LOCK TABLES; 15.3 "Transactional and
 * Locking Statements" of the MySQL manual), as PostgreSQL's module does.
 */
const TRANSACTION_CONTROL = /^(begin|start transaction|commit|rollback|set|savepoint|release|xa|lock tables?|unlock tables?|show|use)\b/;
/** Queries pools and health checks send to see the server is there (SELECT 1, SELECT @@version …). */
const HEALTH_SQL = /^select (\?|@@[\w.]+|version\(\)|database\(\)|connection_id\(\))( limit \?)?$/;
/**
 * Commands that are not a statement: the login, pings, database switches, statement housekeeping
 * and connection settings. They repeat by design (a pool pings and resets; a driver prepares and
 * closes around its executes).
 */
const SETUP = new Set([
  'COM_CONNECT', 'COM_PING', 'COM_INIT_DB', 'COM_QUIT', 'COM_CHANGE_USER', 'COM_RESET_CONNECTION', 'COM_SET_OPTION',
  'COM_STATISTICS', 'COM_STMT_PREPARE', 'COM_STMT_CLOSE', 'COM_STMT_RESET', 'COM_DEBUG', 'COM_SLEEP',
]);

/** A MySQL command and its answer: same envelope, the halves, and the session. Field order is the contract's. */
function build(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): MysqlFlow {
  const x = (tx as MysqlExchange).mysql;
  const req = x.request, resp = x.response;
  const r: MysqlFlow = spanEnvelope('mysql', conn, n, req, resp);
  if (req) {
    const out = { start: req.start, end: req.end } as MysqlRecordRequest;
    if (b.opts.frames) out.frames = req.frames;
    out.size = req.size;
    out.command = req.command;
    if (req.query !== undefined) {
      // Passwords in the text (IDENTIFIED BY 'pw', PASSWORD 'pw') as keyed tokens, before the fingerprint and its cache see them.
      const red = b.opts.redactor;
      const sql = red ? redactSqlSecrets(req.query, (v) => red.token(v), 'mysql') : req.query;
      out.query = sql;
      out.fingerprint = fingerprintOf(sql);
    }
    if (req.statementId !== undefined) out.statementId = req.statementId;
    const pr = b.opts.redactParams;
    if (req.params) out.params = pr ? req.params.map((v) => (v === null ? null : pr.token(typeof v === 'string' ? v : JSON.stringify(v)))) : req.params;
    if (req.database !== undefined) out.database = req.database;
    if (req.user !== undefined) out.user = req.user;
    if (req.ssl) out.ssl = true;
    if (req.part !== undefined) out.part = req.part;
    r.request = out;
  }
  if (resp) {
    const out: MysqlRecordResponse = { start: resp.start, end: resp.end, size: resp.size };
    if (b.opts.frames) out.frames = resp.frames;
    if (resp.columns) out.columns = resp.columns;
    if (resp.rows !== undefined) out.rows = resp.rows;
    if (resp.preview) out.preview = resp.preview;
    if (resp.affectedRows !== undefined) out.affectedRows = resp.affectedRows;
    if (resp.lastInsertId !== undefined) out.lastInsertId = resp.lastInsertId;
    if (resp.warnings !== undefined) out.warnings = resp.warnings;
    if (resp.error) {
      const e = resp.error;
      out.error = e.sqlstate !== undefined ? { code: e.code, sqlstate: e.sqlstate, message: e.message } : { code: e.code, message: e.message };
    }
    if (resp.paramCount !== undefined) out.paramCount = resp.paramCount;
    if (resp.columnCount !== undefined) out.columnCount = resp.columnCount;
    r.response = out;
  }
  const s = x.session, own: MysqlSessionRecord = {};
  if (s.serverVersion !== undefined) own.serverVersion = s.serverVersion;
  if (s.connectionId !== undefined) own.connectionId = s.connectionId;
  if (s.user !== undefined) own.user = s.user;
  if (s.database !== undefined) own.database = s.database;
  if (s.ssl) own.ssl = true;
  if (Object.keys(own).length > 0) r.mysql = own;
  markIncomplete(r, tx.incomplete);
  return r;
}

/** The statement a command runs (a query's or an execute's SQL), not its preparation. */
function statement(r: MysqlFlow): string | undefined {
  const q = r.request;
  return q?.command === 'COM_QUERY' || q?.command === 'COM_STMT_EXECUTE' ? q.fingerprint : undefined;
}

function callText(r: MysqlFlow): string | undefined {
  const q = r.request;
  if (!q) return undefined;
  if (q.query !== undefined) return q.query.replace(/\s+/g, ' ').trim();
  if (q.command === 'COM_CONNECT') return `login ${q.user ?? '?'}${q.database ? ` to ${q.database}` : ''}`;
  return q.database !== undefined ? `${q.command} ${q.database}` : q.command;
}

/** MySQL / MariaDB (client/server protocol): a call is a statement, keyed by its fingerprint and parameters. */
export const mysql: RecordModule<MysqlFlow> = {
  protocol: 'mysql',
  title: 'MySQL',
  column: 'mysql',
  halves: 'sql',
  pathParams: false,
  build,
  operation: (r) => statement(r) ?? r.request?.command,
  callKey(r, dst) {
    const q = r.request;
    if (!q) return undefined;
    // The command is part of the key: a prepare and an execute of one statement are different calls.
    if (q.fingerprint !== undefined) return `mysql ${dst} ${q.command} ${q.fingerprint} ${JSON.stringify(q.params ?? [])}`;
    return `mysql ${dst} ${q.command} ${JSON.stringify([q.user ?? null, q.database ?? null, q.statementId ?? null])}`;
  },
  answer: (r) => {
    const p = r.response!;
    return [p.rows, p.preview, p.affectedRows, p.error?.code];
  },
  callName: (r, server, named) => `mysql ${callText(r) ?? '?'}${named ? ` on ${server}` : ''}`,
  operationName: (op) => `mysql "${op}"`,
  failed: (r) => r.response?.error !== undefined,
  problem(r, dst) {
    const e = r.response?.error;
    return e ? { key: `mysql ${dst} ${e.code}`, label: `MySQL error ${e.code}${e.sqlstate ? ` (SQLSTATE ${e.sqlstate})` : ''} (${e.message})`, clientError: false } : undefined;
  },
  routine(r) {
    const q = r.request;
    if (!q) return undefined;
    if (SETUP.has(q.command)) return 'health-check';
    const fp = q.fingerprint ?? '';
    return TRANSACTION_CONTROL.test(fp) ? 'transaction-control' : HEALTH_SQL.test(fp) ? 'health-check' : undefined;
  },
  repeatDetail: (r) => ` with parameters ${JSON.stringify(r.request?.params ?? [])}`,
  outcome(r) {
    const e = r.response?.error;
    return { label: r.response ? (e ? String(e.code) : 'ok') : 'no-response', error: e !== undefined };
  },
  rowCall: callText,
  rowStatus(r) {
    const s = r.response;
    if (!s) return undefined;
    if (s.error) return `ERROR ${s.error.code}`;
    return s.rows !== undefined ? `${s.rows} rows` : s.affectedRows !== undefined ? `OK ${s.affectedRows}` : 'OK';
  },
  table(r) {
    const q = r.request, s = r.response;
    const notes: string[] = [];
    if (s?.rows !== undefined) notes.push(`${s.rows} rows`);
    else if (s?.affectedRows) notes.push(`${s.affectedRows} affected`);
    if (s?.error) notes.push(`${s.error.sqlstate ? `${s.error.sqlstate} ` : ''}${s.error.message}`);
    if (q?.params?.length) notes.push(`params ${JSON.stringify(q.params).slice(0, 60)}`);
    const method = q ? (q.command === 'COM_CONNECT' ? 'LOGIN' : q.command.replace(/^COM_(STMT_)?/, '').slice(0, 7)) : '-';
    return {
      method,
      status: s?.error ? String(s.error.code) : s ? 'OK' : '-',
      what: callText(r) ?? '',
      notes,
      tail: [],
    };
  },
  filterVariables: {},
};
