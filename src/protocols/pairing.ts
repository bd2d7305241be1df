/*
 * Request/response pairing for pipelined protocols on one TCP connection (HTTP/1.1, and in the
 * same shape Redis and MySQL): the server answers requests in the order it received them, one
 * final answer each (RFC 9112 §9.3.2 for HTTP/1.1; RESP and the MySQL command phase work the same
 * way). Nothing here knows a message format: a protocol session tells it where requests start in
 * the client stream, where responses start in the server stream, which TCP acknowledgement each
 * carried (StreamMeta.peerAck), and what was lost; it answers which request a response answers.
 *
 * While both directions are known whole ("certain"), the n-th response answers the n-th request.
 * After a gap, or when the capture began mid-connection, a response pairs only when TCP
 * acknowledgements leave exactly one candidate: a request the server had begun to receive
 * (request start < response's ACK, RFC 9293 §3.4: an ACK covers every byte before it) whose
 * client had not yet acknowledged the response's first byte (request's ACK <= response start).
 * With none or several candidates the response pairs with nothing. A gap never pairs a response
 * with the wrong request.
 *
 * Recovery after a loss (only once a gap or malformed input was seen, so clean captures pair
 * exactly in order). Responses come in request order and a final answer closes its exchange, so:
 *  - a final response that can answer several requests still ends the exchange of the oldest of
 *    them (its answer is this one or came before): that request is retired
 *    (`response-ambiguous-after-gap`) instead of staying a candidate for ever;
 *  - when server bytes are lost right where in-order pairing expected the next response, the lost
 *    bytes began the answer to the oldest unanswered request (`response-lost-in-gap`), unless the
 *    protocol says they may have held only interim answers (`Hooks.interimMayFill`);
 *  - lockstep: a client sends a flight of requests (one, or a pipelined batch in one go, all with
 *    the same ACK) only once every earlier response has arrived; a response that began after the
 *    client acknowledged less than when it sent flight Y cannot answer a request before Y, and
 *    one that begins exactly where Y's ACK points is the first answer after Y went out: it
 *    answers Y's first request. Once the client is seen sending a flight before an earlier
 *    answer had arrived (overlapping), this is off;
 *  - a response that pairs with exactly one candidate, with no unparsed client bytes after it,
 *    re-anchors in-order pairing (`reanchor`);
 *  - deferral: final responses that could answer several requests of one flight are held
 *    (`deferring`, `defer`) until the flight is closed — the client sends its next flight, having
 *    every answer to this one (lockstep by flights) — and then pair from the last: the last held
 *    answers the flight's last request, and so on back; requests left at the front had their
 *    answers in lost server bytes. After a server loss while holding, only the answers held after
 *    it are placed (from the last, once the flight closed); an overlap, or the end with answers
 *    missing, reports them as before (`response-ambiguous-after-gap`).
 * A lost client segment does not end in-order pairing for requests queued before it: `pick` stops
 * at the first stretch of unparsed client bytes. The queue and the list of unparsed stretches are
 * bounded (PairingLimits); past them the oldest request is reported without its answer.
 *
 * Unparsed client bytes count as answered before the lockstep floor only when something proves
 * all of them went out in an earlier flight than the floor request (see `passed` in `pick`): a
 * lost request may have gone out together with the one seen after it, the client's first
 * pipelined pair, and its own ACK is unknown. So when a request and the answer before it are both
 * lost, the next exchange is not guessed (`request-ambiguous-after-gap`).
 *
 * Known limits (test/protocols/pairing.test.ts): the lockstep rule trusts a client never seen
 * overlapping flights to wait for each answer, so one that first sends a flight ahead of an answer
 * with the earlier request lost is not caught; and a capture begun inside a pipelined batch cannot
 * see the request before its first byte.
 */

import { type ClientView, type Pending, type PairingHooks, type PairingLimits, UNPAIRED, type Unparsed } from './pairing-types.js';

export { type ClientView, type Pending, type PairingHooks, type PairingLimits, UNPAIRED } from './pairing-types.js';

