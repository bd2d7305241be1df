import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import { UNPAIRED } from '../pairing-types.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import {
  CAP, COMMAND, COMMAND_NAME, HEADER, STATUS, type Column, isEnd, isEof, parseColumn, parseEof, parseErr, parseExecute,
  parseGreeting, parseLogin, parseOk, parsePrepareOk, parseTextRow, parseBinaryRow,
} from './messages.js';
import { splitStatements } from './statements.js';
import type { MysqlExchange, MysqlSpan, MysqlTransaction } from './types.js';
import type { MysqlValue } from './values.js';
import { Cursor, type Packet, PacketReader, parse } from './wire.js';

/** Bytes kept of each logical packet's payload: SQL longer than this is cut, rows past it are not previewed. */
export const KEEP_BYTES = 256 * 1024;
/** Commands awaiting their answers; past it the oldest is reported without one. */
export const MAX_PENDING = 256;
/** Prepared statements remembered per connection; past it the oldest is forgotten. */
export const MAX_STATEMENTS = 4096;
/** Characters kept of a value or an error message. */
const VALUE_LIMIT = 256;
const DEFAULT_PREVIEW_ROWS = 5;

/** Commands the server never answers (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA; COM_QUIT closes). */
const UNANSWERED = new Set<number>([COMMAND.COM_STMT_CLOSE, COMMAND.COM_STMT_SEND_LONG_DATA, COMMAND.COM_QUIT]);

type Request = NonNullable<MysqlTransaction['request']>;
type Response = NonNullable<MysqlTransaction['response']>;

interface Pending {
  code: number;
  req: Request;
  /** Client stream offset just past the command. */
  endOff: number;
  /** The SQL of each statement, for a multi-statement COM_QUERY. */
  statements?: string[];
  /** Results reported so far (multi-statement queries, multi-result executes). */
  parts: number;
  incomplete?: string;
  /** An execute of "the statement just prepared" sent before that prepare's answer: read once it comes. */
  waiting?: { payload: Buffer; offset: number; length: number };
}

/** MariaDB's statement id for "the last statement prepared on this connection" (pipelined prepare + execute). */
const LAST_PREPARED = 0xffffffff;

/** Where the answer being read is in its grammar. */
type Step = 'first' | 'columns' | 'columnsEof' | 'rows' | 'defs' | 'list' | 'one';

interface Answer {
  step: Step;
  /** Column definitions (or prepare definitions) still to come. */
  left: number;
  cols: Column[];
  binary: boolean;
  rows: number;
  preview: MysqlValue[][];
  span: MysqlSpan | undefined;
  prepared?: { statementId: number; params: number; columns: number };
}

interface Statement {
  sql: string;
  params: number;
  /** Parameter types bound by the last execute: an execute that binds none reuses them. */
  types?: number[];
}

const fresh = (): Answer => ({ step: 'first', left: 0, cols: [], binary: false, rows: 0, preview: [], span: undefined });

/**
 * The MySQL client/server protocol on one connection (PAGE_PROTOCOL.html): the connection phase
 * (greeting, login or SSLRequest, auth switches, OK or ERR), then the command phase, where each
 * command of the client (sequence id 0) is answered by the server in order. One exchange per
 * command, per result of a multi-statement query or multi-result execute, and one for the login
 * (COM_CONNECT, user and database only: auth data is skipped by the parsers). Statement ids map
 * to their SQL so executes carry it, and their binary parameters are decoded.
 *
 * Pairing is in order (the server answers commands in the order it reads them); once a loss was
 * seen, a response whose ACK shows the server had not yet received the head command's bytes is
 * reported alone. After a gap the server direction resumes at the first segment that begins a
 * response to a command sent after the gap; the client direction at a segment that is exactly one
 * command packet.
 */
