import type { CloseReason, Dir, StreamMeta } from '../../reassembly/types.js';
import type { ProtocolSession, SessionContext, Transaction } from '../types.js';
import { type ClientView, Pairing, UNPAIRED } from '../pairing.js';
import { DEFAULT_HTTP1_LIMITS, type Http1Limits } from './limits.js';
import { headerBytes, isFinal, type Msg, type Req, requestHalf, responseHalf } from './message.js';
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
 * HTTP/1.x on one connection (RFC 9112), the way Zeek splits grammar from binding: one
 * MessageReader per direction reads messages (reader.ts over the hardened http-parser-js of
 * parser.ts), the protocol-neutral Pairing (../pairing.ts) says which request each response
 * answers (in order while nothing was lost; by TCP acknowledgements after a gap or mid-connection
 * start, never guessing), StartScanner regains sync, UpgradeHold holds client bytes across an
 * Upgrade and hands the connection over. This class coordinates them and builds the records.
 */
export class Http1Session implements ProtocolSession {
  private readonly readers: [MessageReader, MessageReader];
  /** Made on the first resync of each direction (most connections never need one). */
  private readonly scanners: [StartScanner | undefined, StartScanner | undefined] = [undefined, undefined];
  private readonly state: [DirState, DirState] = ['sync', 'sync'];
  private readonly pairing: Pairing<Msg, Msg>;
  private readonly upgrade: UpgradeHold;
  /** What pick needs to know of the client direction; refreshed before each pick (no allocation). */
  private readonly client: ClientView = { partialOff: -1, partialAck: -1, scanOff: -1, heldOff: -1, heldAck: -1 };
  /** The client direction is skipping bytes in this resync episode (its unparsed stretch is recorded). */
  private skipping = false;
  private ended = false;
  /** A 1xx interim response was seen on this connection (lost server bytes may have been only that). */
  private sawInterim = false;
  /** A final response that answered a request before its header section ended, until that request is queued. */
  private early: { off: number; resp: Msg } | undefined;

