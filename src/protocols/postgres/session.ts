import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import type { PgExchange, PgNotice, PgTransaction } from './types.js';
import {
  BACKEND, FRONTEND, MessageReader, STARTUP, TruncatedMessage, findReadyForQuery, findSync, parseAuthentication, parseBind,
  parseCommandComplete, parseCopyResponse, parseDataRow, parseExecute, parseFields, parseNotification, parseParameterDescription,
  parseParse, parseQuery, parseReadyForQuery, parseRowDescription, parseStartup, parseTarget, type Column, type Message,
} from './messages.js';
import { decodeValue, type PgValue } from './values.js';

const DEFAULT_PREVIEW_ROWS = 5;
/** Statements and portals remembered per connection (bounded: a client may prepare without end). */
const MAX_NAMED = 10_000;
export const UNKNOWN_PREPARED = 'query unknown (prepared before capture)';

interface Mark {
  time: number;
  frame: number;
}

/** A frontend message that the backend answers, queued in order (the protocol answers in order). */
type Op =
  | { kind: 'query'; sql: string; parts: string[]; index: number; at: Mark; size: number }
  | { kind: 'execute'; portal: string; statement: string; sql?: string; params: PgValue[]; at: Mark; size: number }
  | { kind: 'parse' | 'bind' | 'close' | 'sync' | 'function'; at: Mark; size: number }
  | { kind: 'describe'; target: 'S' | 'P'; name: string; at: Mark; size: number };

/** The result being collected for the op at the head of the queue. */
interface Result {
  start?: Mark;
  columns?: Column[];
  rows: number;
  preview: PgValue[][];
  notices: PgNotice[];
  copy?: { direction: 'in' | 'out' | 'both'; bytes: number; rows: number; text: boolean };
  size: number;
}

/**
 * PostgreSQL protocol 3.0 on one connection (PostgreSQL docs, chapter "Frontend/Backend Protocol":
 * protocol-flow.html for the message flow, protocol-message-formats.html for each message).
 * Frontend messages are queued in order; backend messages answer the head of the queue, because
 * the backend answers strictly in order, also when the client pipelines ("Pipelining"). A record
 * is emitted per executed statement (each statement of a multi-statement Query, each Execute),
 * with the SQL text — from the named statement for Execute — parameters, result, error and timing. Credentials never leave the
 * message parsers. After a gap or garbage, each direction resynchronises at the next Sync /
 * ReadyForQuery and what was in flight is emitted incomplete.
 */
export class PgSession implements ProtocolSession {
  private readonly fe: MessageReader;
  private readonly be: MessageReader;
  private readonly at: [StreamMeta, StreamMeta] = [
    { time: 0, frame: 0, offset: 0, peerAck: -1 }, { time: 0, frame: 0, offset: 0, peerAck: -1 },
  ];
  private readonly session: PgTransaction['session'] = {};
  private readonly statements = new Map<string, { sql: string; types: number[] }>();
  private readonly portals = new Map<string, { statement: string; params: PgValue[] }>();
  private queue: Op[] = [];
  private result: Result = freshResult();
  /** After an error in an extended-protocol batch, the backend discards messages up to Sync (docs, "Extended Query"). */
  private skipping = false;
  private encrypted = false;
  private lost: [boolean, boolean] = [false, false];
  private ended = false;
  private readonly previewRows: number;
  /** Bytes of Parse/Bind/Describe sent since the last Execute: part of the next statement's request. */
  private preparing = 0;