export class MysqlSession implements ProtocolSession {
  private readonly readers: [PacketReader, PacketReader];
  private phase: 'greeting' | 'login' | 'command' | 'encrypted' = 'greeting';
  private readonly session: MysqlTransaction['session'] = {};
  private serverCaps = 0;
  /** Capabilities both sides agreed on (the login's); undefined when the login was not seen. */
  private caps: number | undefined;
  private login: { req: Request; resp?: MysqlSpan } | undefined;
  private readonly queue: Pending[] = [];
  private ans: Answer = fresh();
  private readonly statements = new Map<number, Statement>();
  /** The statement id of the last COM_STMT_PREPARE_OK (MariaDB's LAST_PREPARED). */
  private lastPrepared: number | undefined;
  /** A direction lost bytes and has not found a packet start since. */
  private readonly lost: [boolean, boolean] = [false, false];
  private lossSeen = false;
  private meta: StreamMeta = { time: 0, frame: 0, offset: 0, peerAck: -1 };
  private readonly packetMeta: [{ time: number; frame: number; ack: number }, { time: number; frame: number; ack: number }] = [
    { time: 0, frame: 0, ack: -1 }, { time: 0, frame: 0, ack: -1 },
  ];
  private readonly previewRows: number;
  private ended = false;

  constructor(private readonly ctx: SessionContext) {
    this.previewRows = ctx.options.previewRows ?? DEFAULT_PREVIEW_ROWS;
    this.readers = [
      new PacketReader(KEEP_BYTES, (p) => this.clientPacket(p)),
      new PacketReader(KEEP_BYTES, (p) => this.serverPacket(p)),
    ];
    if (!ctx.conn.handshakeSeen || ctx.resync === true) {
      // Caught mid-connection: the command phase, with neither direction at a known packet start.
      this.phase = 'command';
      this.lost[0] = this.lost[1] = true;
      this.lossSeen = true;
    }
  }

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.ended || this.phase === 'encrypted') return;
    this.meta = meta;
    const r = this.readers[dir];
    if (this.lost[dir]) {
      if (!this.resumes(dir, bytes)) return;
      this.lost[dir] = false;
      r.reset();
    }
    // The packet whose header starts in this segment takes its time, frame and ACK from it.
    if (r.pendingOff < 0) this.mark(dir, meta);
    r.push(bytes, meta.offset);
    if (r.pendingOff >= meta.offset) this.mark(dir, meta);
  }

  gap(dir: Dir, _length: number, meta: StreamMeta): void {
    if (this.ended || this.phase === 'encrypted') return;
    this.meta = meta;
    this.lost[dir] = true;
    this.lossSeen = true;
    this.readers[dir].reset();
    if (dir === 1) {
      // The answers in flight lost bytes: report them, and read the server again at the next command's answer.
      for (const p of this.queue.splice(0)) this.report(p, this.ans.span ? this.partial() : undefined, UNPAIRED.lostInGap);
      this.ans = fresh();
    }
  }

  fin(_dir: Dir, _time: number): void {
    // Nothing to do: the command phase ends with COM_QUIT or at end().
  }

  end(_time: number, reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    if (this.login) this.reportLogin(undefined, reason === 'eof' ? 'capture-ended' : 'no-response');
    const why = reason === 'eof' ? 'no-response-before-capture-end' : 'no-response';
    for (const p of this.queue.splice(0)) this.report(p, this.ans.span ? this.partial() : undefined, this.ans.span ? 'capture-ended' : why);
  }

  // ---- resynchronisation -------------------------------------------------------------------

  /** Whether a direction that lost bytes can be read again from the start of `b`. */
  private resumes(dir: Dir, b: Buffer): boolean {
    if (b.length < 5) return false;
    const len = b.readUIntLE(0, 3);
    if (dir === 0) {
      // Exactly one command packet with sequence id 0 and a known command byte.
      return b[3] === 0 && len + 4 === b.length && COMMAND_NAME.has(b[4]!) && b[4] !== COMMAND.COM_SLEEP;
    }
    // The first packet of an answer (sequence id 1) to a command sent after the loss.
    return this.queue.length > 0 && b[3] === 1 && len > 0 && len < 0xffffff;
  }

  private mark(dir: Dir, meta: StreamMeta): void {
    const m = this.packetMeta[dir];
    m.time = meta.time;
    m.frame = meta.frame;
    m.ack = meta.peerAck;
  }

  private span(dir: Dir, p: Packet): MysqlSpan {
    const m = this.packetMeta[dir];
    return { start: m.time, end: this.meta.time, frames: [m.frame, this.meta.frame], size: p.size };
  }

  private grow(s: MysqlSpan, p: Packet): void {
    s.end = this.meta.time;
    s.frames[1] = this.meta.frame;
    s.size += p.size;
  }

  // ---- client --------------------------------------------------------------------------------

  private clientPacket(p: Packet): void {
    if (this.phase === 'greeting' || this.phase === 'login') {
      if (this.login || p.seq === 0) return; // auth switch responses and the like: never kept
      const l = parseLogin(p.payload);
      if (!l) {
        this.ctx.violation('mysql.bad_login', `login packet of ${p.length} bytes is too short`, p.offset);
        return;
      }
      this.caps = l.capabilities & (this.serverCaps || 0xffffffff);
      const req: Request = { ...this.span(0, p), command: 'COM_CONNECT' };
      if (l.user !== undefined) req.user = this.session.user = l.user;
      if (l.database !== undefined) req.database = this.session.database = l.database;
      this.login = { req };
      if (l.ssl) {
        // TLS follows on the same connection (Protocol::SSLRequest): nothing more can be read here.
        req.ssl = this.session.ssl = true;
        this.phase = 'encrypted';
        this.reportLogin(undefined, 'encrypted');
      } else this.phase = 'login';
      return;
    }
    if (p.seq !== 0) return; // LOCAL INFILE contents, sent after the server's 0xfb request
    const code = p.payload[0];
    if (code === undefined) {
      this.ctx.violation('mysql.empty_command', 'command packet with no command byte', p.offset);
      return;
    }
    const name = COMMAND_NAME.get(code);
    if (!name) {
      this.ctx.violation('mysql.unknown_command', `command byte 0x${code.toString(16)} is not a known command`, p.offset);
      return;
    }
    const req: Request = { ...this.span(0, p), command: name };
    const pend: Pending = { code, req, endOff: p.offset + p.size, parts: 0 };
    this.readCommand(pend, p);
    if (UNANSWERED.has(code)) {
      this.report(pend, undefined);
      return;
    }
    if (this.queue.length >= MAX_PENDING) {
      this.ctx.violation('mysql.pending_overflow', `more than ${MAX_PENDING} commands awaiting answers`, p.offset);
      this.report(this.queue.shift()!, undefined, UNPAIRED.evicted);
      if (this.queue.length === 0) this.ans = fresh();
    }
    this.queue.push(pend);
  }

  /** The command's own fields: SQL, statement id, parameters, database. */
  private readCommand(pend: Pending, p: Packet): void {
    const { code, req } = pend;
    const b = p.payload;
    const text = () => b.subarray(1).toString('utf8');
    switch (code) {
      case COMMAND.COM_QUERY: {
        req.query = text();
        const st = splitStatements(req.query);
        if (st.length > 1) pend.statements = st;
        break;
      }
      case COMMAND.COM_STMT_PREPARE: req.query = text(); break;
      case COMMAND.COM_INIT_DB: req.database = text(); break;
      case COMMAND.COM_STMT_EXECUTE: {
        const id = b.length >= 5 ? b.readUInt32LE(1) : undefined;
        if (id === LAST_PREPARED && this.queue.some((q) => q.code === COMMAND.COM_STMT_PREPARE)) {
          // Pipelined after its COM_STMT_PREPARE: the parameter count comes with that answer.
          pend.waiting = { payload: b, offset: p.offset, length: p.length };
          break;
        }
        this.readExecute(pend, b, p.offset, p.length);
        break;
      }
      case COMMAND.COM_STMT_CLOSE: case COMMAND.COM_STMT_RESET: case COMMAND.COM_STMT_SEND_LONG_DATA: case COMMAND.COM_STMT_FETCH: {
        if (b.length < 5) break;
        req.statementId = b.readUInt32LE(1);
        const st = this.statements.get(req.statementId);
        if (st) req.query = st.sql;
        if (code === COMMAND.COM_STMT_CLOSE) this.statements.delete(req.statementId);
        break;
      }
      case COMMAND.COM_CHANGE_USER: {
        // user NUL, auth data (skipped), database NUL: a new login on the same connection.
        const c = new Cursor(b, 1);
        req.user = c.nulstr().toString('utf8');
        break;
      }
      default: break;
    }
  }

  private readExecute(pend: Pending, b: Buffer, offset: number, length: number): void {
    const req = pend.req;
    let id = b.length >= 5 ? b.readUInt32LE(1) : undefined;
    if (id === LAST_PREPARED && this.lastPrepared !== undefined) id = this.lastPrepared;
    const st = id === undefined ? undefined : this.statements.get(id);
    const e = parseExecute(b, st?.params, st?.types, VALUE_LIMIT);
    if (!e || id === undefined) {
      this.ctx.violation('mysql.bad_execute', `COM_STMT_EXECUTE of ${length} bytes is too short`, offset);
      return;
    }
    req.statementId = id;
    if (st) {
      req.query = st.sql;
      if (e.types) st.types = e.types;
      if (e.params) req.params = e.params;
    } else pend.incomplete = 'statement-unknown';
  }

  // ---- server --------------------------------------------------------------------------------

  private serverPacket(p: Packet): void {
    if (this.phase === 'greeting') {
      this.greeting(p);
      return;
    }
    if (this.phase === 'login') {
      const h = p.payload[0];
      if (h === HEADER.OK || h === HEADER.ERR) {
        this.phase = 'command';
        this.reportLogin(p);
      } else if (this.login?.resp) this.grow(this.login.resp, p);
      else if (this.login) this.login.resp = this.span(1, p); // AuthSwitchRequest, AuthMoreData
      return;
    }
    let head: Pending | undefined = this.queue[0];
    if (head && this.ans.step === 'first' && !this.ans.span && this.lossSeen) {
      // The server had not received the head command when it sent this: it answers a command the capture lost.
      const ack = this.packetMeta[1].ack;
      if (ack >= 0 && ack < head.endOff) head = undefined;
    }
    if (!head) {
      if (!this.lossSeen) {
        this.ctx.violation('mysql.unsolicited', 'server packet with no command awaiting an answer', p.offset);
        return;
      }
      // An answer to a command in lost bytes: read it as a generic answer and report it alone.
      head = { code: -1, req: { start: 0, end: 0, frames: [0, 0], size: 0, command: '' }, endOff: -1, parts: 0, incomplete: UNPAIRED.noRequest };
      this.queue.unshift(head);
    }
    this.answer(head, p);
  }

  private greeting(p: Packet): void {
    const h = p.payload[0];
    if (h === HEADER.ERR) {
      // Refused before any login (too many connections, host blocked): a login record with the error.
      this.login = { req: { ...this.span(1, p), size: 0, command: 'COM_CONNECT' } };
      this.phase = 'command';
      this.reportLogin(p);
      return;
    }
    const g = parseGreeting(p.payload);
    if (!g) {
      this.ctx.violation('mysql.bad_greeting', 'first server packet is not a protocol 10 handshake', p.offset);
      this.phase = 'command';
      return;
    }
    this.serverCaps = g.capabilities;
    this.session.serverVersion = g.version;
    this.session.connectionId = g.connectionId;
    this.phase = 'login';
  }

  private get deprecateEof(): boolean {
    return this.caps !== undefined && (this.caps & CAP.DEPRECATE_EOF) !== 0;
  }

  /** One server packet of the answer to `pend`. */
  private answer(pend: Pending, p: Packet): void {
    const a = this.ans;
    if (a.span) this.grow(a.span, p);
    else a.span = this.span(1, p);
    const b = p.payload;
    const h = b[0];
    switch (a.step) {
      case 'first': {
        if (h === HEADER.ERR) return this.done(pend, { error: parseErr(b, VALUE_LIMIT) });
        if (h === HEADER.LOCAL_INFILE && p.length > 1 && pend.code === COMMAND.COM_QUERY) return; // file contents, then OK/ERR
        if (pend.code === COMMAND.COM_STATISTICS) return this.done(pend, {});
        // COM_CHANGE_USER is a login again: an AuthSwitchRequest (0xfe) or AuthMoreData (0x01) before the OK or ERR.
        if (pend.code === COMMAND.COM_CHANGE_USER && h !== HEADER.OK) return;
        if (pend.code === COMMAND.COM_FIELD_LIST) {
          a.step = 'list';
          return this.answer(pend, p);
        }
        if (h === HEADER.OK && pend.code === COMMAND.COM_STMT_PREPARE) return this.prepared(pend, b);
        if (h === HEADER.OK || h === HEADER.EOF) {
          // 0xfe here: COM_SET_OPTION's EOF, or an OK with the 0xfe header.
          const ok = isEof(p) ? undefined : parseOk(b);
          const eof = isEof(p) ? parseEof(b) : undefined;
          const r: Partial<Response> = {};
          if (ok) {
            r.affectedRows = ok.affectedRows;
            if (ok.lastInsertId) r.lastInsertId = ok.lastInsertId;
          }
          const warnings = ok?.warnings ?? eof?.warnings;
          if (warnings) r.warnings = warnings;
          return this.done(pend, r, (((ok ?? eof)?.status ?? 0) & STATUS.MORE_RESULTS_EXISTS) !== 0);
        }
        const n = parse(b, (c) => c.lenenc());
        if (n === null || n === undefined || n === 0) {
          this.ctx.violation('mysql.bad_column_count', `result set header 0x${(h ?? 0).toString(16)} is not a column count`, p.offset);
          return this.done(pend, {}, false, 'malformed');
        }
        a.step = 'columns';
        a.left = n;
        a.binary = pend.code === COMMAND.COM_STMT_EXECUTE;
        return;
      }
      case 'columns': {
        const col = parseColumn(b);
        if (!col) this.ctx.violation('mysql.bad_column', `column definition of ${p.length} bytes is too short`, p.offset);
        if (a.cols.length < 4096) a.cols.push(col ?? { name: '?', type: 253, flags: 0, charset: 33 });
        if (--a.left === 0) a.step = this.caps === undefined || !this.deprecateEof ? 'columnsEof' : 'rows';
        return;
      }
      case 'columnsEof':
        a.step = 'rows';
        // Without CLIENT_DEPRECATE_EOF an EOF ends the definitions; when the login was not seen, an EOF here is that one.
        if (isEof(p)) return;
        if (this.caps !== undefined) this.ctx.violation('mysql.missing_eof', 'column definitions not followed by EOF', p.offset);
        return this.answer(pend, p);
      case 'rows': {
        if (h === HEADER.ERR) return this.done(pend, { ...this.result(), error: parseErr(b, VALUE_LIMIT) });
        if (isEnd(p)) {
          const end = isEof(p) ? parseEof(b) : parseOk(b);
          const r: Partial<Response> = this.result();
          if (end?.warnings) r.warnings = end.warnings;
          return this.done(pend, r, ((end?.status ?? 0) & STATUS.MORE_RESULTS_EXISTS) !== 0);
        }
        a.rows++;
        if (a.preview.length < this.previewRows && p.length === b.length) {
          const row = a.binary ? parseBinaryRow(b, a.cols, VALUE_LIMIT) : parseTextRow(b, a.cols, VALUE_LIMIT);
          if (row) a.preview.push(row);
          else this.ctx.violation('mysql.bad_row', `row of ${p.length} bytes does not hold ${a.cols.length} values`, p.offset);
        }
        return;
      }
      case 'defs':
        // COM_STMT_PREPARE_OK's parameter and column definitions (and their EOFs without DEPRECATE_EOF).
        if (isEof(p) && this.caps === undefined) return;
        if (--a.left <= 0) this.done(pend, {});
        return;
      case 'list':
        if (h === HEADER.ERR) return this.done(pend, { error: parseErr(b, VALUE_LIMIT) });
        if (isEnd(p)) return this.done(pend, { columns: a.cols.map((c) => c.name) });
        if (a.cols.length < 4096) {
          const col = parseColumn(b);
          if (col) a.cols.push(col);
        }
        return;
      case 'one':
        return this.done(pend, {});
    }
  }

  private prepared(pend: Pending, b: Buffer): void {
    const ok = parsePrepareOk(b);
    if (!ok) return this.done(pend, {}, false, 'malformed');
    const a = this.ans;
    a.prepared = { statementId: ok.statementId, params: ok.params, columns: ok.columns };
    pend.req.statementId = ok.statementId;
    if (this.statements.size >= MAX_STATEMENTS) this.statements.delete(this.statements.keys().next().value!);
    this.statements.set(ok.statementId, { sql: pend.req.query ?? '', params: ok.params });
    this.lastPrepared = ok.statementId;
    // Executes of "the last prepared" queued behind this prepare (up to the next prepare) can be read now.
    for (const q of this.queue.slice(this.queue.indexOf(pend) + 1)) {
      if (q.code === COMMAND.COM_STMT_PREPARE) break;
      if (q.waiting) {
        this.readExecute(q, q.waiting.payload, q.waiting.offset, q.waiting.length);
        q.waiting = undefined;
      }
    }
    const eofs = this.caps !== undefined && !this.deprecateEof ? (ok.params > 0 ? 1 : 0) + (ok.columns > 0 ? 1 : 0) : 0;
    a.left = ok.params + ok.columns + eofs;
    if (a.left === 0) return this.done(pend, {});
    a.step = 'defs';
  }

  private result(): Partial<Response> {
    const a = this.ans;
    return { columns: a.cols.map((c) => c.name), rows: a.rows, ...(a.preview.length ? { preview: a.preview } : {}) };
  }

  /** What was read of an answer cut short. */
  private partial(): Partial<Response> {
    return this.ans.cols.length ? this.result() : {};
  }

  /** One result of `pend` is whole; `more`: another follows (SERVER_MORE_RESULTS_EXISTS). */
  private done(pend: Pending, r: Partial<Response>, more = false, incomplete?: string): void {
    const a = this.ans;
    if (a.prepared) {
      r.paramCount = a.prepared.params;
      r.columnCount = a.prepared.columns;
    }
    if (more || pend.parts > 0) pend.req.part = pend.parts;
    if (pend.code === COMMAND.COM_INIT_DB && !r.error && pend.req.database !== undefined) this.session.database = pend.req.database;
    if (pend.code === COMMAND.COM_CHANGE_USER && !r.error && pend.req.user !== undefined) this.session.user = pend.req.user;
    this.report(pend, r, incomplete, true);
    pend.parts++;
    this.ans = fresh();
    if (!more) this.queue.shift();
  }

  // ---- records -----------------------------------------------------------------------------

  private report(pend: Pending, r: Partial<Response> | undefined, incomplete?: string, keep = false): void {
    // An execute of the last prepared statement whose prepare failed or was lost: no statement to read it by.
    if (pend.waiting) pend.req.statementId ??= LAST_PREPARED;
    const req = { ...pend.req };
    if (pend.statements && req.part !== undefined) {
      // One statement of a multi-statement query: its own SQL when the split matched the results.
      const s = pend.statements[req.part];
      if (s !== undefined && pend.statements.length > req.part) req.query = s;
    }
    if (!keep) delete req.part;
    const tx: MysqlTransaction = { session: { ...this.session } };
    if (pend.code >= 0) tx.request = req;
    const span = this.ans.span;
    if (r && span) tx.response = { ...span, frames: [span.frames[0], span.frames[1]], ...r } as Response;
    this.emit(tx, incomplete ?? pend.incomplete ?? (r || UNANSWERED.has(pend.code) ? undefined : 'no-response'));
  }

  private reportLogin(p: Packet | undefined, incomplete?: string): void {
    const l = this.login;
    if (!l) return;
    this.login = undefined;
    const tx: MysqlTransaction = { request: l.req, session: { ...this.session } };
    if (p) {
      const span = l.resp ?? this.span(1, p);
      if (l.resp) this.grow(span, p);
      const err = p.payload[0] === HEADER.ERR ? parseErr(p.payload, VALUE_LIMIT) : undefined;
      tx.response = { ...span, ...(err ? { error: err } : {}) };
      if (!l.req.size) delete tx.request;
    }
    this.emit(tx, incomplete);
  }

  private emit(tx: MysqlTransaction, incomplete?: string): void {
    const ex: MysqlExchange = { protocol: 'mysql', mysql: tx };
    if (incomplete) ex.incomplete = incomplete;
    this.ctx.emit(ex);
  }
}