  constructor(private readonly ctx: SessionContext, private readonly limits: Http1Limits = DEFAULT_HTTP1_LIMITS) {
    const whole = ctx.conn.handshakeSeen && !ctx.resync;
    this.pairing = new Pairing<Msg, Msg>(limits, {
      retired: (r) => {
        if (r.request.complete || r.request.broken) this.emit(r);
      },
      evicted: (r) => this.emit(r),
      overflow: (what, off) => {
        if (what === 'pending') this.ctx.violation('http.pending_requests', `more than ${limits.maxPendingRequests} requests or ${limits.maxPendingBytes} bytes awaiting responses; the oldest is reported without its response`, off);
        else this.ctx.violation('http.unparsed_requests', `more than ${limits.maxUnparsed} stretches of unparsed client bytes awaiting responses; pairing stops until the connection settles`, off);
      },
      interimMayFill: (r) => this.interimMayFill(r),
    }, whole, ctx.conn.handshakeSeen);
    this.upgrade = new UpgradeHold(limits.maxUpgradeHold);
    const bodyLimit = ctx.options.bodyLimit;
    const events: ReaderEvents = {
      head: (dir, msg, badLength) => this.head(dir, msg, badLength),
      kept: (msg, n) => this.kept(msg, n),
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
      if (!msg) this.flushEarly();
      // The hole may hold requests nobody will parse. Requests queued before it still pair in
      // order (pick stops at the hole). Any request in it was sent after the last client packet
      // seen, so it carries at least that packet's acknowledgement.
      this.pairing.hide(meta.offset, Math.max(0, Math.min(meta.peerAck, this.pairing.clientAck)));
      this.skipping = true; // the bytes skipped while resynchronising belong to the same hole
    } else {
      // In-order pairing of responses is over: the hole holds an unknown number of them.
      this.pairing.serverLost(!msg);
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
    this.flushEarly();
    this.ended = true;
    // A reset is named: connection-churn reports requests a peer answered with RST.
    const why = reason === 'eof' ? 'no-response-before-capture-end' : reason === 'rst' ? 'connection-rst' : 'no-response';
    for (const req of this.pairing.drain()) this.emit(req, req.done ?? req.request.broken ?? why);
  }

  // ---- what the readers read (their ReaderEvents) -------------------------------------------

  private head(dir: Dir, msg: Msg, badLength: boolean): number {
    const reader = this.readers[dir];
    const info = msg.info;
    if (dir === 0) {
      const req = this.pairing.create(msg.start.off, msg.start.peerAck, msg, headerBytes(info));
      msg.req = req;
      const early = this.early;
      if (early) {
        this.early = undefined;
        if (early.off === msg.start.off) this.pairing.attach(req, early.resp, early.resp.endOff);
        else this.emitOrphan(early.resp, UNPAIRED.noRequest);
      }
      this.pairing.enqueue(req);
      if (badLength) return reader.fail('HPE_INVALID_CONTENT_LENGTH'); // queued first: its response still pairs with it
      if (info.upgrade) this.upgrade.asked = req;
      return 0;
    }
    // Response: decide which request it answers; HEAD and CONNECT change its framing.
    const status = info.statusCode ?? 0;
    const req = this.pick(msg);
    this.pairing.answering = req;
    this.pairing.answeringKnown = true;
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

  private kept(msg: Msg, n: number): void {
    const req = msg.req;
    if (req && !req.reported) this.pairing.grow(req, n);
  }

  private complete(dir: Dir, msg: Msg): void {
    if (this.readers[dir].abort) {
      msg.broken = 'malformed';
      this.finishBroken(dir, msg);
      return;
    }
    if (dir === 0) {
      const req = msg.req;
      if (req?.response || req?.done) this.emit(req);
      return;
    }
    this.onResponse(msg);
  }

  // ---- pairing -------------------------------------------------------------------------------

  /** Which queued request the response `resp` answers (see Pairing.pick). */
  private pick(resp: Msg): Req | undefined {
    const c = this.client;
    const partial = this.state[0] === 'sync' ? this.readers[0].partial() : undefined;
    c.partialOff = partial ? partial.off : -1;
    c.partialAck = partial ? partial.peerAck : -1;
    const t = this.scanners[0]?.tail;
    c.scanOff = this.state[0] === 'resync' && t && !this.skipping ? t.off : -1;
    const h = this.state[0] === 'hold' ? this.upgrade.first() : undefined;
    c.heldOff = h ? h.offset : -1;
    c.heldAck = h ? h.peerAck : -1;
    return this.pairing.pick(resp.start.off, resp.start.peerAck, isFinal(resp.info.statusCode), c);
  }

  /**
   * Server bytes were lost at `r`'s turn: they may have held only interim (1xx) responses, so its
   * final one may still come (RFC 9110 §15.2) — possible only when one was asked for
   * (Expect: 100-continue), one was seen on this connection, or the request asked to upgrade.
   */
  private interimMayFill(r: Req): boolean {
    if (this.sawInterim || r === this.upgrade.asked || r.request.info.upgrade) return true;
    if (/100-continue/i.test(r.request.headers['expect'] ?? '')) return true;
    return this.readers[1].interimInProgress();
  }

  private onResponse(resp: Msg): void {
    const pairing = this.pairing;
    let req = pairing.answeringKnown ? pairing.answering : this.pick(resp);
    const unique = pairing.unique;
    const early = pairing.early;
    pairing.early = -1;
    pairing.answering = undefined;
    pairing.answeringKnown = false;
    const status = resp.info.statusCode ?? 0;
    if (status >= 100 && status < 200 && status !== 101) {
      // Interim response (RFC 9110 §15.2): the final one is still to come.
      this.sawInterim = true;
      if (req) (req.request.interim ??= []).push({ status, time: resp.start.time, frame: resp.start.frame });
      return;
    }
    if (!req && early >= 0) {
      // It answers the request that was still being read: paired with it once it is queued.
      req = pairing.queue.find((r) => r.off === early && !r.response && !r.done);
      if (!req && !this.early && early === this.readers[0].next?.off) {
        this.early = { off: early, resp };
        return;
      }
    }
    if (!req || req.reported) {
      // (A reported request here was evicted from the queue while its response was being read.)
      this.emitOrphan(resp, req ? UNPAIRED.evicted : pairing.orphan);
      this.settle();
      return;
    }
    pairing.answer(req, resp, resp.endOff);
    const up = this.upgrade;
    const method = req.request.info.method;
    if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) {
      // Upgrade accepted (RFC 9110 §15.2.2) or tunnel established (§9.3.6): the rest of the
      // connection is another protocol.
      up.accept(req.request, status === 101 ? (req.request.headers['upgrade'] ?? 'unknown').trim().toLowerCase() : 'tunnel');
    }
    const declined = req === up.asked && up.verdict !== 'switch';
    if (declined) up.asked = undefined;
    if (unique) pairing.reanchor(resp.start.peerAck, !up.verdict && this.state[0] === 'sync' && !this.skipping && this.state[1] === 'sync');
    if (req.request.complete || req.request.broken) this.emit(req);
    this.settle();
    // Replay the client bytes held for the verdict now: a later response in this same chunk
    // answers one of them and must find it queued.
    if (declined) this.resumeClient();
  }

  /** Back to certain pairing once nothing is outstanding and both directions are in sync. */
  private settle(): void {
    const [r0, r1] = this.readers;
    this.pairing.settle(this.state[0] === 'sync' && this.state[1] === 'sync' && !r0.cur && !r1.cur);
  }

  /** The server declined the Upgrade: the held client bytes are HTTP/1 after all. */
  private resumeClient(): void {
    if (this.state[0] !== 'hold') return;
    this.state[0] = 'sync';
    this.readers[0].newParser();
    for (const h of this.upgrade.take()) this.data(0, h.bytes, h.meta);
  }

  // ---- errors --------------------------------------------------------------------------------

  /** The request an early response answered will not be queued: the response is reported alone. */
  private flushEarly(): void {
    const early = this.early;
    this.early = undefined;
    if (early) this.emitOrphan(early.resp, UNPAIRED.noRequest);
  }

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
      this.flushEarly();
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
    if (dir === 0) {
      const req = msg.req;
      if (req?.response || req?.done) this.emit(req); // already answered: report it now, never pair it again
      return;
    }
    const pairing = this.pairing;
    const req = pairing.answeringKnown ? pairing.answering : undefined;
    pairing.answering = undefined;
    pairing.answeringKnown = false;
    if (req && !req.reported) {
      pairing.retireBefore(req.off, UNPAIRED.lostInGap);
      pairing.attach(req, msg, msg.complete ? msg.endOff : -1);
      this.emit(req);
    } else this.emitOrphan(msg, msg.broken ?? 'malformed');
  }

  // ---- output --------------------------------------------------------------------------------

  private emit(req: Req, reason?: string): void {
    if (req.reported) return;
    this.pairing.remove(req);
    const m = req.request;
    const resp = req.response;
    reason ??= resp ? undefined : req.done;
    const tx: Transaction = { protocol: 'http', request: requestHalf(m) };
    if (resp) {
      tx.response = responseHalf(resp);
      if (m.interim) tx.response.interim = m.interim;
    }
    const why = reason ?? m.broken ?? resp?.broken ?? (m.gap || resp?.gap ? 'gap-in-body' : undefined);
    if (why) tx.incomplete = why;
    else if (!resp) tx.incomplete = 'no-response';
    const up = this.upgrade.protocol;
    if (resp && up && (resp.info.statusCode === 101 || m.info.method === 'CONNECT')) tx.upgrade = up;
    this.ctx.emit(tx);
  }

  private emitOrphan(resp: Msg, reason: string): void {
    this.ctx.emit({ protocol: 'http', response: responseHalf(resp), incomplete: reason });
  }
}
