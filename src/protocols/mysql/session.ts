import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import { type ClientView, type Pending, Pairing, type PairingHooks, type PairingLimits, UNPAIRED } from '../pairing.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import { AnswerReader, type Response, type Result, VALUE_LIMIT } from './answer.js';
import { COMMAND, COMMAND_NAME, HEADER, MARIADB_CAP, parseErr, parseExecute, parseGreeting, parseLogin, type PrepareOk } from './messages.js';
import { splitStatements } from './statements.js';
import type { MysqlExchange, MysqlSpan, MysqlTransaction } from './types.js';
import { Cursor, type Packet, PacketReader } from './wire.js';

/** Bytes kept of each logical packet's payload: SQL longer than this is cut, rows past it are not previewed. */
export const KEEP_BYTES = 256 * 1024;
/** Commands awaiting their answers, and the bytes they hold; past either the oldest is reported without its answer. */
export const MYSQL_LIMITS: PairingLimits = { maxPendingRequests: 256, maxPendingBytes: 16 * 1024 * 1024, maxUnparsed: 256 };
/** Prepared statements remembered per connection; past it the oldest is forgotten. */
export const MAX_STATEMENTS = 4096;
/**
 * Bytes of SQL those statements may hold per connection (each is up to KEEP_BYTES): past it the
 * oldest are forgotten, and an execute of a forgotten id is reported as an unknown statement.
 */
export const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;
const DEFAULT_PREVIEW_ROWS = 5;
/** Bytes held while resuming after a loss, until they can be told to start a packet (a longer command is not resumed at). */
export const MAX_HELD = 64 * 1024;

/** Commands the server never answers (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA; COM_QUIT closes). */
const UNANSWERED = new Set<number>([COMMAND.COM_STMT_CLOSE, COMMAND.COM_STMT_SEND_LONG_DATA, COMMAND.COM_QUIT]);

type Request = NonNullable<MysqlTransaction['request']>;

/** A command awaiting its answer (the pairing's request). */
interface Cmd {
  code: number;
  req: Request;
  /** The SQL of each statement, for a multi-statement COM_QUERY. */
  statements?: string[];
  /** Results reported so far (multi-statement queries, multi-result executes). */
  parts: number;
  incomplete?: string;
  /** An execute of "the statement just prepared" sent before that prepare's answer: read once it comes. */
  waiting?: { payload: Buffer; offset: number; length: number };
  /** Reported: nothing more is emitted for it. */
  emitted?: true;
}
type P = Pending<Cmd, Response>;

/** MariaDB's statement id for "the last statement prepared on this connection" (pipelined prepare + execute). */
const LAST_PREPARED = 0xffffffff;

interface Statement {
  sql: string;
  params: number;
  /** The SQL's size in UTF-8, counted against MAX_STATEMENT_BYTES. */
  bytes: number;
  /** Parameter types bound by the last execute: an execute that binds none reuses them. */
  types?: number[];
}

/**
 * The MySQL client/server protocol on one connection (PAGE_PROTOCOL.html): the connection phase
 * (greeting, login or SSLRequest, auth switches, OK or ERR), then the command phase, where each
 * command of the client (sequence id 0) is answered by the server in order. One exchange per
 * command, per result of a multi-statement query or multi-result execute, and one for the login
 * (COM_CONNECT, user and database only: auth data is skipped by the parsers). Statement ids map
 * to their SQL so executes carry it, and their binary parameters are decoded.
 *
 * Commands pair with answers through the shared Pairing (../pairing.ts), as HTTP/1.1's and
 * Redis's do: in order while nothing was lost, by TCP acknowledgements after a loss or when the
 * capture began mid-connection, never with the wrong command. An answer's grammar is its command's,
 * so the command is picked at the answer's first packet (answer.ts reads the rest); an answer no
 * command can be given is read generically and reported alone. After a gap the server direction
 * resumes at the first segment that begins an answer (sequence id 1) while commands await one; the
 * client direction at a segment that is exactly one command packet.
 */
