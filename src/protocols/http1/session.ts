import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import type { ClientView } from '../pairing.js';
import { type ConnectionView, Exchanges } from './exchanges.js';
import { DEFAULT_HTTP1_LIMITS, type Http1Limits } from './limits.js';
import type { Msg } from './message.js';
import { GAP_LOST, GAP_TAKEN, MessageReader, PLACEHOLDER, type ReaderEvents } from './reader.js';
import { StartScanner } from './resync.js';
import { UpgradeHold } from './upgrade.js';

/** Kept for callers that name the pairing bounds (their defaults live in limits.ts). */
export const MAX_PENDING_REQUESTS = DEFAULT_HTTP1_LIMITS.maxPendingRequests;
export const MAX_PENDING_BYTES = DEFAULT_HTTP1_LIMITS.maxPendingBytes;

/**
 * - sync: the reader is at or inside a message it can frame;
 * - resync: framing was lost; bytes are scanned for a start line (resync.ts);
 * - hold: client bytes after an Upgrade/CONNECT request wait for the server's verdict (upgrade.ts);
 * - stopped: the connection switched to another protocol.
 */
type DirState = 'sync' | 'resync' | 'hold' | 'stopped';

/**
 * HTTP/1.x on one connection (RFC 9112), split the way Zeek splits grammar from binding:
 *  - reader.ts: one MessageReader per direction, the parser adapter over the hardened
 *    http-parser-js of parser.ts: messages, their positions, times and bodies;
 *  - exchanges.ts: the HTTP binding of the protocol-neutral ../pairing.ts (which request each
 *    response answers: in order while nothing was lost, by TCP acknowledgements after a gap or a
 *    mid-connection start, never guessing), and the records;
 *  - resync.ts: regaining sync after lost framing; upgrade.ts: the Upgrade/CONNECT hold and handover.
 * This class coordinates them: stream events in, per-direction state, gaps and malformed input.
 */
export class Http1Session implements ProtocolSession {
  private readonly readers: [MessageReader, MessageReader];
  /** Made on the first resync of each direction (most connections never need one). */
  private readonly scanners: [StartScanner | undefined, StartScanner | undefined] = [undefined, undefined];
  private readonly state: [DirState, DirState] = ['sync', 'sync'];
  private readonly upgrade: UpgradeHold;
  private readonly exchanges: Exchanges;
  private readonly pairing: Exchanges['pairing'];
  /** The client direction is skipping bytes in this resync episode (its unparsed stretch is recorded). */
  private skipping = false;
  private ended = false;

  constructor(private readonly ctx: SessionContext, private readonly limits: Http1Limits = DEFAULT_HTTP1_LIMITS) {
    const whole = ctx.conn.handshakeSeen && !ctx.resync;
    this.upgrade = new UpgradeHold(limits.maxUpgradeHold);
    const view: ConnectionView = {
      client: (c) => this.clientView(c),
      inSync: () => this.state[0] === 'sync' && !this.skipping && this.state[1] === 'sync',
      idle: () => this.state[0] === 'sync' && this.state[1] === 'sync' && !this.readers[0].cur && !this.readers[1].cur,
      nextRequest: () => this.readers[0].next?.off,
      interimInProgress: () => this.readers[1].interimInProgress(),
      resumeClient: () => this.resumeClient(),
    };
    this.exchanges = new Exchanges(ctx, limits, this.upgrade, view, whole);
    this.pairing = this.exchanges.pairing;
    const bodyLimit = ctx.options.bodyLimit;
    const events: ReaderEvents = {
      head: (dir, msg, badLength) => this.head(dir, msg, badLength),
      kept: (msg, n) => this.exchanges.kept(msg, n),
      complete: (dir, msg) => this.complete(dir, msg),
      violation: (code, reason, offset) => ctx.violation(code, reason, offset),
    };
    this.readers = [new MessageReader(0, limits, bodyLimit, events), new MessageReader(1, limits, bodyLimit, events)];
    // Caught mid-connection, the first bytes of either direction may sit inside a message.
    if (!whole) this.state[0] = this.state[1] = 'resync';
  }