export class Pairing<Q, R> {
  /** Requests not yet answered, oldest first. */
  queue: Pending<Q, R>[] = [];
  private queueBytes = 0;
  /** Unparsed client stretches, in stream order. */
  private unparsed: Unparsed[] = [];
  /** In-order pairing is safe only while nothing was lost since the last clean point. */
  private certain: boolean;
  /** Every request before the oldest outstanding one is accounted for (not so mid-connection until an anchor). */
  private anchored: boolean;
  /** A gap or malformed input was seen: the recovery rules apply. */
  private lossSeen = false;
  /** The client sent a flight before an earlier flight's answers had all arrived. */
  private overlapped = false;
  /** Too many unparsed stretches to track: nothing pairs until the connection settles. */
  private confused = false;
  private last: Pending<Q, R> | undefined;
  private lastAck = -1;
  /** Client stream offset just past the last byte delivered (data or gap), and the last client ACK. */
  private clientEnd = 0;
  clientAck = -1;
  /** The request the response being read answers, chosen at its first bytes (`known` once chosen). */
  answering: Pending<Q, R> | undefined;
  answeringKnown = false;

  // Set by `pick`, read right after it.
  /** The pick was the one candidate acknowledgements left (not in-order). */
  unique = false;
  /** Why a response `pick` left unpaired has no request (an UNPAIRED code). */
  orphan: string = UNPAIRED.noRequest;
  /** The response answers the partial request at this offset (it is queued later); -1 when not. */
  early = -1;
  /** The response answers a request of one flight, not yet known which: hold it (`defer`). */
  deferring = false;

  /** Held responses (see `defer`), the flight they answer (its ACK and first request), and whether server bytes were lost since. */
  private held: { resp: R; end: number }[] = [];
  /** Bytes the held responses keep (as the protocol counts them), bounded with the queue's by maxPendingBytes. */
  private heldBytes = 0;
  private heldAck = -1;
  private heldFloor = -1;
  /** Index in `held` of the first response after the last server loss while holding (-1: none). */
  private heldLossAt = -1;
  /** Server offset where the last server loss was seen (-1: none). */
  private serverLossAt = -1;
  /** The last 16 responses `pick` saw: server offset and ACK of each, oldest first. */
  private starts: number[] = [];

  /**
   * `whole`: the connection was seen from its SYN and from its first byte, so the n-th response
   * answers the n-th request. `fromStart`: from the SYN on, every client byte is parsed or
   * recorded as unparsed, so no request precedes them.
   */
  constructor(
    private readonly limits: PairingLimits,
    private readonly hooks: PairingHooks<Q, R>,
    whole: boolean,
    fromStart: boolean,
  ) {
    this.certain = whole;
    this.anchored = fromStart;
  }

  // ---- client direction ---------------------------------------------------------------------

  /** Client bytes (or a gap) reached `end`; `ack` is what the packet acknowledged (-1: none). */
  client(end: number, ack: number): void {
    if (end > this.clientEnd) this.clientEnd = end;
    if (ack >= 0) this.clientAck = ack;
  }

  /**
   * A new request starting at `off` (its first packet acknowledged `peerAck`). Not queued yet: the
   * caller may attach an early answer, then `enqueue` it.
   */
  create(off: number, peerAck: number, request: Q, bytes: number): Pending<Q, R> {
    const p: Pending<Q, R> = { off, peerAck, request, responseEnd: -1, bytes, reported: false };
    for (const h of this.unparsed) {
      if (h.end < 0 && off > h.off) {
        h.end = off;
        h.nextAck = peerAck;
      }
    }
    // A new flight (it acknowledged more than the request before it) sent before the previous
    // request's answer had fully arrived: the client overlaps flights.
    const prev = this.last;
    if (peerAck > this.lastAck && prev !== undefined && prev.responseEnd >= 0 && peerAck < prev.responseEnd) this.overlapped = true;
    if (this.held.length > 0 && peerAck > this.heldAck) {
      // The next flight: sent once every answer to the held one had arrived, unless it
      // acknowledged less than the held answers (flights overlap). It closes the held flight only
      // if it acknowledged exactly the server bytes seen: more means bytes not seen (yet) that
      // may hold another answer.
      const end = this.held[this.held.length - 1]!.end;
      if (peerAck < end) this.overlapped = true;
      this.resolve(peerAck === end);
    }
    this.last = p;
    this.lastAck = peerAck;
    return p;
  }