  constructor(private readonly ctx: SessionContext) {
    const mid = !ctx.conn.handshakeSeen || ctx.resync === true;
    this.fe = new MessageReader(true, !mid, (m) => this.onFrontend(m));
    this.be = new MessageReader(false, false, (m) => this.onBackend(m), (b, off) => this.onAnswer(b, off));
    this.previewRows = ctx.options.previewRows ?? DEFAULT_PREVIEW_ROWS;
    // Caught mid-connection, neither direction starts at a message boundary we can trust.
    if (mid) this.lost = [true, true];
  }

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.ended || this.encrypted) return;
    const at = this.at[dir];
    at.time = meta.time; at.frame = meta.frame; at.offset = meta.offset; at.peerAck = meta.peerAck;
    let b = bytes;
    let off = meta.offset;
    if (this.lost[dir]) {
      // Frontend: after the next Sync; backend: after the next ReadyForQuery. Both end a batch
      // ("Extended Query"), so what follows starts a new statement with no state carried over.
      const p = dir === 0 ? findSync(b) : findReadyForQuery(b);
      if (p < 0) return;
      this.lost[dir] = false;
      const r = dir === 0 ? this.fe : this.be;
      r.resume();
      if (dir === 0) this.fe.typed();
      if (dir === 1) this.flushQueue('gap');
      b = b.subarray(p);
      off += p;
    }
    const r = dir === 0 ? this.fe : this.be;
    r.push(b, off);
    if (r.broken) this.lose(dir, r.brokenCode, r.broken, off);
  }

  gap(dir: Dir, _length: number, meta: StreamMeta): void {
    if (this.ended || this.encrypted) return;
    this.lose(dir, undefined, 'gap', meta.offset);
  }

  fin(): void {}

  end(_time: number, reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    this.flushQueue(reason === 'eof' ? 'capture-ended' : 'connection-closed');
  }

  private lose(dir: Dir, code: string | undefined, reason: string, offset: number): void {
    if (code) this.ctx.violation(code, `${dir === 0 ? 'frontend' : 'backend'}: ${reason}`, offset);
    this.lost[dir] = true;
    (dir === 0 ? this.fe : this.be).resume();
  }

  private mark(dir: Dir): Mark {
    return { time: this.at[dir].time, frame: this.at[dir].frame };
  }

  // ---- frontend ------------------------------------------------------------------------------

  private onFrontend(m: Message): void {
    try {
      this.frontend(m);
    } catch (err) {
      if (!(err instanceof TruncatedMessage)) throw err;
      this.ctx.violation('pg.truncated_message', `frontend message '${m.type ? String.fromCharCode(m.type) : 'startup'}' is shorter than its fields (${err.message})`, m.offset);
    }
  }

  private frontend(m: Message): void {
    const at = this.mark(0);
    const size = m.body.length + (m.type ? 5 : 4);
    if (m.type === 0) {
      const s = parseStartup(m.body);
      if (s.code === STARTUP.SSL || s.code === STARTUP.GSSENC) {
        // A one-byte answer follows, not a message ("SSL Session Encryption", "GSSAPI Session
        // Encryption"): 'S'/'G' switches to encryption, 'N' carries on in clear.
        this.be.expectAnswerByte = true;
      } else if (s.code === STARTUP.CANCEL) {
        this.emit({ request: { start: at.time, end: at.time, frames: [at.frame, at.frame], size, message: 'CancelRequest', pid: Number(s.params.pid) } });
      } else if (s.code === STARTUP.PROTOCOL_3_0) {
        this.session.user = s.params.user;
        this.session.database = s.params.database ?? s.params.user;
        if (s.params.application_name) this.session.application = s.params.application_name;
        this.fe.typed();
      } else {
        this.ctx.violation('pg.unknown_startup', `startup code ${s.code} is not protocol 3.0, SSL, GSSENC or cancel`, m.offset);
      }
      return;
    }
    switch (m.type) {
      case FRONTEND.Query: {
        const sql = parseQuery(m.body);
        this.queue.push({ kind: 'query', sql, parts: splitStatements(sql), index: 0, at, size });
        return;
      }
      case FRONTEND.Parse: {
        const p = parseParse(m.body);
        remember(this.statements, p.name, { sql: p.sql, types: p.paramTypes });
        this.queue.push({ kind: 'parse', at, size });
        this.preparing += size;
        return;
      }
      case FRONTEND.Bind: {
        const b = parseBind(m.body);
        const types = this.statements.get(b.statement)?.types ?? [];
        const params = b.values.map((v, i) => decodeValue(v, b.formats[i] ?? 0, types[i]));
        remember(this.portals, b.portal, { statement: b.statement, params });
        this.queue.push({ kind: 'bind', at, size });
        this.preparing += size;
        return;
      }
      case FRONTEND.Describe: {
        const t = parseTarget(m.body);
        this.queue.push({ kind: 'describe', target: t.kind, name: t.name, at, size });
        this.preparing += size;
        return;
      }
      case FRONTEND.Execute: {
        // Execute names a portal; the portal's Bind named the statement and its Parse the SQL
        // ("Extended Query"), so the record carries the SQL and parameters of this run.
        const e = parseExecute(m.body);
        const portal = this.portals.get(e.portal);
        const statement = portal?.statement ?? '';
        const sql = portal ? this.statements.get(statement)?.sql : undefined;
        this.queue.push({ kind: 'execute', portal: e.portal, statement, sql, params: portal?.params ?? [], at, size: size + this.preparing });
        this.preparing = 0;
        return;
      }
      case FRONTEND.Close: {
        const t = parseTarget(m.body);
        (t.kind === 'S' ? this.statements : this.portals).delete(t.name);
        this.queue.push({ kind: 'close', at, size });
        return;
      }
      case FRONTEND.Sync:
        this.queue.push({ kind: 'sync', at, size });
        return;
      case FRONTEND.FunctionCall:
        this.queue.push({ kind: 'function', at, size });
        return;
      case FRONTEND.CopyData:
        if (this.result.copy) {
          this.result.copy.bytes += m.body.length;
          this.result.copy.rows += this.result.copy.text ? countLines(m.body) : 1;
        }
        return;
      default:
        return; // Flush, Terminate, CopyDone/CopyFail, PasswordMessage/SASL responses (never read: credentials)
    }
  }

  // ---- backend -------------------------------------------------------------------------------

  private onAnswer(byte: number, offset: number): void {
    if (byte === 0x53 || byte === 0x47) {
      // 'S' (SSL) or 'G' (GSSAPI): everything after is encrypted; nothing more can be decoded.
      this.encrypted = true;
      this.session.auth = byte === 0x53 ? 'ssl' : 'gssenc';
      return;
    }
    if (byte !== 0x4e) this.ctx.violation('pg.bad_ssl_answer', `answer to SSLRequest/GSSENCRequest is 0x${byte.toString(16)}, not S, G or N`, offset);
  }

  private onBackend(m: Message): void {
    try {
      this.backend(m);
    } catch (err) {
      if (!(err instanceof TruncatedMessage)) throw err;
      this.ctx.violation('pg.truncated_message', `backend message '${String.fromCharCode(m.type)}' is shorter than its fields (${err.message})`, m.offset);
    }
  }

  private backend(m: Message): void {
    const at = this.mark(1);
    const res = this.result;
    res.size += m.body.length + 5;
    switch (m.type) {
      case BACKEND.Authentication: {
        const a = parseAuthentication(m.body);
        if (a.code !== 0 && a.mechanism && a.code !== 11 && a.code !== 12) this.session.auth = a.mechanism;
        else if (a.code === 0 && !this.session.auth) this.session.auth = 'trust';
        this.resetResult();
        return;
      }
      case BACKEND.ReadyForQuery: {
        this.session.transaction = parseReadyForQuery(m.body);
        // Ends a simple Query, or the batch up to and including a Sync ("Simple Query", "Extended
        // Query"): Executes still queued were skipped by the backend after an error.
        while (this.queue.length > 0) {
          const op = this.queue.shift()!;
          if (op.kind === 'sync' || op.kind === 'query') break;
          if (op.kind === 'execute') this.emitExecute(op, at, { skipped: true });
        }
        this.skipping = false;
        this.resetResult();
        return;
      }
      case BACKEND.ParseComplete: case BACKEND.BindComplete: case BACKEND.CloseComplete:
        this.shiftKind(m.type === BACKEND.ParseComplete ? 'parse' : m.type === BACKEND.BindComplete ? 'bind' : 'close');
        this.resetResult();
        return;
      case BACKEND.ParameterDescription: {
        const head = this.queue[0];
        const types = parseParameterDescription(m.body);
        if (head?.kind === 'describe' && head.target === 'S') {
          const st = this.statements.get(head.name);
          if (st && st.types.length === 0) st.types = types;
        }
        return;
      }
      case BACKEND.RowDescription: {
        const cols = parseRowDescription(m.body);
        if (this.queue[0]?.kind === 'describe') {
          this.queue.shift();
          this.resetResult();
        }
        this.result.columns = cols;
        return;
      }
      case BACKEND.NoData:
        if (this.queue[0]?.kind === 'describe') this.queue.shift();
        this.resetResult();
        return;
      case BACKEND.DataRow: {
        res.start ??= at;
        res.rows++;
        if (res.preview.length < this.previewRows) {
          const values = parseDataRow(m.body);
          res.preview.push(values.map((v, i) => decodeValue(v, res.columns?.[i]?.format ?? 0, res.columns?.[i]?.typeOid)));
        }
        return;
      }
      // COPY ("COPY Operations"): the response opens a CopyData stream; CommandComplete "COPY n" ends it.
      case BACKEND.CopyInResponse: case BACKEND.CopyOutResponse: case BACKEND.CopyBothResponse: {
        const c = parseCopyResponse(m.body);
        res.start ??= at;
        res.copy = { direction: m.type === BACKEND.CopyInResponse ? 'in' : m.type === BACKEND.CopyOutResponse ? 'out' : 'both', bytes: 0, rows: 0, text: c.format === 0 };
        return;
      }
      case BACKEND.CopyData:
        if (res.copy) {
          res.copy.bytes += m.body.length;
          res.copy.rows += res.copy.text ? countLines(m.body) : 1;
        }
        return;
      case BACKEND.CommandComplete:
        return this.complete(at, { command: parseCommandComplete(m.body) });
      case BACKEND.EmptyQueryResponse:
        return this.complete(at, { empty: true });
      // Execute with a row limit reached it: the portal stays open for another Execute ("Extended Query").
      case BACKEND.PortalSuspended:
        return this.complete(at, { suspended: true });
      case BACKEND.ErrorResponse: {
        const error = notice(parseFields(m.body));
        // Outside any statement (authentication, startup): a record of its own.
        if (this.queue.length === 0 || this.queue[0]!.kind === 'sync') {
          this.emit({ response: this.responseOf(at, at, { error }) });
          return;
        }
        return this.complete(at, { error });
      }
      case BACKEND.NoticeResponse:
        res.notices.push(notice(parseFields(m.body)));
        return;
      case BACKEND.NotificationResponse:
        // Asynchronous: it may arrive between any two messages and answers nothing ("Asynchronous Operations").
        this.emit({ notification: parseNotification(m.body) });
        return;
      case BACKEND.FunctionCallResponse:
        this.shiftKind('function', (op) => this.emit({
          request: { start: op.at.time, end: op.at.time, frames: [op.at.frame, op.at.frame], size: op.size, message: 'FunctionCall' },
          response: this.responseOf(at, at, {}),
        }));
        this.resetResult();
        return;
      default:
        return; // ParameterStatus, BackendKeyData (its key is a credential: not read), NegotiateProtocolVersion
    }
  }

  /** A statement finished (CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse). */
  private complete(at: Mark, out: { command?: string; empty?: true; suspended?: true; error?: PgNotice }): void {
    // Answers to Parse/Bind/Describe/Close that never came: the statement failed at one of them,
    // and the error belongs to the Execute it was being prepared for.
    while (this.queue.length > 0 && ['parse', 'bind', 'describe', 'close'].includes(this.queue[0]!.kind)) {
      const op = this.queue.shift()!;
      if (!out.error) continue;
      const next = this.queue.find((o) => o.kind === 'execute' || o.kind === 'sync' || o.kind === 'query');
      if (next?.kind !== 'execute') {
        // Nothing was to be executed (a prepare-only batch): the error is reported on its own.
        this.emit({ request: { start: op.at.time, end: op.at.time, frames: [op.at.frame, op.at.frame], size: op.size, message: 'Execute' }, response: this.responseOf(at, at, out) });
        this.resetResult();
        this.skipping = true;
        return;
      }
    }
    const op = this.queue[0];
    if (op?.kind === 'query') {
      const sql = op.parts.length > 1 && op.parts[op.index] !== undefined ? op.parts[op.index]! : op.sql;
      this.emit({
        request: { start: op.at.time, end: op.at.time, frames: [op.at.frame, op.at.frame], size: op.size, message: 'Query', query: sql },
        response: this.responseOf(this.result.start ?? at, at, out),
      });
      op.index++;
      // An error aborts the rest of the query string; ReadyForQuery ends the op either way.
    } else if (op?.kind === 'execute') {
      this.queue.shift();
      this.emitExecute(op, at, out);
      if (out.error) this.skipping = true;
    } else {
      this.emit({ response: this.responseOf(this.result.start ?? at, at, out) });
    }
    this.resetResult();
  }

  private emitExecute(op: Extract<Op, { kind: 'execute' }>, at: Mark, out: { command?: string; empty?: true; suspended?: true; error?: PgNotice; skipped?: true }): void {
    const request: NonNullable<PgTransaction['request']> = {
      start: op.at.time, end: op.at.time, frames: [op.at.frame, op.at.frame], size: op.size, message: 'Execute',
    };
    if (op.sql !== undefined) request.query = op.sql;
    request.statement = op.statement;
    if (op.portal) request.portal = op.portal;
    if (op.params.length) request.params = op.params;
    if (out.skipped) {
      // The backend skipped it after an earlier error in the batch: sent, never executed.
      this.emit({ request }, 'skipped-after-error');
      return;
    }
    this.emit({ request, response: this.responseOf(this.result.start ?? at, at, out) }, op.sql === undefined ? UNKNOWN_PREPARED : undefined);
  }

  private responseOf(start: Mark, end: Mark, out: { command?: string; empty?: true; suspended?: true; error?: PgNotice }): NonNullable<PgTransaction['response']> {
    const r = this.result;
    const resp: NonNullable<PgTransaction['response']> = { start: start.time, end: end.time, frames: [start.frame, end.frame], size: r.size };
    if (out.command !== undefined) resp.command = out.command;
    if (out.command !== undefined || r.rows > 0) resp.rows = r.rows;
    if (r.columns) resp.columns = r.columns.map((c) => c.name);
    if (r.preview.length) resp.preview = r.preview;
    if (out.error) resp.error = out.error;
    if (r.notices.length) resp.notices = r.notices;
    if (r.copy) {
      // The server's tag ("COPY 7") is the authority on rows: a HEADER line or the "\." end marker
      // are lines but not rows. Counted lines stand in when no tag came (a cut capture).
      const tag = out.command !== undefined ? /^COPY (\d+)$/.exec(out.command) : null;
      resp.copy = { direction: r.copy.direction, bytes: r.copy.bytes, rows: tag ? Number(tag[1]) : r.copy.rows };
    }
    if (out.suspended) resp.suspended = true;
    if (out.empty) resp.empty = true;
    return resp;
  }

  private resetResult(): void {
    const cols = this.result.columns;
    this.result = freshResult();
    // A Describe's RowDescription applies to the Execute that follows it.
    if (cols && this.queue[0]?.kind === 'execute') this.result.columns = cols;
  }

  private shiftKind(kind: Op['kind'], then?: (op: Op) => void): void {
    const i = this.queue.findIndex((o) => o.kind === kind);
    if (i < 0) return;
    const [op] = this.queue.splice(i, 1);
    then?.(op!);
  }

  /** Everything in flight when a direction lost its framing, or the connection ended. */
  private flushQueue(reason: string): void {
    for (const op of this.queue) {
      if (op.kind === 'query') this.emit({ request: { start: op.at.time, end: op.at.time, frames: [op.at.frame, op.at.frame], size: op.size, message: 'Query', query: op.sql } }, reason);
      else if (op.kind === 'execute') {
        this.emit({ request: {
          start: op.at.time, end: op.at.time, frames: [op.at.frame, op.at.frame], size: op.size, message: 'Execute',
          ...(op.sql !== undefined ? { query: op.sql } : {}), statement: op.statement, ...(op.params.length ? { params: op.params } : {}),
        } }, reason);
      }
    }
    this.queue = [];
    this.resetResult();
  }

  /** The session facts as of now, shared by records until one of them changes (never mutated). */
  private snapshot: PgTransaction['session'] | undefined;

  private emit(t: Omit<PgTransaction, 'session'>, incomplete?: string): void {
    const s = this.session;
    const snap = this.snapshot;
    if (!snap || snap.transaction !== s.transaction || snap.auth !== s.auth || snap.user !== s.user || snap.database !== s.database || snap.application !== s.application) {
      this.snapshot = { ...s };
    }
    const pg = t as PgTransaction;
    pg.session = this.snapshot!;
    const tx: PgExchange = { protocol: 'postgres', postgres: pg };
    if (incomplete) tx.incomplete = incomplete;
    this.ctx.emit(tx);
  }
}

