import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import type { PgExchange, PgNotice, PgTransaction } from './types.js';
import {
  BACKEND, FRONTEND, MessageReader, STARTUP, TruncatedMessage, parseAuthentication, parseBind,
  parseCommandComplete, parseCopyResponse, parseDataRow, parseExecute, parseFields, parseNotification, parseParameterDescription,
  parseParse, parseQuery, parseReadyForQuery, parseRowDescription, parseStartup, parseTarget, type Message,
} from './messages.js';
import { AMBIGUOUS_RESPONSE, LOST_RESPONSE, NO_REQUEST, type Unit, Units } from './units.js';
import { Resync } from './resync.js';
import { type Batch, type Mark, type Op, PORTAL_LOST, type Result, STATEMENT_UNKNOWN, UNKNOWN_PREPARED, executeRequest, freshResult, placeTail, queryRequest, requestOf, responseOf, unanswered } from './ops.js';
import { countLines, notice, remember, splitStatements } from './statements.js';
import { StatusAfterLoss } from './txstatus.js';
import { decodeValue, type PgValue } from './values.js';

export { splitStatements } from './statements.js';
export { STATEMENT_UNKNOWN, UNKNOWN_PREPARED } from './ops.js';

const DEFAULT_PREVIEW_ROWS = 5;
/**
 * PostgreSQL protocol 3.0 on one connection (PostgreSQL docs, chapter "Frontend/Backend Protocol":
 * protocol-flow.html for the message flow, protocol-message-formats.html for each message).
 * Frontend messages are queued in order; backend messages answer the head of the queue, because
 * the backend answers strictly in order, also when the client pipelines ("Pipelining"). A record
 * is emitted per executed statement (each statement of a multi-statement Query, each Execute),
 * with the SQL text — from the named statement for Execute — parameters, result, error and timing. Credentials never leave the
 * message parsers. Which client batch a server batch answers is units.ts's: in order while
 * nothing was lost, by TCP acknowledgements after a loss. After a gap or garbage a direction
 * resynchronises at the next provable message start (resync.ts, messages.ts runAt), and every
 * record that lost bytes says so.
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
  /** Client batches awaiting their ReadyForQuery (units.ts). */
  private readonly units: Units<Op>;
  /** The ops of the batch being answered (its unit's own list, or none for an answer paired with nothing). */
  private queue: Op[] = [];
  /** The server batch being read: the client batch it answers, or why it has none. */
  private batch: Batch | undefined;
  /** The last server message was a ReadyForQuery, with nothing lost since: the next one begins a batch's answer. */
  private afterZ: boolean;
  /** ACK of the packet where each direction's held partial message began. */
  private readonly heldAck: [number, number] = [-1, -1];
  private readonly heldMark: [Mark, Mark] = [{ time: 0, frame: 0 }, { time: 0, frame: 0 }];
  /** While resynchronising: the search for a message start, with the bytes it holds and where they came from. */
  private readonly scanned: [Resync | undefined, Resync | undefined] = [undefined, undefined];
  /** Client bytes were lost: a named statement not known may have been prepared in them. */
  private clientLoss = false;
  /** Bytes were lost in either direction (from then on an Execute left without its batch is not "skipped"). */
  private lossSeen = false;
  /** The transaction status before the first batch after a server hole (txstatus.ts). */
  private readonly txs = new StatusAfterLoss();
  private result: Result = freshResult();
  /** After an error in an extended-protocol batch, the backend discards messages up to Sync (docs, "Extended Query"). */
  private skipping = false;
  private encrypted = false;
  private lost: [boolean, boolean] = [false, false];
  private ended = false;
  private readonly previewRows: number;
  /** Bytes of Parse/Bind/Describe sent since the last Execute: part of the next statement's request. */
  private preparing = 0;
  /** Where the first of those began: the statement's request starts there. */
  private preparingAt: Mark | undefined;

  constructor(private readonly ctx: SessionContext) {
    const mid = !ctx.conn.handshakeSeen || ctx.resync === true;
    this.units = new Units<Op>(!mid);
    this.afterZ = !mid;
    this.fe = new MessageReader(true, !mid, (m) => this.read(0, m));
    this.be = new MessageReader(false, false, (m) => this.read(1, m), (b, off) => this.onAnswer(b, off));
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
    if (dir === 0) this.units.client(off + b.length, meta.peerAck);
    if (this.lost[dir]) {
      // The next provable message start (a run of well-formed messages to the segment's end):
      // bytes before it are not read, and what follows is paired by acknowledgements (units.ts).
      // A position whose run reached the segment's end is looked at again with the next segment
      // (a run may be cut by a segment boundary); the others never are (resync.ts).
      const t = (this.scanned[dir] ??= new Resync(off, this.mark(dir), meta.peerAck, dir === 0));
      const p = t.push(b);
      if (p < 0) return;
      this.scanned[dir] = undefined;
      if (p < meta.offset) {
        // The first message began in a segment looked at before: its packet and ACK are that one's.
        this.heldMark[dir] = t.mark;
        this.heldAck[dir] = t.ack;
      }
      this.lost[dir] = false;
      const r = dir === 0 ? this.fe : this.be;
      r.resume();
      if (dir === 0) this.fe.typed();
      b = t.bytesFrom(p);
      off = p;
    }
    const r = dir === 0 ? this.fe : this.be;
    r.push(b, off);
    if (r.pendingOff >= meta.offset) {
      this.heldAck[dir] = meta.peerAck;
      this.heldMark[dir] = this.mark(dir);
    }
    if (r.broken) this.lose(dir, r.brokenCode, r.broken, off);
  }

  gap(dir: Dir, length: number, meta: StreamMeta): void {
    if (this.ended || this.encrypted) return;
    this.lose(dir, undefined, 'gap', meta.offset);
    if (dir === 0) this.units.client(meta.offset + length, -1);
  }

  fin(): void {}

  end(_time: number, reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    this.txs.release(undefined, (tx) => this.ctx.emit(tx));
    this.flushQueue(reason === 'eof' ? 'capture-ended' : 'connection-closed');
  }

  /** A direction lost its framing at stream offset `offset` (a gap, or a message that cannot be right). */
  private lose(dir: Dir, code: string | undefined, reason: string, offset: number): void {
    if (code) this.ctx.violation(code, `${dir === 0 ? 'frontend' : 'backend'}: ${reason}`, offset);
    this.lossSeen = true;
    this.scanned[dir] = undefined; // bytes before a hole never join bytes after it
    if (dir === 0) {
      // The batch being sent lost its tail, and whole batches may hide in the lost bytes. The
      // unnamed statement and portal are redefined by every batch ("Extended Query"): one in the
      // lost bytes may have replaced them, so they are not trusted past the hole.
      this.units.lostClient(offset);
      this.preparing = 0;
      this.preparingAt = undefined;
      this.statements.delete('');
      this.portals.delete('');
      this.clientLoss = true;
    } else if (!this.lost[1]) {
      this.serverLost(offset);
    }
    this.lost[dir] = true;
    (dir === 0 ? this.fe : this.be).resume();
  }

  /**
   * Server bytes from `offset` were lost. Inside a batch's answer, the statements still waiting in
   * it lost theirs (the one being read keeps what arrived, marked `gap`); at a batch boundary, in
   * order, the lost bytes began the answer to the oldest batch waiting. What follows the hole
   * answers nothing known until acknowledgements or a ReadyForQuery prove where a batch starts.
   */
  private serverLost(offset: number): void {
    const b = this.batch;
    this.txs.release(undefined, (tx) => this.ctx.emit(tx));
    this.txs.lost();
    if (b?.unit && !b.cut) {
      // Its ReadyForQuery may still come: the answers after the hole are placed by counting back from it.
      b.cut = { tail: [], checked: false, whole: false };
      this.units.certain = false;
      this.afterZ = false;
      this.result = freshResult();
      return;
    }
    if (b?.unit) this.abandon(b);
    else if (b) {
      // An answer paired with nothing, cut: what arrived of the statement being read is reported.
      const start = this.result.start ?? (this.be.pendingOff >= 0 ? this.heldMark[1] : undefined);
      if (start) this.emit({ response: responseOf(this.result, start, this.mark(1), {}) }, 'gap');
    } else {
      const u = this.units.lostServer(offset);
      if (u) {
        // Its answer began in the hole; the rest of it may follow (a batch's answer in several segments).
        this.batch = { unit: u, extended: false, cut: { tail: [], checked: false, whole: false } };
        this.queue = u.ops;
        this.afterZ = false;
        this.result = freshResult();
        return;
      }
    }
    this.units.certain = false;
    this.batch = undefined;
    this.queue = [];
    this.afterZ = false;
    this.skipping = false;
    this.result = freshResult();
  }

  /** A cut batch whose answers cannot be placed: its statements lost theirs; those read are reported alone. */
  private abandon(b: Batch): void {
    this.units.drop(b.unit!);
    this.retireUnit(b.unit!, LOST_RESPONSE);
    for (const t of b.cut?.tail ?? []) this.emit({ response: t.response }, NO_REQUEST);
    this.batch = undefined;
    this.queue = [];
  }

  /** A batch whose answer will not be read: each statement in it is reported alone, with why. */
  private retireUnit(u: Unit<Op>, reason: string): void {
    for (const t of unanswered(u.ops.splice(0))) this.emit(t, reason);
  }

  private mark(dir: Dir): Mark {
    return { time: this.at[dir].time, frame: this.at[dir].frame };
  }

  /** The ACK carried by the packet where the message at stream offset `off` began. */
  private ackOf(dir: Dir, off: number): number {
    const a = this.at[dir];
    return off >= a.offset ? a.peerAck : this.heldAck[dir];
  }

  /** The packet where the message at stream offset `off` began: this one (`now`, its mark), or where its held start came. */
  private startMark(dir: Dir, off: number, now: Mark): Mark {
    return off >= this.at[dir].offset ? now : this.heldMark[dir];
  }

  /** A frontend op joins the batch being sent; Sync, Query and FunctionCall end it (each gets a ReadyForQuery). */
  private push(op: Op, m: Message): void {
    const u = this.units.open(m.offset, this.ackOf(0, m.offset));
    u.ops.push(op);
    if (op.kind === 'sync' || op.kind === 'query' || op.kind === 'function') u.closed = true;
  }

  /** The server begins the answer to a batch: which one (units.ts), from its first message. */
  private startBatch(off: number): void {
    const p = this.units.pick(off, this.ackOf(1, off), this.afterZ, (u, reason) => this.retireUnit(u, reason));
    this.batch = { unit: p.unit, reason: p.reason, extended: false };
    this.queue = p.unit ? p.unit.ops : [];
    this.afterZ = false;
    if (this.txs.begin()) this.session.transaction = undefined;
  }

  // ---- frontend ------------------------------------------------------------------------------

  /** A message whose fields run past its declared length is a violation, never a throw. */
  private read(dir: Dir, m: Message): void {
    try {
      if (dir === 0) this.frontend(m);
      else this.backend(m);
    } catch (err) {
      if (!(err instanceof TruncatedMessage)) throw err;
      const name = m.type ? String.fromCharCode(m.type) : 'startup';
      this.ctx.violation('pg.truncated_message', `${dir === 0 ? 'frontend' : 'backend'} message '${name}' is shorter than its fields (${err.message})`, m.offset);
    }
  }

  private frontend(m: Message): void {
    // Its first byte's packet, and its last byte's (this one): a message may span segments.
    const end = this.mark(0);
    const at = this.startMark(0, m.offset, end);
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
        this.push({ kind: 'query', sql, parts: splitStatements(sql), index: 0, at, end, size }, m);
        return;
      }
      case FRONTEND.Parse: {
        const p = parseParse(m.body);
        remember(this.statements, p.name, { sql: p.sql, types: p.paramTypes });
        this.push({ kind: 'parse', at, end, size }, m);
        this.preparing += size;
        this.preparingAt ??= at;
        return;
      }
      case FRONTEND.Bind: {
        const b = parseBind(m.body);
        const types = this.statements.get(b.statement)?.types ?? [];
        const params = b.values.map((v, i) => decodeValue(v, b.formats[i] ?? 0, types[i]));
        remember(this.portals, b.portal, { statement: b.statement, params });
        this.push({ kind: 'bind', at, end, size }, m);
        this.preparing += size;
        this.preparingAt ??= at;
        return;
      }
      case FRONTEND.Describe: {
        const t = parseTarget(m.body);
        this.push({ kind: 'describe', target: t.kind, name: t.name, at, end, size }, m);
        this.preparing += size;
        this.preparingAt ??= at;
        return;
      }
      case FRONTEND.Execute: {
        // Execute names a portal; the portal's Bind named the statement and its Parse the SQL
        // ("Extended Query"), so the record carries the SQL and parameters of this run.
        const e = parseExecute(m.body);
        const portal = this.portals.get(e.portal);
        const statement = portal?.statement ?? '';
        const sql = portal ? this.statements.get(statement)?.sql : undefined;
        // Not known: prepared before the capture began, or (client bytes were lost) its Bind or
        // its statement's Parse was in the lost bytes.
        const unknown = sql !== undefined ? undefined : !this.clientLoss ? UNKNOWN_PREPARED : portal ? STATEMENT_UNKNOWN : PORTAL_LOST;
        this.push({ kind: 'execute', portal: e.portal, statement, sql, params: portal?.params ?? [], at: this.preparingAt ?? at, end, size: size + this.preparing, ...(unknown ? { unknown } : {}) }, m);
        this.preparing = 0;
        this.preparingAt = undefined;
        return;
      }
      case FRONTEND.Close: {
        const t = parseTarget(m.body);
        (t.kind === 'S' ? this.statements : this.portals).delete(t.name);
        this.push({ kind: 'close', at, end, size }, m);
        return;
      }
      case FRONTEND.Sync:
        // Parse/Bind/Describe of a batch with no Execute (a prepare-only batch) are no later statement's request.
        this.preparing = 0;
        this.preparingAt = undefined;
        this.push({ kind: 'sync', at, end, size }, m);
        return;
      case FRONTEND.FunctionCall:
        this.push({ kind: 'function', at, end, size }, m);
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
      // 'S' (SSL) or 'G' (GSSAPI): everything after is encrypted; nothing more can be decoded here.
      this.encrypted = true;
      this.session.auth = byte === 0x53 ? 'ssl' : 'gssenc';
      // After 'S' the client starts a TLS handshake on the same connection ("SSL Session
      // Encryption"): the TLS analyzer reads it, as it reads any other TLS connection.
      if (byte === 0x53) this.ctx.handover('tls');
      return;
    }
    if (byte !== 0x4e) this.ctx.violation('pg.bad_ssl_answer', `answer to SSLRequest/GSSENCRequest is 0x${byte.toString(16)}, not S, G or N`, offset);
  }

  private backend(m: Message): void {
    const at = this.mark(1);
    // ParameterStatus and NotificationResponse may come between batches, unasked ("Asynchronous
    // Operations"); any other message begins the answer to a batch when none is being read.
    const cut = this.batch?.cut;
    if (cut && (!cut.checked || m.type === BACKEND.ReadyForQuery)) {
      // Still the cut batch's answer only if the server had received no later batch when it sent this.
      if (!this.units.stillAnswering(this.batch!.unit!, this.ackOf(1, m.offset))) this.abandon(this.batch!);
      else if (!cut.checked) cut.whole = m.type === BACKEND.ParseComplete || m.type === BACKEND.BindComplete;
      cut.checked = true;
    }
    if (!this.batch && m.type !== BACKEND.ParameterStatus && m.type !== BACKEND.NotificationResponse) this.startBatch(m.offset);
    const res = this.result;
    // A NotificationResponse is a record of its own, and a ParameterStatus between batches answers
    // nothing: neither is part of a statement's answer.
    if (m.type !== BACKEND.NotificationResponse && (this.batch || m.type !== BACKEND.ParameterStatus)) {
      res.size += m.body.length + 5;
      // The result starts with the first message counted in it (resets drop those answering Parse, Bind, Describe).
      res.start ??= this.startMark(1, m.offset, at);
    }
    switch (m.type) {
      case BACKEND.Authentication: {
        const a = parseAuthentication(m.body);
        if (a.code !== 0 && a.mechanism && a.code !== 11 && a.code !== 12) this.session.auth = a.mechanism;
        else if (a.code === 0 && !this.session.auth) this.session.auth = 'trust';
        this.resetResult();
        return;
      }
      case BACKEND.ReadyForQuery: {
        const status = parseReadyForQuery(m.body);
        // Ends a simple Query, or the batch up to and including a Sync ("Simple Query", "Extended
        // Query"): Executes still queued were skipped by the backend after an error. Without one,
        // after a loss, their answers were not told apart (the batch lost messages).
        const skipped = this.skipping || !this.lossSeen;
        if (this.batch?.cut) for (const [t, why] of placeTail(this.queue.splice(0), this.batch.cut)) this.emit(t, why);
        this.session.transaction = status;
        while (this.queue.length > 0) {
          const op = this.queue.shift()!;
          if (op.kind === 'sync' || op.kind === 'query') break;
          if (op.kind === 'execute') {
            if (skipped) this.emitExecute(op, at, { skipped: true });
            else this.emit({ request: executeRequest(op) }, AMBIGUOUS_RESPONSE);
          }
        }
        this.txs.release(status, (tx) => this.ctx.emit(tx));
        const unit = this.batch?.unit;
        this.units.answered(unit, m.offset + 6);
        this.batch = undefined;
        this.queue = [];
        this.afterZ = true;
        this.units.settle(!this.lost[0] && !this.lost[1], unit !== undefined, this.ackOf(1, m.offset));
        this.skipping = false;
        this.resetResult();
        return;
      }
      case BACKEND.ParseComplete: case BACKEND.BindComplete: case BACKEND.CloseComplete:
        if (this.batch && m.type !== BACKEND.CloseComplete) this.batch.extended = true;
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
        // It answers a Describe: not part of the result. Answering nothing known, it answered one
        // when the batch was extended-protocol (pg, libpq and JDBC describe the portal they run).
        const described = this.queue[0]?.kind === 'describe';
        if (described || (!this.batch?.unit && this.batch?.extended)) {
          if (described) this.queue.shift();
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
          this.emit({ response: responseOf(this.result, at, at, { error }) }, this.batch?.reason ?? (this.batch?.cut ? NO_REQUEST : undefined));
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
          request: requestOf(op, 'FunctionCall'),
          response: responseOf(this.result, at, at, {}),
        }));
        this.resetResult();
        return;
      default:
        return; // ParameterStatus, BackendKeyData (its key is a credential: not read), NegotiateProtocolVersion
    }
  }

  /** A statement finished (CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse). */
  private complete(at: Mark, out: { command?: string; empty?: true; suspended?: true; error?: PgNotice }): void {
    const cut = this.batch?.cut;
    if (cut) {
      cut.tail.push({ response: responseOf(this.result, this.result.start ?? at, at, out), error: out.error !== undefined });
      this.resetResult();
      return;
    }
    // Answers to Parse/Bind/Describe/Close that never came: the statement failed at one of them,
    // and the error belongs to the Execute it was being prepared for.
    while (this.queue.length > 0 && ['parse', 'bind', 'describe', 'close'].includes(this.queue[0]!.kind)) {
      const op = this.queue.shift()!;
      if (!out.error) continue;
      const next = this.queue.find((o) => o.kind === 'execute' || o.kind === 'sync' || o.kind === 'query');
      if (next?.kind !== 'execute') {
        // Nothing was to be executed (a prepare-only batch): the error is reported on its own.
        this.emit({ request: requestOf(op, 'Execute'), response: responseOf(this.result, at, at, out) });
        this.resetResult();
        this.skipping = true;
        return;
      }
    }
    const op = this.queue[0];
    if (op?.kind === 'query') {
      this.emit({ request: queryRequest(op), response: responseOf(this.result, this.result.start ?? at, at, out) });
      op.index++;
      // An error aborts the rest of the query string; ReadyForQuery ends the op either way.
    } else if (op?.kind === 'execute') {
      this.queue.shift();
      this.emitExecute(op, at, out);
      if (out.error) this.skipping = true;
    } else {
      // A result no statement seen asked for: its batch's request was lost (the batch's reason).
      this.emit({ response: responseOf(this.result, this.result.start ?? at, at, out) }, this.batch?.reason ?? NO_REQUEST);
    }
    this.resetResult();
  }

  /** `reason` overrides what the op itself lacks (its statement unknown). */
  private emitExecute(op: Extract<Op, { kind: 'execute' }>, at: Mark, out: { command?: string; empty?: true; suspended?: true; error?: PgNotice; skipped?: true }, reason?: string): void {
    const request = executeRequest(op);
    if (out.skipped) {
      // The backend skipped it after an earlier error in the batch: sent, never executed.
      this.emit({ request }, 'skipped-after-error');
      return;
    }
    this.emit({ request, response: responseOf(this.result, this.result.start ?? at, at, out) }, reason ?? op.unknown);
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

  /** Everything in flight when the connection ended. */
  private flushQueue(reason: string): void {
    for (const t of this.batch?.cut?.tail ?? []) this.emit({ response: t.response }, NO_REQUEST);
    for (const u of this.units.drain()) this.retireUnit(u, reason);
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
    if (!this.txs.hold(tx)) this.ctx.emit(tx);
  }
}