  enqueue(p: Pending<Q, R>): void {
    this.queue.push(p);
    this.queueBytes += p.bytes;
    this.bound();
  }

  /** `p` now holds `n` more bytes (a body preview grew). */
  grow(p: Pending<Q, R>, n: number): void {
    p.bytes += n;
    this.queueBytes += n;
    this.bound();
  }

  /** `p` is being reported: out of the queue. */
  remove(p: Pending<Q, R>): void {
    p.reported = true;
    const i = this.queue.indexOf(p);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.queueBytes -= p.bytes;
    }
  }

  /** Client bytes from `off` on may hold requests nobody will parse (lost, skipped or broken). */
  hide(off: number, peerAck: number): void {
    this.pushUnparsed({ off, peerAck, end: -1, nextAck: -1 });
  }

  /** The connection ends: every request still queued, detached from the pairing. */
  drain(): Pending<Q, R>[] {
    this.resolve(false);
    const q = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    return q;
  }

  // ---- losses --------------------------------------------------------------------------------

  /** Bytes were lost or malformed somewhere: the recovery rules apply from now on. */
  noteLoss(): void {
    this.lossSeen = true;
  }

  /** Server bytes were lost where a response boundary was expected: in-order pairing is over. */
  serverLost(atBoundary: boolean, reason: string = UNPAIRED.lostInGap, off = -1): void {
    this.serverLossAt = Math.max(this.serverLossAt, off);
    if (this.held.length > 0) this.heldLossAt = this.held.length;
    if (this.certain && atBoundary) this.lostAtBoundary(reason);
    this.certain = false;
  }

  /** Either direction lost framing (malformed input): pairing is by acknowledgements from here. */
  uncertain(): void {
    this.certain = false;
    this.lossSeen = true;
  }

  /**
   * In-order pairing expected the next response where server bytes were lost: it answers the
   * oldest unanswered request, whose final answer began in the lost bytes, unless they may have
   * held only interim answers (the protocol decides).
   */
  private lostAtBoundary(reason: string): void {
    const r = this.queue.find((x) => !x.response && !x.done);
    const h = this.unparsed[0];
    if (h && (!r || h.off < r.off)) {
      if (h.one) this.unparsed.shift();
      return;
    }
    if (!r || this.hooks.interimMayFill(r)) return;
    this.retire(r, reason);
  }

  // ---- server direction ----------------------------------------------------------------------

  /**
   * Which queued request the response starting at server offset `respOff` answers (its first
   * packet acknowledged `respAck`; `final`: not an interim answer), or none (`orphan` says why,
   * `early` names a partial request it answers). Certain mode: the oldest unanswered, unless
   * unparsed client bytes come first. Otherwise the one candidate acknowledgements leave.
   */
  pick(respOff: number, respAck: number, final: boolean, client: ClientView): Pending<Q, R> | undefined {
    const r = this.choose(respOff, respAck, final, client);
    // A response while answers are held that is not held with them: the held ones are no longer
    // the flight's answers in order (this one came between), so none of them is placed.
    if (this.held.length > 0 && !this.deferring) this.resolve(false, true);
    return r;
  }

  private choose(respOff: number, respAck: number, final: boolean, client: ClientView): Pending<Q, R> | undefined {
    // Unparsed bytes may be told after the responses that acknowledged them (reassembly declares a
    // hole once data after it arrives): recent response starts are kept for `passed`.
    this.starts.push(respOff, respAck);
    if (this.starts.length > 32) this.starts.splice(0, 2);
    // In-order pairing again while responses are held: they are placed first, or reported.
    if (this.certain && this.held.length > 0) this.resolve(false);
    const q = this.queue;
    this.unique = false;
    this.orphan = UNPAIRED.noRequest;
    this.early = -1;
    this.deferring = false;
    if (this.certain) {
      // The oldest request not yet answered. If every queued request already has its answer, the
      // server answered one the parser never saw (swallowed by a wrong body length).
      const r = q.find((x) => !x.response && !x.done);
      const h = this.unparsed[0];
      if (!h) {
        if (!r && q.length > 0) this.certain = false;
        // Next in order is the request whose head is still arriving (an early answer).
        if (!r && client.partialOff >= 0) this.early = client.partialOff;
        return r;
      }
      if (r && r.off < h.off) return r;
      if (h.one) {
        // It answers a request evicted from the queue.
        this.unparsed.shift();
        this.orphan = UNPAIRED.evicted;
        return undefined;
      }
      // In-order pairing has reached client bytes nobody parsed: acknowledgements decide from here.
      this.certain = false;
    }
    if (this.confused) return undefined;
    const recover = this.lossSeen;
    const could = (off: number, peerAck: number) => off < respAck && peerAck <= respOff;
    // Lockstep: the client sent flight Y after every earlier response had arrived, so a response
    // that began after what Y acknowledged answers a request of Y or a later one. The floor is
    // the first request of that flight (same ACK) seen.
    let floor = -1;
    let floorAck = -1;
    if (recover && !this.overlapped) {
      for (const r of q) {
        if (r.peerAck >= 0 && r.peerAck <= respOff && r.off > floor) {
          floor = r.off;
          floorAck = r.peerAck;
        }
      }
      for (const r of q) {
        if (r.peerAck === floorAck && r.off < floor) {
          floor = r.off;
          break;
        }
      }
    }
    // Unparsed client bytes before the floor are passed too, but only when all of them went out in
    // an earlier flight than the floor request. A lost request may carry the same ACK as the one
    // seen after it (one flight) even though the packet before it acknowledged less, so their
    // lowest possible ACK proves nothing alone. Either proves it: the first request seen after them
    // acknowledged less than the floor (they went out no later than it did), or a response that
    // began before the floor's ACK acknowledged every byte up to that request (the server had them
    // before the client had what the floor request acknowledged). A proof about their first byte
    // only is not enough: several requests may hide in them, the last in the floor's flight.
    const covered = (h: Unparsed) => {
      if (h.end < 0) return false;
      for (let i = 0; i < this.starts.length; i += 2) if (this.starts[i]! < floorAck && this.starts[i + 1]! >= h.end) return true;
      return false;
    };
    const passed = (h: Unparsed) => h.off < floor && h.peerAck < floorAck && ((h.nextAck >= 0 && h.nextAck < floorAck) || covered(h));
    let best: Pending<Q, R> | undefined;
    let bestHidden: Unparsed | undefined;
    const reqs: Pending<Q, R>[] = [];
    let count = 0;
    let minOff = Infinity;
    let minReq: Pending<Q, R> | undefined;
    let minHidden: Unparsed | undefined;
    const consider = (off: number, req?: Pending<Q, R>, h?: Unparsed) => {
      count++;
      if (req) {
        best = req;
        reqs.push(req);
      }
      if (h) bestHidden = h;
      if (off < minOff) {
        minOff = off;
        minReq = req;
        minHidden = h;
      }
    };
    for (const r of q) if (!r.response && !r.done && r.off >= floor && could(r.off, r.peerAck)) consider(r.off, r);
    for (const h of this.unparsed) if (!passed(h) && could(h.off, h.peerAck)) consider(h.off, undefined, h);
    const partial = client.partialOff >= 0 && could(client.partialOff, client.partialAck);
    if (partial) consider(client.partialOff);
    if (recover) {
      // A start line begun while resynchronising, and client bytes the server had received but
      // the capture has not shown (yet): either may hold the request this answers.
      if (client.scanOff >= 0 && could(client.scanOff, this.clientAck)) consider(client.scanOff);
      if (respAck > this.clientEnd && could(this.clientEnd, this.clientAck)) consider(this.clientEnd);
      // Client bytes held back (after an Upgrade or CONNECT): if the server switched, they are the
      // other protocol's, but a tunnelled request may be answered with the same protocol's bytes.
      if (client.heldOff >= 0 && could(client.heldOff, client.heldAck)) consider(client.heldOff);
      if (final && floor >= 0) {
        this.retireBefore(floor, UNPAIRED.lostInGap, false);
        this.unparsed = this.unparsed.filter((h) => !passed(h));
      }
    }
    if (count === 1) {
      if (best) {
        this.unique = true;
        return best;
      }
      if (partial) this.early = client.partialOff;
      if (bestHidden) {
        // It answers the one request nobody could parse: that request is spent.
        this.unparsed.splice(this.unparsed.indexOf(bestHidden), 1);
        if (bestHidden.one) this.orphan = UNPAIRED.evicted;
      }
      return undefined;
    }
    if (count > 1 && floor >= 0 && respOff === floorAck && minOff === floor && minReq?.off === floor) {
      // The first server byte after flight Y went out: the first answer to it, and every earlier
      // request was answered before Y went out. Candidates after Y's first request (more of Y,
      // client bytes not seen yet) come later.
      this.unique = true;
      return minReq;
    }
    if (count > 1 && final && floor >= 0 && count === reqs.length
      && (this.held.length === 0 || this.heldAck === floorAck) && this.held.length < this.limits.maxPendingRequests
      && this.heldBytes + this.queueBytes < this.limits.maxPendingBytes) {
      // Every candidate is a request of flight Y: which one is told once the flight closes.
      if (this.held.length === 0) {
        this.heldAck = floorAck;
        this.heldFloor = floor;
      }
      this.deferring = true;
      return undefined;
    }
    if (count > 1) {
      this.orphan = UNPAIRED.ambiguousRequest;
      for (const r of reqs) r.maybe = true;
      // Whichever it answers, the oldest candidate's final answer is this one or came before.
      if (recover && final && this.anchored) {
        if (minReq) this.retire(minReq, UNPAIRED.ambiguousResponse);
        else if ((minHidden as Unparsed | undefined)?.one) this.unparsed.splice(this.unparsed.indexOf(minHidden!), 1);
      }
    }
    return undefined;
  }

  /**
   * Holds `resp` (server offset `end` just past it; `bytes` it keeps, as the protocol counts them),
   * which `pick` could not place yet (`deferring`).
   */
  defer(resp: R, end: number, bytes = 0): void {
    if (end < 0) {
      this.hooks.unresolved(resp, UNPAIRED.ambiguousRequest);
      return;
    }
    this.held.push({ resp, end });
    this.heldBytes += bytes;
  }

  /**
   * The held responses are placed: from the last, each answers the flight's last request not yet
   * answered, when nothing was lost on the server side while holding and either there is one per
   * request, or the flight was `closed` (the client had every answer) after server bytes were
   * lost since it went out (the requests left at the front had their answers there).
   */
  private resolve(closed: boolean, abandon = false): void {
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    this.heldBytes = 0;
    const reqs = this.queue.filter((r) => r.off >= this.heldFloor && r.peerAck === this.heldAck && !r.response && !r.done);
    const k = held.length, m = reqs.length;
    const lossAt = this.heldLossAt;
    this.heldLossAt = -1;
    const clean = !abandon && lossAt < 0 && !this.confused && (k === m || (closed && k < m && this.serverLossAt >= this.heldAck));
    if (!clean) {
      // Server bytes lost while holding: the answers held after the last loss are still the
      // flight's last ones when it closed; those before it, and their requests, are not told.
      const tail = !abandon && lossAt >= 0 && closed && !this.confused && k - lossAt <= m ? held.slice(lossAt) : [];
      for (const h of held.slice(0, k - tail.length)) this.hooks.unresolved(h.resp, UNPAIRED.ambiguousRequest);
      for (const r of reqs.slice(0, tail.length ? m - tail.length : k)) this.retire(r, UNPAIRED.ambiguousResponse);
      for (let i = 0; i < tail.length; i++) {
        const r = reqs[m - tail.length + i]!;
        this.attach(r, tail[i]!.resp, tail[i]!.end);
        this.hooks.resolved(r);
      }
      return;
    }
    for (const r of reqs.slice(0, m - k)) this.retire(r, UNPAIRED.lostInGap);
    for (let i = 0; i < k; i++) {
      const r = reqs[m - k + i]!;
      this.attach(r, held[i]!.resp, held[i]!.end);
      this.hooks.resolved(r);
    }
  }

  /**
   * `resp` is `p`'s final answer (`end`: server offset just past it, -1 if not whole). Requests
   * queued before `p` had theirs in lost bytes. `watch`: see whether the client pipelined (it sent
   * the next request before this answer had arrived).
   */
  answer(p: Pending<Q, R>, resp: R, end: number, watch = true): void {
    this.retireBefore(p.off, UNPAIRED.lostInGap);
    this.attach(p, resp, end);
    if (!watch) return;
    // The next flight went out before this answer had fully arrived: flights overlap.
    const q = this.queue;
    for (let i = q.indexOf(p) + 1; i < q.length; i++) {
      const after = q[i]!;
      if (after.peerAck < 0 || after.peerAck === p.peerAck) continue;
      if (after.peerAck < end) this.overlapped = true;
      break;
    }
  }

  /** Records `resp` as `p`'s answer, nothing more (an answer that came before its request was queued). */
  attach(p: Pending<Q, R>, resp: R, end: number): void {
    p.response = resp;
    p.responseEnd = end;
  }



  /**
   * A response `pick` paired as the only candidate (`unique`) answered its request and nothing
   * else could have: the next answers the request after it, so in-order pairing is safe again if
   * every client byte after it was parsed (`clientClean`) and the server had received nothing
   * unseen (`respAck`, the response's ACK, is within what the capture showed of the client).
   */
  reanchor(respAck: number, clientClean: boolean): void {
    if (!this.lossSeen || this.certain) return;
    if (!clientClean || this.confused || this.unparsed.length > 0 || respAck > this.clientEnd) return;
    this.certain = true;
    this.anchored = true;
  }

  /** Back to certain pairing once nothing is outstanding and both directions are idle and in sync. */
  settle(idle: boolean): void {
    if (!this.certain && this.queue.length === 0 && idle) {
      this.certain = true;
      this.anchored = true;
      this.confused = false;
      this.unparsed = [];
    }
  }

  /** Requests (and unparsed client bytes) before client offset `off` had their final answers. */
  retireBefore(off: number, reason: string, unparsedToo = true): void {
    if (unparsedToo && this.lossSeen) while (this.unparsed.length > 0 && this.unparsed[0]!.off < off) this.unparsed.shift();
    for (const r of this.queue.slice()) {
      if (r.off >= off) break;
      if (!r.response) this.retire(r, reason);
    }
  }

  /** `p` will never pair: reported now, or once its own bytes are whole. */
  retire(p: Pending<Q, R>, reason: string): void {
    p.done ??= p.maybe && reason === UNPAIRED.lostInGap ? UNPAIRED.ambiguousResponse : reason;
    this.hooks.retired(p);
  }

  private pushUnparsed(h: Unparsed): void {
    if (this.unparsed.length >= this.limits.maxUnparsed) {
      if (!this.confused) this.hooks.overflow('unparsed', h.off);
      this.confused = true;
      this.certain = false;
      return;
    }
    this.unparsed.push(h);
  }

  /** The queue stays within its limits: the oldest goes first. */
  private bound(): void {
    const q = this.queue;
    const { maxPendingRequests, maxPendingBytes, maxUnparsed } = this.limits;
    while (q.length > 1 && (q.length > maxPendingRequests || this.queueBytes > maxPendingBytes)) {
      const old = q[0]!;
      this.hooks.overflow('pending', old.off);
      // Its answer may still come: keep its place, so no later request is paired with it.
      if (!old.response && !old.done && old !== this.answering) {
        const h: Unparsed = { off: old.off, peerAck: old.peerAck, one: true, end: -1, nextAck: -1 };
        const i = this.unparsed.findIndex((x) => x.off > h.off);
        if (this.unparsed.length >= maxUnparsed) this.pushUnparsed(h);
        else if (i < 0) this.unparsed.push(h);
        else this.unparsed.splice(i, 0, h);
      }
      old.done ??= UNPAIRED.evicted;
      this.hooks.evicted(old);
    }
  }
}
