import type { SessionContext, Transaction } from '../types.js';
import { type ClientView, Pairing, type PairingHooks, UNPAIRED } from '../pairing.js';
import type { Http1Limits } from './limits.js';
import { headerBytes, isFinal, type Msg, type Req, requestHalf, responseHalf } from './message.js';
import type { UpgradeHold } from './upgrade.js';

/** What the exchanges ask of the connection's readers (the session answers). */
export interface ConnectionView {
  /** Fills what pairing needs to know of the client direction (partial request, resync, held bytes). */
  client(view: ClientView): void;
  /** Every client byte is being parsed and both directions are in sync: in-order pairing may resume. */
  inSync(): boolean;
  /** Both directions in sync and between messages. */
  idle(): boolean;
  /** Where the next request starts, once its first byte was read. */
  nextRequest(): number | undefined;
  /** The response being read is a 1xx so far. */
  interimInProgress(): boolean;
  /** The server declined an Upgrade: replay the client bytes held for its verdict. */
  resumeClient(): void;
}

/**
 * The HTTP/1 binding of the protocol-neutral Pairing: requests and responses as they complete,
 * which request each response answers, 1xx interim answers (RFC 9110 §15.2), early answers (a
 * final response before its request's header section ended), the Upgrade verdict, and the records.
 */
export class Exchanges implements PairingHooks<Msg, Msg> {
  readonly pairing: Pairing<Msg, Msg>;
  /** Reused for every pick (no allocation per message). */
  private readonly view: ClientView = { partialOff: -1, partialAck: -1, scanOff: -1, heldOff: -1, heldAck: -1 };
  /** A 1xx interim response was seen on this connection (lost server bytes may have been only that). */
  private sawInterim = false;
  /** A final response that answered a request before its header section ended, until that request is queued. */
  private early: { off: number; resp: Msg } | undefined;
  /** The response whose head is being read is held until its flight closes (Pairing.deferring). */
  private headDeferred = false;

  constructor(
    private readonly ctx: SessionContext,
    private readonly limits: Http1Limits,
    private readonly upgrade: UpgradeHold,
    private readonly conn: ConnectionView,
    whole: boolean,
  ) {
    this.pairing = new Pairing<Msg, Msg>(limits, this, whole, ctx.conn.handshakeSeen);
  }

  // ---- what the pairing asks (PairingHooks) ---------------------------------------------------

  retired(r: Req): void {
    if (r.request.complete || r.request.broken) this.emit(r);
  }

  evicted(r: Req): void {
    this.emit(r);
  }

  resolved(r: Req): void {
    if (r.request.complete || r.request.broken) this.emit(r);
  }

  unresolved(resp: Msg, why: string): void {
    this.emitOrphan(resp, why);
  }

  overflow(what: 'pending' | 'unparsed', off: number): void {
    const l = this.limits;
    if (what === 'pending') this.ctx.violation('http.pending_requests', `more than ${l.maxPendingRequests} requests or ${l.maxPendingBytes} bytes awaiting responses; the oldest is reported without its response`, off);
    else this.ctx.violation('http.unparsed_requests', `more than ${l.maxUnparsed} stretches of unparsed client bytes awaiting responses; pairing stops until the connection settles`, off);
  }

  /** A request's head was read: it queues for its response (or takes an early one). */
  request(msg: Msg): Req {
    const req = this.pairing.create(msg.start.off, msg.start.peerAck, msg, headerBytes(msg.info));
    msg.req = req;
    const early = this.early;
    if (early) {
      this.early = undefined;
      if (early.off === msg.start.off) this.pairing.attach(req, early.resp, early.resp.endOff);
      else this.emitOrphan(early.resp, UNPAIRED.noRequest);
    }
    this.pairing.enqueue(req);
    return req;
  }

  /** A response's head was read: the request it answers, chosen now (its framing may depend on it). */
  responseHead(msg: Msg): Req | undefined {
    const req = this.pick(msg);
    this.headDeferred = this.pairing.deferring;
    this.pairing.answering = req;
    this.pairing.answeringKnown = true;
    return req;
  }

  /** `n` more body bytes are held by `msg` (counted while it waits for its response). */
  kept(msg: Msg, n: number): void {
    const req = msg.req;
    if (req && !req.reported) this.pairing.grow(req, n);
  }

  /** A request was read whole (or will not be): reported if its answer is known. */
  requestDone(msg: Msg): void {
    const req = msg.req;
    if (req?.response || req?.done) this.emit(req); // already answered: report it now, never pair it again
  }

  /** Which queued request the response `resp` answers (see Pairing.pick). */
  private pick(resp: Msg): Req | undefined {
    this.conn.client(this.view);
    return this.pairing.pick(resp.start.off, resp.start.peerAck, isFinal(resp.info.statusCode), this.view);
  }

  /**
   * Server bytes were lost at `r`'s turn: they may have held only interim (1xx) responses, so its
   * final one may still come (RFC 9110 §15.2) — possible only when one was asked for
   * (Expect: 100-continue, RFC 9110 §10.1.1), one was seen on this connection, or the request
   * asked to upgrade.
   */
  interimMayFill(r: Req): boolean {
    if (this.sawInterim || r === this.upgrade.asked || r.request.info.upgrade) return true;
    if (/100-continue/i.test(r.request.headers['expect'] ?? '')) return true;
    return this.conn.interimInProgress();
  }

  /** A response was read whole. */
  response(resp: Msg): void {
    const pairing = this.pairing;
    let req = pairing.answeringKnown ? pairing.answering : this.pick(resp);
    const deferred = pairing.answeringKnown ? this.headDeferred : pairing.deferring;
    this.headDeferred = false;
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
      if (!req && !this.early && early === this.conn.nextRequest()) {
        this.early = { off: early, resp };
        return;
      }
    }
    if (!req && deferred) {
      pairing.defer(resp, resp.endOff, headerBytes(resp.info) + resp.captured);
      return;
    }
    if (!req || req.reported) {
      // (A reported request here was evicted from the queue while its response was being read.)
      this.emitOrphan(resp, req ? UNPAIRED.evicted : pairing.orphan);
      pairing.settle(this.conn.idle());
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
    if (unique) pairing.reanchor(resp.start.peerAck, !up.verdict && this.conn.inSync());
    if (req.request.complete || req.request.broken) this.emit(req);
    pairing.settle(this.conn.idle());
    // Replay the client bytes held for the verdict now: a later response in this same chunk
    // answers one of them and must find it queued.
    if (declined) this.conn.resumeClient();
  }

  /** A response that will not complete: reported with the request it was answering, if any. */
  responseBroken(msg: Msg): void {
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

  /** The request an early response answered will not be queued: the response is reported alone. */
  flushEarly(): void {
    const early = this.early;
    this.early = undefined;
    if (early) this.emitOrphan(early.resp, UNPAIRED.noRequest);
  }

  /** The connection ended: every request still waiting is reported, `why` unless it knows better. */
  end(why: string): void {
    for (const req of this.pairing.drain()) this.emit(req, req.done ?? req.request.broken ?? why);
  }

  // ---- records -------------------------------------------------------------------------------

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