  // ---- stream events ------------------------------------------------------------------------

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    const next = this.upgrade.next;
    if (next) return next.data(dir, bytes, meta);
    const st = this.state[dir];
    if (st === 'stopped' || this.ended) return;
    if (dir === 0) this.pairing.client(meta.offset + bytes.length, meta.peerAck);
    if (st === 'hold') {
      if (!this.upgrade.hold(bytes, meta)) {
        this.ctx.violation('http.upgrade_hold', `more than ${this.limits.maxUpgradeHold} client bytes before the server answered an Upgrade`, meta.offset);
        this.state[dir] = 'resync';
      }
      return;
    }
    if (st === 'resync') {
      const sc = (this.scanners[dir] ??= new StartScanner(dir === 0 ? 'request' : 'response', this.limits.maxStartLine));
      const p = sc.scan(bytes, meta.offset);
      if (dir === 0 && sc.skipped && !this.skipping) {
        // Client bytes dropped here may hold requests nobody parsed: a response may answer one.
        this.skipping = true;
        this.pairing.hide(sc.base, meta.peerAck);
      }
      if (p < 0) return;
      const buf = sc.take();
      if (dir === 0) this.skipping = false;
      this.state[dir] = 'sync';
      const r = this.readers[dir];
      r.newParser();
      r.next = undefined;
      this.feed(dir, p === 0 ? buf : buf.subarray(p), { ...meta, offset: sc.base + p });
      return;
    }
    this.feed(dir, bytes, meta);
  }

  private feed(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    const reader = this.readers[dir];
    const parser = reader.parser;
    const r = reader.feed(bytes, meta);
    if (this.upgrade.next || this.ended) return;
    if (r instanceof Error || reader.abort) {
      const known = reader.abort !== undefined; // parsed through its headers: it is queued
      const code = reader.takeError(r);
      const at = parser.offset ?? 0;
      this.malformed(dir, code, meta.offset + at, known);
      if (at > 0 && at < bytes.length && !this.ended) this.data(dir, bytes.subarray(at), { ...meta, offset: meta.offset + at });
      return;
    }
    if (reader.lineTooLong()) {
      this.malformed(dir, 'HPE_LINE_TOO_LONG', meta.offset);
      return;
    }
    const up = this.upgrade;
    if (dir === 0 && up.asked && this.state[0] === 'sync' && reader.between()) {
      // The client asked to switch (Upgrade or CONNECT): its further bytes wait for the verdict.
      this.state[0] = 'hold';
      if (r < bytes.length) up.hold(bytes.subarray(r), { ...meta, offset: meta.offset + r }, false);
    } else if (dir === 1 && up.verdict) {
      const verdict = up.verdict;
      up.verdict = undefined;
      const rest = bytes.subarray(r);
      const restMeta = { ...meta, offset: meta.offset + r };
      if (verdict === 'switch') {
        this.state[0] = this.state[1] = 'stopped';
        up.handOver(this.ctx, rest, restMeta);
      } else {
        this.resumeClient();
        if (rest.length) this.feed(1, rest, restMeta);
      }
    }
  }

  gap(dir: Dir, length: number, meta: StreamMeta): void {
    const next = this.upgrade.next;
    if (next) return next.gap(dir, length, meta);
    const st = this.state[dir];
    if (st === 'stopped' || this.ended) return;
    if (dir === 0) this.pairing.client(meta.offset + length, -1);
    const reader = this.readers[dir];
    const msg = reader.cur;
    const n = st === 'sync' ? reader.bodyGap(length) : GAP_LOST;
    if (n === GAP_TAKEN) return;
    if (n !== GAP_LOST) {
      // The hole lies in a body of known length: framing survives, only bytes are missing. The
      // parser is fed one byte for the hole's last body byte, so its count ends where it should.
      if (n < length) this.pairing.noteLoss();
      this.feed(dir, PLACEHOLDER, { ...meta, offset: meta.offset + n - 1 });
      // The body ended inside the hole (its exchange is whole but for those bytes): the rest of
      // the hole starts at a message boundary.
      if (n < length && !this.ended) this.gap(dir, length - n, { ...meta, offset: meta.offset + n });
      return;
    }
    // Framing is lost: the message in progress is broken. A partial start line kept while
    // resynchronising does not go on after the hole.
    this.pairing.noteLoss();
    const sc = this.scanners[dir];
    if (sc) sc.tail = undefined;
    if (dir === 0) {
      if (!msg) this.exchanges.flushEarly();
      // The hole may hold requests nobody will parse. Requests queued before it still pair in
      // order (pick stops at the hole). Any request in it was sent after the last client packet
      // seen, so it carries at least that packet's acknowledgement.
      this.pairing.hide(meta.offset, Math.max(0, Math.min(meta.peerAck, this.pairing.clientAck)));
      this.skipping = true; // the bytes skipped while resynchronising belong to the same hole
    } else {
      // In-order pairing of responses is over: the hole holds an unknown number of them.
      this.pairing.serverLost(!msg, undefined, meta.offset);
    }
    if (msg) {
      msg.broken = 'gap';
      msg.gap = true;
      this.finishBroken(dir, msg);
    }
    if (st === 'hold') this.upgrade.drop();
    reader.cur = undefined;
    reader.next = undefined;
    this.state[dir] = 'resync';
  }

  fin(dir: Dir, time: number): void {
    const next = this.upgrade.next;
    if (next) return next.fin(dir, time);
    // A body delimited by the connection close (RFC 9112 §6.3 rule 8) ends at the FIN.
    const reader = this.readers[dir];
    if (this.state[dir] === 'sync' && reader.closeDelimited()) reader.parser.finish();
  }

  end(time: number, reason: CloseReason): void {
    const next = this.upgrade.next;
    if (next) return next.end(time, reason);
    if (this.ended) return;
    for (const dir of [0, 1] as Dir[]) {
      const reader = this.readers[dir];
      if (this.state[dir] === 'sync' && reader.closeDelimited()) {
        // Only a FIN proves a close-delimited body whole; a reset or the end of the capture does not.
        if (reader.cur && reason !== 'fin') reader.cur.broken = reason === 'eof' ? 'capture-ended' : `connection-${reason}`;
        reader.parser.finish();
      }
      const msg = reader.cur;
      if (msg && !msg.complete) {
        msg.broken ??= reason === 'eof' ? 'capture-ended' : 'connection-closed';
        this.finishBroken(dir, msg);
        reader.cur = undefined;
      }
    }
    this.exchanges.flushEarly();
    this.ended = true;
    // A reset is named: connection-churn reports requests a peer answered with RST.
    const why = reason === 'eof' ? 'no-response-before-capture-end' : reason === 'rst' ? 'connection-rst' : 'no-response';
    this.exchanges.end(why);
  }

  // ---- what the readers read (their ReaderEvents) -------------------------------------------

  private head(dir: Dir, msg: Msg, badLength: boolean): number {
    const reader = this.readers[dir];
    const info = msg.info;
    if (dir === 0) {
      const req = this.exchanges.request(msg);
      if (badLength) return reader.fail('HPE_INVALID_CONTENT_LENGTH'); // queued first: its response still pairs with it
      if (info.upgrade) this.upgrade.asked = req;
      return 0;
    }
    // Response: decide which request it answers; HEAD and CONNECT change its framing.
    const status = info.statusCode ?? 0;
    const req = this.exchanges.responseHead(msg);
    const method = req?.request.info.method;
    if (badLength) return reader.fail('HPE_INVALID_CONTENT_LENGTH'); // paired first, so the broken response keeps its request
    // 1xx, 204 and 304 end with their header section whatever Content-Length says (RFC 9112 §6.3 rule 1).
    if ((status >= 100 && status < 200 && status !== 101) || status === 204 || status === 304) return 1;
    if (method === 'HEAD') return 1;
    if (method === 'CONNECT' && status >= 200 && status < 300) {
      info.upgrade = true; // a tunnel follows the header section (RFC 9112 §6.3 rule 2)
      return 1;
    }
    return 0;
  }

  private complete(dir: Dir, msg: Msg): void {
    if (this.readers[dir].abort) {
      msg.broken = 'malformed';
      this.finishBroken(dir, msg);
      return;
    }
    if (dir === 0) this.exchanges.requestDone(msg);
    else this.exchanges.response(msg);
  }

  /** What pairing needs to know of the client direction when a response must be placed. */
  private clientView(c: ClientView): void {
    const partial = this.state[0] === 'sync' ? this.readers[0].partial() : undefined;
    c.partialOff = partial ? partial.off : -1;
    c.partialAck = partial ? partial.peerAck : -1;
    const t = this.scanners[0]?.tail;
    c.scanOff = this.state[0] === 'resync' && t && !this.skipping ? t.off : -1;
    const h = this.state[0] === 'hold' ? this.upgrade.first() : undefined;
    c.heldOff = h ? h.offset : -1;
    c.heldAck = h ? h.peerAck : -1;
  }

  /** The server declined the Upgrade: the held client bytes are HTTP/1 after all. */
  private resumeClient(): void {
    if (this.state[0] !== 'hold') return;
    this.state[0] = 'sync';
    this.readers[0].newParser();
    for (const h of this.upgrade.take()) this.data(0, h.bytes, h.meta);
  }

  // ---- errors --------------------------------------------------------------------------------

  private malformed(dir: Dir, code: string, offset: number, known = false): void {
    this.ctx.violation(`http.${code.replace(/^HPE_/, '').toLowerCase()}`, `malformed HTTP/1 ${dir === 0 ? 'request' : 'response'} (${code})`, offset);
    const reader = this.readers[dir];
    const msg = reader.cur;
    if (msg) {
      msg.broken = 'malformed';
      reader.close(msg, offset);
      this.finishBroken(dir, msg);
    } else if (dir === 0 && !known) {
      // A request broken before its headers ended was never queued, yet a response may answer it.
      this.exchanges.flushEarly();
      const m = reader.next ?? reader.mark();
      this.pairing.hide(m.off, m.peerAck);
      this.skipping = true; // the bytes skipped next belong to it
    } else if (dir === 1 && !known) {
      // A response broken before its headers ended, where in-order pairing expected the next one.
      this.pairing.serverLost(true, 'malformed');
    }
    reader.cur = undefined;
    reader.next = undefined;
    this.pairing.uncertain();
    this.state[dir] = 'resync';
  }

  /** A message that will not complete: requests stay queued for a response; responses are emitted. */
  private finishBroken(dir: Dir, msg: Msg): void {
    const reader = this.readers[dir];
    reader.close(msg, reader.seenEnd);
    if (dir === 0) this.exchanges.requestDone(msg); // already answered: report it now, never pair it again
    else this.exchanges.responseBroken(msg);
  }
}