export class MysqlSession implements ProtocolSession, PairingHooks<Cmd, Response> {
  private readonly readers: [PacketReader, PacketReader];
  private phase: 'greeting' | 'login' | 'command' | 'encrypted' = 'greeting';
  private readonly session: MysqlTransaction['session'] = {};
  private serverCaps = 0;
  /** MariaDB's extended capabilities both sides agreed on (0: none, or not MariaDB, or the login not seen). */
  private mariadbCaps = 0;
  private serverMariadbCaps = 0;
  /** Capabilities both sides agreed on (the login's); undefined when the login was not seen. */
  private caps: number | undefined;
  private login: { req: Request; resp?: MysqlSpan } | undefined;
  private readonly pairing: Pairing<Cmd, Response>;
  private readonly view: ClientView = { partialOff: -1, partialAck: -1, scanOff: -1, heldOff: -1, heldAck: -1 };
  private readonly ans: AnswerReader;
  /** The answer being read: the command it answers (undefined: none could be given, `orphan` says why). */
  private cur: { p: P | undefined; orphan: string } | undefined;
  private readonly statements = new Map<number, Statement>();
  /** Bytes of SQL held in `statements` (UTF-8), kept under MAX_STATEMENT_BYTES. */
  private statementBytes = 0;
  /** The statement id of the last COM_STMT_PREPARE_OK (MariaDB's LAST_PREPARED). */
  private lastPrepared: number | undefined;
  /** A direction lost bytes and has not found a packet start since. */
  private readonly lost: [boolean, boolean] = [false, false];
  private lossSeen = false;
  /** Per direction, while resuming: the start of a segment that cannot be told yet. */
  private readonly held: [{ bytes: Buffer; meta: StreamMeta } | undefined, { bytes: Buffer; meta: StreamMeta } | undefined] = [undefined, undefined];
  private meta: StreamMeta = { time: 0, frame: 0, offset: 0, peerAck: -1 };
  private readonly packetMeta: [{ time: number; frame: number; ack: number }, { time: number; frame: number; ack: number }] = [
    { time: 0, frame: 0, ack: -1 }, { time: 0, frame: 0, ack: -1 },
  ];
  private ended = false;

  constructor(private readonly ctx: SessionContext) {
    const previewRows = ctx.options.previewRows ?? DEFAULT_PREVIEW_ROWS;
    this.ans = new AnswerReader({
      caps: () => this.caps,
      extended: () => (this.mariadbCaps & MARIADB_CAP.EXTENDED_METADATA) !== 0,
      previewRows,
      violation: (code, reason, offset) => ctx.violation(code, reason, offset),
      prepared: (ok) => this.prepared(ok),
    });
    this.readers = [
      new PacketReader(KEEP_BYTES, (p) => this.clientPacket(p)),
      new PacketReader(KEEP_BYTES, (p) => this.serverPacket(p)),
    ];
    const whole = ctx.conn.handshakeSeen && ctx.resync !== true;
    this.pairing = new Pairing<Cmd, Response>(MYSQL_LIMITS, this, whole, ctx.conn.handshakeSeen);
    if (!whole) {
      // Caught mid-connection: the command phase, with neither direction at a known packet start.
      this.phase = 'command';
      this.lost[0] = this.lost[1] = true;
      this.lossSeen = true;
      this.pairing.noteLoss();
    }
  }

  // ---- PairingHooks ----------------------------------------------------------------------------

  retired(p: P): void {
    this.emitCmd(p, undefined, p.done);
  }

  evicted(p: P): void {
    this.emitCmd(p, undefined, p.done ?? UNPAIRED.evicted);
  }

  resolved(p: P): void {
    this.emitCmd(p, p.response);
  }

  unresolved(resp: Response, why: string): void {
    this.emit({ response: resp, session: { ...this.session } }, why);
  }

  overflow(what: 'pending' | 'unparsed', off: number): void {
    const l = MYSQL_LIMITS;
    if (what === 'pending') this.ctx.violation('mysql.pending_overflow', `more than ${l.maxPendingRequests} commands or ${l.maxPendingBytes} bytes awaiting answers; the oldest is reported without its answer`, off);
    else this.ctx.violation('mysql.unparsed_commands', `more than ${l.maxUnparsed} stretches of unparsed client bytes; pairing stops until the connection settles`, off);
  }

