import type { ConnectionInfo } from '../../stream/index.js';
import { fingerprint, type Exchange, type PgExchange } from '../../protocols/index.js';
import type { PgRecordRequest, PgRecordResponse, PostgresFlow } from '../record.js';
import type { RecordModule } from './module.js';
import { boundedMemo, markIncomplete, spanEnvelope, type PartBuilder } from './part.js';
import { redactSqlSecrets } from './sql-secrets.js';

/** Fingerprints by SQL text: a service sends the same few statements again and again. Bounded. */
const fingerprintOf = boundedMemo(fingerprint, 10_000);

/** Statements that are not work: transaction control and session settings (issue 5, "Not redundant"). */
const TRANSACTION_CONTROL = /^(begin|start transaction|commit|end|rollback|abort|set|reset|savepoint|release|discard|show)\b/;

/** A PostgreSQL statement: same envelope, its own request/response shape, and session facts. Field order is the contract's. */
function build(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): PostgresFlow {
  const pg = (tx as PgExchange).postgres;
  const req = pg.request, resp = pg.response;
  const r: PostgresFlow = spanEnvelope('postgres', conn, n, req, resp);
  if (req) {
    const out = { start: req.start, end: req.end } as PgRecordRequest;
    if (b.opts.frames) out.frames = req.frames;
    out.size = req.size;
    out.message = req.message;
    if (req.query !== undefined) {
      // Passwords in the text (IDENTIFIED BY 'pw', PASSWORD 'pw') as keyed tokens, before the fingerprint and its cache see them.
      const red = b.opts.redactor;
      const sql = red ? redactSqlSecrets(req.query, (v) => red.token(v), 'postgres') : req.query;
      out.query = sql;
      out.fingerprint = fingerprintOf(sql);
    }
    if (req.statement !== undefined) out.statement = req.statement;
    if (req.portal) out.portal = req.portal;
    const pr = b.opts.redactParams;
    if (req.params) out.params = pr ? req.params.map((v) => (v === null ? null : pr.token(typeof v === 'string' ? v : JSON.stringify(v)))) : req.params;
    if (req.pid !== undefined) out.pid = req.pid;
    r.request = out;
  }
  if (resp) {
    const out: PgRecordResponse = { start: resp.start, end: resp.end, size: resp.size };
    if (b.opts.frames) out.frames = resp.frames;
    if (resp.command !== undefined) out.command = resp.command;
    if (resp.rows !== undefined) out.rows = resp.rows;
    if (resp.columns) out.columns = resp.columns;
    if (resp.preview) out.preview = resp.preview;
    if (resp.error) out.error = resp.error;
    if (resp.notices) out.notices = resp.notices;
    if (resp.copy) out.copy = resp.copy;
    if (resp.suspended) out.suspended = true;
    if (resp.empty) out.empty = true;
    r.response = out;
  }
  r.postgres = pg.notification ? { ...pg.session, notification: pg.notification } : pg.session;
  markIncomplete(r, tx.incomplete);
  return r;
}

/** PostgreSQL (frontend/backend protocol 3.0): a call is a statement, keyed by its fingerprint and parameters. */
export const postgres: RecordModule<PostgresFlow> = {
  protocol: 'postgres',
  title: 'PostgreSQL',
  column: 'pg',
  halves: 'sql',
  pathParams: false,
  build,
  operation: (r) => r.request?.fingerprint,
  callKey(r, dst) {
    const q = r.request;
    if (!q?.fingerprint) return undefined;
    return `pg ${dst} ${q.fingerprint} ${JSON.stringify(q.params ?? [])}`;
  },
  answer: (r) => {
    const p = r.response!;
    return [p.command, p.rows, p.preview, p.error?.code];
  },
  callName: (r, server, named) => `postgres ${r.request?.query ?? '?'}${named ? ` on ${server}` : ''}`,
  operationName: (op) => `postgres "${op}"`,
  failed: (r) => r.response?.error !== undefined,
  problem(r, dst) {
    const e = r.response?.error;
    return e ? { key: `pg ${dst} ${e.code}`, label: `SQLSTATE ${e.code} (${e.message})`, clientError: false } : undefined;
  },
  routine: (r) => (TRANSACTION_CONTROL.test(r.request?.fingerprint ?? '') ? 'transaction-control' : undefined),
  repeatDetail: (r) => ` with parameters ${JSON.stringify(r.request?.params ?? [])}`,
  outcome(r) {
    const e = r.response?.error;
    return { label: r.response ? (e ? e.code : 'ok') : 'no-response', error: e !== undefined };
  },
  rowCall(r) {
    const q = r.request;
    return q?.query?.replace(/\s+/g, ' ').trim() ?? (r.postgres?.notification ? `NOTIFY ${r.postgres.notification.channel}` : q?.message);
  },
  rowStatus(r) {
    const s = r.response;
    return s?.error ? `ERROR ${s.error.code}` : s?.command;
  },
  table(r) {
    const q = r.request, s = r.response;
    const notes: string[] = [];
    if (s?.rows !== undefined && s.command?.startsWith('SELECT')) notes.push(`${s.rows} rows`);
    if (s?.error) notes.push(`${s.error.severity} ${s.error.message}`);
    return {
      method: q?.message === 'Execute' ? 'EXEC' : q?.message === 'Query' ? 'QUERY' : (q?.message ?? '-').toUpperCase().slice(0, 7),
      status: s?.error ? s.error.code : s?.command?.split(' ')[0] ?? '-',
      what: q?.query?.replace(/\s+/g, ' ') ?? (r.postgres?.notification ? `NOTIFY ${r.postgres.notification.channel}` : ''),
      notes,
      tail: [],
    };
  },
  filterVariables: {},
};