function freshResult(): Result {
  return { rows: 0, preview: [], notices: [], size: 0 };
}

function notice(f: Record<string, string>): PgNotice {
  const n: PgNotice = { severity: f.V ?? f.S ?? '', code: f.C ?? '', message: f.M ?? '' };
  if (f.D) n.detail = f.D;
  if (f.H) n.hint = f.H;
  if (f.P && /^\d+$/.test(f.P)) n.position = Number(f.P);
  return n;
}

function remember<V>(m: Map<string, V>, k: string, v: V): void {
  // Replacing a known name (the unnamed statement/portal, every Bind) keeps its place: cheap.
  if (m.has(k)) {
    m.set(k, v);
    return;
  }
  m.set(k, v);
  if (m.size > MAX_NAMED) m.delete(m.keys().next().value as string);
}

/** Lines of text-format COPY data, not counting the "\." end-of-data marker. */
function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  const l = b.length;
  if (l >= 3 && b[l - 3] === 0x5c && b[l - 2] === 0x2e && b[l - 1] === 0x0a && (l === 3 || b[l - 4] === 0x0a)) n--;
  return n;
}

/**
 * The statements of a simple Query string, split at semicolons outside quotes, comments and
 * dollar-quoted bodies; each gets its own CommandComplete from the server.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const q = c;
      i++;
      while (i < n && !(sql[i] === q && sql[i + 1] !== q)) i += sql[i] === q ? 2 : 1;
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const e = sql.indexOf(m[0], i + m[0].length);
        i = e < 0 ? n : e + m[0].length;
      } else i++;
    } else if (c === ';') {
      const s = sql.slice(start, i).trim();
      if (s) out.push(s);
      start = i + 1;
      i++;
    } else i++;
  }
  const last = sql.slice(start).trim();
  if (last) out.push(last);
  return out;
}