  /** Every MySQL command that is answered has one answer: lost server bytes at its turn held it. */
  interimMayFill(): boolean {
    return false;
  }

  // ---- ProtocolSession -------------------------------------------------------------------------

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.ended || this.phase === 'encrypted') return;
    this.meta = meta;
    if (dir === 0) this.pairing.client(meta.offset + bytes.length, meta.peerAck);
    const r = this.readers[dir];
    let start = meta;
    if (this.lost[dir]) {
      // Resume only where a segment starts like a packet of this direction; a start cut short
      // waits for the next bytes (copied, bounded) until it can be told.
      const held = this.held[dir];
      this.held[dir] = undefined;
      const b = held ? Buffer.concat([held.bytes, bytes]) : bytes;
      if (held) start = held.meta;
      const v = this.resumes(dir, b);
      if (v === 'more' && b.length < MAX_HELD) {
        this.held[dir] = { bytes: held ? b : Buffer.from(bytes), meta: held ? held.meta : { ...meta } };
        return;
      }
      if (v !== 'yes') {
        if (dir === 0) this.pairing.hide(start.offset, start.peerAck);
        return;
      }
      this.lost[dir] = false;
      r.reset();
      bytes = b;
    }
    // The packet whose header starts in this segment takes its time, frame and ACK from it.
    if (r.pendingOff < 0) this.mark(dir, start);
    r.push(bytes, start.offset);
    if (r.pendingOff >= meta.offset) this.mark(dir, meta);
  }

  gap(dir: Dir, length: number, meta: StreamMeta): void {
    if (this.ended || this.phase === 'encrypted') return;
    this.meta = meta;
    const r = this.readers[dir];
    const held = this.held[dir];
    this.held[dir] = undefined;
    const partial = held ? held.meta.offset : r.pendingOff;
    const atBoundary = partial < 0 && !this.lost[dir] && this.cur === undefined;
    this.lost[dir] = true;
    this.lossSeen = true;
    r.reset();
    this.pairing.noteLoss();
    if (dir === 0) {
      this.pairing.client(meta.offset + length, meta.peerAck);
      this.pairing.hide(partial >= 0 ? partial : meta.offset, meta.peerAck);
      return;
    }
    // An answer cut by the loss: its command gets what was read of it; the next answer pairs by acknowledgements.
    const c = this.cur;
    if (c) {
      const span = this.ans.span;
      const part = span ? { ...span, frames: [span.frames[0], span.frames[1]], ...this.ans.partial() } as Response : undefined;
      this.cur = undefined;
      this.ans.reset();
      if (c.p) {
        this.pairing.answering = undefined;
        this.emitCmd(c.p, part, UNPAIRED.lostInGap);
      } else if (part) this.emit({ response: part, session: { ...this.session } }, c.orphan);
    }
    this.pairing.serverLost(atBoundary, UNPAIRED.lostInGap, partial >= 0 ? partial : meta.offset);
  }

  fin(_dir: Dir, _time: number): void {
    // Nothing to do: the command phase ends with COM_QUIT or at end().
  }

  end(_time: number, reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    if (this.login) this.reportLogin(undefined, reason === 'eof' ? 'capture-ended' : 'no-response');
    const why = reason === 'eof' ? 'no-response-before-capture-end' : 'no-response';
    const c = this.cur;
    if (c) {
      // An answer the capture cut short.
      const span = this.ans.span;
      const part = span ? { ...span, frames: [span.frames[0], span.frames[1]], ...this.ans.partial() } as Response : undefined;
      this.cur = undefined;
      if (c.p) this.emitCmd(c.p, part, span ? 'capture-ended' : why);
      else if (part) this.emit({ response: part, session: { ...this.session } }, c.orphan);
    }
    for (const p of this.pairing.drain()) this.emitCmd(p, undefined, p.done ?? why);
  }

  // ---- resynchronisation -------------------------------------------------------------------

  /**
   * Whether a direction that lost bytes can be read again from the start of `b` ('more': too few
   * bytes to tell). Client: exactly one command packet (sequence id 0, a known command byte), so
   * bytes in the middle of a packet that look like a header are not taken for one. Server: the
   * first packet of an answer (sequence id 1) while commands await answers.
   */
  private resumes(dir: Dir, b: Buffer): 'yes' | 'no' | 'more' {
    if (dir === 1 && this.pairing.queue.length === 0) return 'no';
    const seq = dir === 0 ? 0 : 1;
    if (b.length >= 4 && b[3] !== seq) return 'no';
    if (b.length < 5) return 'more';
    const len = b.readUIntLE(0, 3);
    if (dir === 1) return len > 0 && len < 0xffffff ? 'yes' : 'no';
    if (!COMMAND_NAME.has(b[4]!) || b[4] === COMMAND.COM_SLEEP) return 'no';
    return len + 4 === b.length ? 'yes' : len + 4 > b.length ? 'more' : 'no';
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
      this.mariadbCaps = (l.mariadbCaps ?? 0) & this.serverMariadbCaps;
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
    const cmd: Cmd = { code, req, parts: 0 };
    this.readCommand(cmd, p);
    if (UNANSWERED.has(code)) {
      this.report(cmd, undefined);
      return;
    }
    this.pairing.enqueue(this.pairing.create(p.offset, this.packetMeta[0].ack, cmd, p.size));
  }

  /** The command's own fields: SQL, statement id, parameters, database. */
  private readCommand(pend: Cmd, p: Packet): void {
    const { code, req } = pend;
    const b = p.payload;
    // Some clients (mysqlslap) send the C string's NUL terminator too: it ends the SQL, it is not part of it.
    const text = () => {
      let e = b.length;
      while (e > 1 && b[e - 1] === 0) e--;
      return b.toString('utf8', 1, e);
    };
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
        if (id === LAST_PREPARED && this.pairing.queue.some((q) => q.request.code === COMMAND.COM_STMT_PREPARE && !q.response && !q.done)) {
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
        if (code === COMMAND.COM_STMT_CLOSE) this.forget(req.statementId);
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

  private readExecute(pend: Cmd, b: Buffer, offset: number, length: number): void {
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
    const c = this.cur ?? this.pick(p);
    if (!c) return;
    const a = this.ans;
    if (a.span) this.grow(a.span, p);
    else a.span = this.span(1, p);
    const res = a.read(c.p?.request.code ?? -1, p);
    if (res) this.done(c, res, p.offset + p.size);
  }

  /** The command whose answer starts with `p`, through the pairing; undefined (and a violation) for a packet nobody asked for. */
  private pick(p: Packet): { p: P | undefined; orphan: string } | undefined {
    const v = this.view;
    v.partialOff = this.readers[0].pendingOff;
    v.partialAck = v.partialOff >= 0 ? this.packetMeta[0].ack : -1;
    const ack = this.packetMeta[1].ack;
    const target = this.pairing.pick(p.offset, ack, true, v);
    if (!target) {
      if (!this.lossSeen && this.pairing.orphan !== UNPAIRED.evicted) {
        this.ctx.violation('mysql.unsolicited', 'server packet with no command awaiting an answer', p.offset);
        return undefined;
      }
      // An answer to a command in lost bytes, or one acknowledgements cannot place: read by the
      // generic grammar and reported alone (answers are not held to be placed later: their grammar
      // depends on the command).
      return (this.cur = { p: undefined, orphan: this.pairing.deferring ? UNPAIRED.ambiguousRequest : this.pairing.orphan });
    }
    if (this.pairing.unique) this.pairing.reanchor(ack, !this.lost[0] && this.pairing.queue.length > 0);
    this.pairing.answering = target;
    this.pairing.answeringKnown = true;
    return (this.cur = { p: target, orphan: '' });
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
    this.serverMariadbCaps = g.mariadbCaps;
    this.session.serverVersion = g.version;
    this.session.connectionId = g.connectionId;
    this.phase = 'login';
  }

  /** A prepared statement remembered, the oldest forgotten past MAX_STATEMENTS or MAX_STATEMENT_BYTES. */
  private remember(id: number, st: Statement): void {
    this.forget(id);
    st.bytes = Buffer.byteLength(st.sql);
    while (this.statements.size > 0 && (this.statements.size >= MAX_STATEMENTS || this.statementBytes + st.bytes > MAX_STATEMENT_BYTES)) {
      this.forget(this.statements.keys().next().value!);
    }
    this.statements.set(id, st);
    this.statementBytes += st.bytes;
  }

  private forget(id: number): void {
    const st = this.statements.get(id);
    if (!st) return;
    this.statements.delete(id);
    this.statementBytes -= st.bytes;
  }

  /** A COM_STMT_PREPARE_OK: the statement is remembered, and executes of "the last prepared" waiting for it are read. */
  private prepared(ok: PrepareOk): void {
    const p = this.cur?.p;
    if (!p) return;
    p.request.req.statementId = ok.statementId;
    this.remember(ok.statementId, { sql: p.request.req.query ?? '', params: ok.params, bytes: 0 });
    this.lastPrepared = ok.statementId;
    // Executes of "the last prepared" queued behind this prepare (up to the next prepare) can be read now.
    const q = this.pairing.queue;
    for (const x of q.slice(q.indexOf(p) + 1)) {
      const cmd = x.request;
      if (cmd.code === COMMAND.COM_STMT_PREPARE) break;
      if (cmd.waiting) {
        this.readExecute(cmd, cmd.waiting.payload, cmd.waiting.offset, cmd.waiting.length);
        cmd.waiting = undefined;
      }
    }
  }

  /** One result of the answer being read is whole (`end`: server offset just past it). */
  private done(c: { p: P | undefined; orphan: string }, res: Result, end: number): void {
    const span = this.ans.span!;
    const resp = { ...span, frames: [span.frames[0], span.frames[1]], ...res.r } as Response;
    this.ans.reset();
    if (!res.more) {
      this.cur = undefined;
      this.pairing.answering = undefined;
      this.pairing.answeringKnown = false;
    }
    const p = c.p;
    if (!p) this.emit({ response: resp, session: { ...this.session } }, res.incomplete ?? c.orphan);
    else {
      const cmd = p.request;
      if (cmd.code === COMMAND.COM_INIT_DB && !res.r.error && cmd.req.database !== undefined) this.session.database = cmd.req.database;
      if (cmd.code === COMMAND.COM_CHANGE_USER && !res.r.error && cmd.req.user !== undefined) this.session.user = cmd.req.user;
      if (res.more || cmd.parts > 0) cmd.req.part = cmd.parts;
      if (res.more) {
        // One result of several: its own record; the command awaits the rest.
        this.report(cmd, resp, res.incomplete, true);
        cmd.parts++;
      } else {
        this.pairing.answer(p, resp, end);
        this.emitCmd(p, resp, res.incomplete, true);
      }
    }
    const idle = this.cur === undefined && this.readers[0].pendingOff < 0 && this.readers[1].pendingOff < 0 && !this.lost[0] && !this.lost[1];
    this.pairing.settle(idle);
  }

  // ---- records -----------------------------------------------------------------------------

  /** A queued command's last record: out of the pairing. `keep`: keep its result number (`part`). */
  private emitCmd(p: P, resp: Response | undefined, incomplete?: string, keep = false): void {
    const cmd = p.request;
    this.pairing.remove(p);
    if (cmd.emitted) {
      // Reported already (evicted while its answer was read): the answer alone.
      if (resp) this.emit({ response: resp, session: { ...this.session } }, UNPAIRED.evicted);
      return;
    }
    cmd.emitted = true;
    this.report(cmd, resp, incomplete, keep);
  }

  private report(cmd: Cmd, resp: Response | undefined, incomplete?: string, keep = false): void {
    // An execute of the last prepared statement whose prepare failed or was lost: no statement to read it by.
    if (cmd.waiting) cmd.req.statementId ??= LAST_PREPARED;
    const req = { ...cmd.req };
    if (cmd.statements && keep && req.part !== undefined) {
      // One statement of a multi-statement query: its own SQL when the split matched the results
      // (a command whose later results were lost keeps its whole text).
      const s = cmd.statements[req.part];
      if (s !== undefined) req.query = s;
    }
    if (!keep) delete req.part;
    const tx: MysqlTransaction = { request: req, session: { ...this.session } };
    if (resp) tx.response = resp;
    this.emit(tx, incomplete ?? cmd.incomplete ?? (resp || UNANSWERED.has(cmd.code) ? undefined : 'no-response'));
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
