import type { CloseReason, Dir, StreamMeta } from '../../reassembly/types.js';
import type { HttpRequestHalf, HttpResponseHalf, MessageHalf, ProtocolSession, SessionContext, Transaction } from '../types.js';
import { findMessageStart, MAX_START_LINE, requestLineAt, statusLineAt } from './probe.js';
import { createParser, type Parser, type RequestLineExtra } from './parser.js';
import type { ParserInfo } from 'http-parser-js';

/** Longest partial line a parser may hold (header lines, chunk trailers): http-parser-js's 80 KiB. */
const MAX_LINE = 80 * 1024;
/** Client bytes held while a server decides on an Upgrade or CONNECT. */
const MAX_UPGRADE_HOLD = 256 * 1024;
/**
 * Requests awaiting their responses on one connection, and the header and body-preview bytes they
 * hold. Past either bound the oldest is reported without its response (`evicted`) and counted
 * (`http.pending_requests`). Real pipelines are a few dozen deep; these bounds only stop a
 * connection whose responses never come (or never pair) from growing without end.
 */
export const MAX_PENDING_REQUESTS = 1000;
export const MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** Stretches of client bytes nobody parsed that are remembered at once; past it pairing gives up until it settles. */
const MAX_HIDDEN = 1000;

/** Where a message started: copied out of the StreamMeta of the packet that carried its first byte. */
interface Mark {
  off: number;
  time: number;
  frame: number;
  peerAck: number;
}

/** Earliest and latest capture time and frame of the packets that carried a message's bytes. */
interface Span {
  minT: number;
  maxT: number;
  minF: number;
  maxF: number;
}

interface Msg {
  start: Mark;
  span?: Span;
  /** Request line as sent, when it was not RFC-conformant or its version unusual. */
  line?: RequestLineExtra;
  endOff: number;
  endTime: number;
  endFrame: number;
  info: ParserInfo;
  headers: Record<string, string>;
  trailers?: Record<string, string>;
  bodySize: number;
  body: Buffer[];
  captured: number;
  truncated: boolean;
  gap: boolean;
  complete: boolean;
  /** Set when the message was cut off by malformed input or a gap in its headers. */
  broken?: string;
  /** A request's place in the queue (set while it is queued). */
  req?: Req;
}

interface Req {
  msg: Msg;
  response?: Msg;
  interim?: { status: number; time: number; frame: number }[];
  emitted: boolean;
  /** Its response is known to be lost or not attributable (the reason reported): it pairs with nothing. */
  done?: string;
  /** Header and body-preview bytes held while queued (counted against MAX_PENDING_BYTES). */
  bytes: number;
  /** A response that could not be told apart from another's (reported alone) may have been its own. */
  maybe?: boolean;
}

/**
 * Client bytes that may hold requests nobody parsed: lost in a gap, skipped while resynchronising,
 * or a request too broken to queue. `peerAck` is the least acknowledgement any request in it can
 * carry. `one`: exactly one request whose response is still to come (a request evicted from the
 * queue).
 */
interface Hidden {
  off: number;
  peerAck: number;
  one?: boolean;
}

type DirState = 'sync' | 'resync' | 'hold' | 'stopped';

/**
 * HTTP/1.x on one connection (RFC 9112): two http-parser-js parsers, one per direction, and
 * in-order pairing. While both directions are known to be whole, the n-th response answers the
 * n-th request. After a gap, or when the capture began mid-connection, a response is paired only
 * when TCP acknowledgements leave exactly one candidate (see StreamMeta.peerAck); otherwise it is
 * emitted unpaired and marked incomplete. A gap never pairs a response with the wrong request.
 *
 * Recovery after a loss (only once a gap or malformed input was seen, so clean captures decode
 * exactly as before). Responses come in request order (RFC 9112 §9.3), and a final response
 * closes its request's exchange, so:
 *  - a final response that can answer several requests still ends the exchange of the oldest of
 *    them (its final response is this one or came before): that request is reported
 *    (`response-ambiguous-after-gap`) instead of staying a candidate for ever;
 *  - when server bytes are lost right where in-order pairing expected the next response, the lost
 *    bytes began the answer to the oldest unanswered request: it is reported
 *    (`response-lost-in-gap`), unless an interim (1xx) answer could have been all that was lost;
 *  - a client that has never pipelined on this connection sends a request only once every earlier
 *    response has arrived; a response that began after the client acknowledged less than when it
 *    sent request Y cannot answer a request before Y. If the client was ever seen sending a
 *    request before the previous answer had arrived, this rule is off for the connection;
 *  - a response that pairs with exactly one candidate, with no unparsed client bytes after it,
 *    re-anchors in-order pairing.
 * A lost client segment does not end in-order pairing for requests queued before it. The queue of
 * requests awaiting responses is bounded (MAX_PENDING_REQUESTS, MAX_PENDING_BYTES).
 */
export class Http1Session implements ProtocolSession {
  private readonly parsers: [Parser, Parser];
  private readonly state: [DirState, DirState] = ['sync', 'sync'];
  /** Message being parsed per direction, and where the next one starts. */
  private readonly cur: [Msg | undefined, Msg | undefined] = [undefined, undefined];
  private readonly next: [Mark | undefined, Mark | undefined] = [undefined, undefined];
  /** Packet being parsed per direction (its meta), for positions inside callbacks. */
  private readonly at: [StreamMeta, StreamMeta] = [
    { time: 0, frame: 0, offset: 0, peerAck: -1 }, { time: 0, frame: 0, offset: 0, peerAck: -1 },
  ];
  /** Packets seen for the message in progress per direction (captures may be out of time order). */
  private readonly span: [Span, Span] = [{ minT: 0, maxT: 0, minF: 0, maxF: 0 }, { minT: 0, maxT: 0, minF: 0, maxF: 0 }];
  /** Stream offset just past the last byte seen per direction (where a cut-off message ends). */
  private readonly seenEnd: [number, number] = [0, 0];
  /** Requests not yet answered, oldest first. */
  private queue: Req[] = [];
  /** Request the response being parsed answers (chosen at its headers). */
  private answering: Req | undefined;
  private answeringKnown = false;
  /** The last pickRequest found several candidates (pipelined requests after a gap). */
  private ambiguous = false;
  /** In-order pairing is safe only while nothing was lost since the last clean point. */
  private certain: boolean;
  /** Client bytes held while an Upgrade/CONNECT waits for the server's answer. */
  private held: { bytes: Buffer; meta: StreamMeta }[] = [];
  private heldBytes = 0;
  private abort: [string | undefined, string | undefined] = [undefined, undefined];
  private upgraded: string | undefined;
  /** The request that asked for an Upgrade/CONNECT, until the server answers it. */
  private upgradeAsked: Req | undefined;
  /** The request whose Upgrade was accepted (h2c hands it on as stream 1). */
  private upgradeRequest: Msg | undefined;
  /** Set by the answer to upgradeAsked; acted on once the response parser has stopped. */
  private verdict: 'switch' | 'resume' | undefined;
  private handedOver: ProtocolSession | undefined;
  /** While resynchronising: the last partial line per direction (a start line may go on in the next segment). */
  private readonly tail: [{ bytes: Buffer; off: number } | undefined, { bytes: Buffer; off: number } | undefined] = [undefined, undefined];
  /** Where client bytes held requests that were never queued (start line or headers broken, or lost in a gap), in stream order. */
  private hidden: Hidden[] = [];
  /** The client direction is skipping bytes in this resync episode (its hidden entry is recorded). */
  private skipping = false;
  private ended = false;
  /** A gap or malformed input was seen: the recovery rules apply (see the class comment). */
  private lossSeen = false;
  /** Every request before the oldest outstanding one is accounted for (not so mid-connection until an anchor). */
  private anchored: boolean;
  /** The client sent a request before the previous one's response had arrived (pipelining, RFC 9112 §9.3.2). */
  private pipelined = false;
  /** The request queued last and the acknowledgement it carried, to see pipelining. */
  private lastReq: Req | undefined;
  private lastReqAck = -1;
  /** Client stream offset just past the last byte delivered (data or gap), and the last ACK a client packet carried. */
  private clientEnd = 0;
  private clientAck = -1;
  /** Bytes held by queued requests (Req.bytes). */
  private queueBytes = 0;
  /** Too many unparsed client stretches to track: nothing pairs until the connection settles. */
  private confused = false;
  /** A 1xx interim response was seen on this connection (lost server bytes may have been only that). */
  private sawInterim = false;
  /** Set by pickRequest: the pick was the one candidate TCP acknowledgements left (not in-order). */
  private uniquePick = false;
  /** Set by pickRequest: why a response it left unpaired has no request. */
  private orphanWhy = 'no-request-seen';
  /** Set by pickRequest: the response answers the request whose header section is still being read (it starts here). */
  private answersInProgress: number | undefined;
  /** A final response that answered a request before its header section ended, until that request is queued. */
  private early: { off: number; resp: Msg } | undefined;

  constructor(private readonly ctx: SessionContext) {
    this.certain = ctx.conn.handshakeSeen && !ctx.resync;
    // From the SYN on, every client byte is parsed or recorded as hidden: no request precedes them.
    this.anchored = ctx.conn.handshakeSeen;
    this.parsers = [this.makeParser(0), this.makeParser(1)];
    // Caught mid-connection, the first bytes of either direction may sit inside a message.
    if (!ctx.conn.handshakeSeen || ctx.resync) this.state[0] = this.state[1] = 'resync';
  }

  private makeParser(dir: Dir): Parser {
    const p = createParser(dir === 0 ? 'REQUEST' : 'RESPONSE');
    p.onHeadersComplete = (info) => this.onHeaders(dir, info);
    p.onBody = (chunk, start, len) => this.onBody(dir, chunk, start, len);
    p.onHeaders = (trailers) => this.onTrailers(dir, trailers);
    p.onMessageComplete = () => this.onComplete(dir);
    return p;
  }

  // ---- stream events ------------------------------------------------------------------------

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.handedOver) {
      this.handedOver.data(dir, bytes, meta);
      return;
    }
    const st = this.state[dir];
    if (st === 'stopped' || this.ended) return;
    if (dir === 0) {
      this.clientEnd = Math.max(this.clientEnd, meta.offset + bytes.length);
      if (meta.peerAck >= 0) this.clientAck = meta.peerAck;
    }
    if (st === 'hold') {
      if (this.heldBytes + bytes.length <= MAX_UPGRADE_HOLD) {
        this.held.push({ bytes: Buffer.from(bytes), meta: { ...meta } });
        this.heldBytes += bytes.length;
      } else {
        this.ctx.violation('http.upgrade_hold', `more than ${MAX_UPGRADE_HOLD} client bytes before the server answered an Upgrade`, meta.offset);
        this.state[dir] = 'resync';
        this.held = [];
        this.heldBytes = 0;
      }
      return;
    }
    if (st === 'resync') {
      const kind = dir === 0 ? 'request' : 'response';
      const startsAt = (b: Buffer, i: number) => (kind === 'request' ? requestLineAt(b, i) : statusLineAt(b, i));
      const prev = this.tail[dir];
      const buf = prev ? Buffer.concat([prev.bytes, bytes]) : bytes;
      const base = prev ? prev.off : meta.offset;
      let p = findMessageStart(buf, kind);
      // A segment start is taken for a line start (as it is when no tail is held).
      if (prev && (p < 0 || p > prev.bytes.length) && startsAt(buf, prev.bytes.length) === 1) p = prev.bytes.length;
      let from = 0;
      if (p < 0) {
        // Keep the last partial line (bounded), or this segment if it begins like a start line.
        from = Math.max(buf.lastIndexOf(0x0a) + 1, buf.length - MAX_START_LINE);
        const segStart = buf.length - bytes.length;
        if (segStart > from && startsAt(buf, from) !== 0 && startsAt(bytes, 0) === 0) from = segStart;
      }
      if (dir === 0 && (p < 0 ? from : p) > 0 && !this.skipping) {
        // Client bytes dropped here may hold requests nobody parsed: a response may answer one.
        this.skipping = true;
        this.pushHidden({ off: base, peerAck: meta.peerAck });
      }
      if (p < 0) {
        this.tail[dir] = from < buf.length ? { bytes: Buffer.from(buf.subarray(from)), off: base + from } : undefined;
        return;
      }
      this.tail[dir] = undefined;
      if (dir === 0) this.skipping = false;
      this.state[dir] = 'sync';
      this.parsers[dir] = this.makeParser(dir);
      this.next[dir] = undefined;
      const m = { ...meta, offset: base + p };
      this.feed(dir, p === 0 ? buf : buf.subarray(p), m);
      return;
    }
    this.feed(dir, bytes, meta);
  }

  private feed(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    const at = this.at[dir];
    at.time = meta.time; at.frame = meta.frame; at.offset = meta.offset; at.peerAck = meta.peerAck;
    this.seenEnd[dir] = meta.offset + bytes.length;
    const span = this.span[dir];
    if (!this.cur[dir] && !this.next[dir]) {
      this.next[dir] = { off: meta.offset, time: meta.time, frame: meta.frame, peerAck: meta.peerAck };
      span.minT = span.maxT = meta.time;
      span.minF = span.maxF = meta.frame;
    } else {
      if (meta.time < span.minT) span.minT = meta.time;
      if (meta.time > span.maxT) span.maxT = meta.time;
      if (meta.frame < span.minF) span.minF = meta.frame;
      if (meta.frame > span.maxF) span.maxF = meta.frame;
    }
    const parser = this.parsers[dir];
    let r: number | Error;
    try {
      r = parser.execute(bytes);
    } catch (err) {
      r = err instanceof Error ? err : new Error(String(err));
    }
    if (this.handedOver || this.ended) return;
    if (r instanceof Error || this.abort[dir]) {
      const err = r as Error & { code?: string };
      const code = this.abort[dir] ?? err.code ?? MESSAGE_CODES[err.message] ?? 'HPE_UNKNOWN';
      const known = this.abort[dir] !== undefined; // parsed through its headers: it is queued
      this.abort[dir] = undefined;
      const at = parser.offset ?? 0;
      this.malformed(dir, code, meta.offset + at, known);
      if (at > 0 && at < bytes.length && !this.ended) this.data(dir, bytes.subarray(at), { ...meta, offset: meta.offset + at });
      return;
    }
    if (parser.line.length > MAX_LINE) {
      this.malformed(dir, 'HPE_LINE_TOO_LONG', meta.offset);
      return;
    }
    if (dir === 0 && this.upgradeAsked && this.state[0] === 'sync' && p0Stopped(parser)) {
      // The client asked to switch (Upgrade or CONNECT): its further bytes wait for the verdict.
      this.state[0] = 'hold';
      if (r < bytes.length) {
        this.held.push({ bytes: Buffer.from(bytes.subarray(r)), meta: { ...meta, offset: meta.offset + r } });
        this.heldBytes += bytes.length - r;
      }
    } else if (dir === 1 && this.verdict) {
      const verdict = this.verdict;
      this.verdict = undefined;
      const rest = bytes.subarray(r);
      const restMeta = { ...meta, offset: meta.offset + r };
      if (verdict === 'switch') this.switchProtocols(rest, restMeta);
      else {
        this.resumeClient();
        if (rest.length) this.feed(1, rest, restMeta);
      }
    }
  }

  gap(dir: Dir, length: number, meta: StreamMeta): void {
    if (this.handedOver) {
      this.handedOver.gap(dir, length, meta);
      return;
    }
    const st = this.state[dir];
    if (st === 'stopped' || this.ended) return;
    if (dir === 0) this.clientEnd = Math.max(this.clientEnd, meta.offset + length);
    const msg = this.cur[dir];
    const p = this.parsers[dir];
    if (st === 'sync' && msg && p.state === 'BODY_SIZED' && p.body_bytes !== null && p.body_bytes > 0 && p.body_bytes < length) {
      // The hole runs past the end of a body of known length: the message ends inside it (its
      // exchange is whole but for those bytes), and the rest of the hole starts at a message boundary.
      const rest = p.body_bytes;
      this.lossSeen = true;
      msg.gap = true;
      msg.bodySize += rest - 1;
      p.body_bytes = 1;
      this.feed(dir, ZERO, { ...meta, offset: meta.offset + rest - 1 });
      if (!this.ended) this.gap(dir, length - rest, { ...meta, offset: meta.offset + rest });
      return;
    }
    if (st === 'sync' && msg && (p.state === 'BODY_SIZED' || p.state === 'BODY_CHUNK') && p.body_bytes !== null && p.body_bytes >= length) {
      // The hole lies inside a body of known length: framing survives, only bytes are missing.
      msg.gap = true;
      msg.bodySize += length - 1;
      p.body_bytes -= length - 1;
      this.feed(dir, ZERO, { ...meta, offset: meta.offset + length - 1 });
      return;
    }
    if (st === 'sync' && msg && p.state === 'BODY_RAW') {
      msg.gap = true;
      msg.bodySize += length;
      return;
    }
    // Framing is lost: the message in progress is broken. A partial start line kept while
    // resynchronising does not go on after the hole.
    this.lossSeen = true;
    this.tail[dir] = undefined;
    if (dir === 0) {
      if (!msg) this.flushEarly();
      // The hole may hold requests nobody will parse. Requests queued before it still pair in
      // order (pickRequest stops at the hole). Any request in it was sent after the last client
      // packet seen, so it carries at least that packet's acknowledgement.
      this.pushHidden({ off: meta.offset, peerAck: Math.max(0, Math.min(meta.peerAck, this.clientAck)) });
      this.skipping = true; // the bytes skipped while resynchronising belong to the same hole
    } else {
      // In-order pairing of responses is over: the hole holds an unknown number of them.
      if (this.certain && !msg) this.lostAtBoundary();
      this.certain = false;
    }
    if (msg) {
      msg.broken = 'gap';
      msg.gap = true;
      this.finishBroken(dir, msg);
    }
    if (st === 'hold') {
      this.held = [];
      this.heldBytes = 0;
    }
    this.cur[dir] = undefined;
    this.next[dir] = undefined;
    this.state[dir] = 'resync';
  }

  fin(dir: Dir, _time: number): void {
    if (this.handedOver) {
      this.handedOver.fin(dir, _time);
      return;
    }
    // A body delimited by the connection close (RFC 9112 §6.3 rule 8) ends at the FIN.
    if (this.state[dir] === 'sync' && this.parsers[dir].state === 'BODY_RAW') this.parsers[dir].finish();
  }

  end(time: number, reason: CloseReason): void {
    if (this.handedOver) {
      this.handedOver.end(time, reason);
      return;
    }
    if (this.ended) return;
    for (const dir of [0, 1] as Dir[]) {
      const p = this.parsers[dir];
      if (this.state[dir] === 'sync' && p.state === 'BODY_RAW') {
        const msg = this.cur[dir];
        // Only a FIN proves a close-delimited body whole; a reset or the end of the capture does not.
        if (msg && reason !== 'fin') msg.broken = reason === 'eof' ? 'capture-ended' : `connection-${reason}`;
        p.finish();
      }
      const msg = this.cur[dir];
      if (msg && !msg.complete) {
        msg.broken ??= reason === 'eof' ? 'capture-ended' : 'connection-closed';
        this.finishBroken(dir, msg);
        this.cur[dir] = undefined;
      }
    }
    this.flushEarly();
    this.ended = true;
    const unanswered = this.queue; // emit() removes from this.queue: iterate a detached copy
    this.queue = [];
    this.queueBytes = 0;
    // A reset is named: connection-churn reports requests a peer answered with RST.
    const why = reason === 'eof' ? 'no-response-before-capture-end' : reason === 'rst' ? 'connection-rst' : 'no-response';
    for (const req of unanswered) this.emit(req, req.done ?? req.msg.broken ?? why);
  }

  // ---- parser callbacks ----------------------------------------------------------------------

  private onHeaders(dir: Dir, info: ParserInfo): number {
    const start = this.next[dir] ?? this.mark(dir);
    this.next[dir] = undefined;
    const headers = headerObject(info.headers);
    const msg: Msg = {
      start, endOff: 0, endTime: 0, endFrame: 0, info, headers,
      bodySize: 0, body: [], captured: 0, truncated: false, gap: false, complete: false,
    };
    this.cur[dir] = msg;
    const p = this.parsers[dir];
    if (dir === 0) {
      const extra = (p as Parser & { lineExtra?: RequestLineExtra }).lineExtra;
      if (extra) {
        msg.line = extra;
        if (extra.lenient) this.ctx.violation('http.lenient_request_line', `request line "${info.method} ${info.url}${extra.version ? ` HTTP/${extra.version}` : ''}" is not RFC 9112 conformant; read leniently`, start.off);
      }
    }
    // Content-Length must be one non-negative decimal number (RFC 9110 §8.6).
    const cl = headers['content-length'];
    const badLength = cl !== undefined && !p.isChunked && !/^\d{1,15}$/.test(cl.trim());
    const abort = (): number => {
      this.abort[dir] = 'HPE_INVALID_CONTENT_LENGTH';
      info.upgrade = true; // stops the parser after this callback
      return 1;
    };
    // "Transfer-Encoding: gzip, chunked" is chunked too: chunked must be the final coding (RFC 9112 §6.1).
    const te = headers['transfer-encoding'];
    if (te && !p.isChunked && /(?:^|,)\s*chunked\s*$/i.test(te)) {
      p.isChunked = true;
      p.body_bytes = null;
    }
    if (dir === 0) {
      const req: Req = { msg, emitted: false, bytes: headerBytes(info) };
      msg.req = req;
      // Sent before the previous request's response had (fully) arrived: the client pipelines.
      const prev = this.lastReq;
      const ack = start.peerAck;
      if (ack >= 0 && (ack <= this.lastReqAck || (prev?.response?.complete && ack < prev.response.endOff))) this.pipelined = true;
      this.lastReq = req;
      this.lastReqAck = ack;
      const early = this.early;
      if (early) {
        this.early = undefined;
        if (early.off === start.off) req.response = early.resp;
        else this.emitOrphan(early.resp, 'no-request-seen');
      }
      this.queue.push(req);
      this.queueBytes += req.bytes;
      this.enforceBound();
      if (badLength) return abort(); // queued first: its response still pairs with it
      if (info.upgrade) this.upgradeAsked = req;
      return 0;
    }
    // Response: decide which request it answers; HEAD and CONNECT change its framing.
    const status = info.statusCode ?? 0;
    const req = this.pickRequest(msg);
    this.answering = req;
    this.answeringKnown = true;
    const method = req?.msg.info.method;
    if (badLength) return abort(); // paired first, so the broken response keeps its request
    // 1xx, 204 and 304 end with their header section whatever Content-Length says (RFC 9112 §6.3 rule 1).
    if ((status >= 100 && status < 200 && status !== 101) || status === 204 || status === 304) return 1;
    if (method === 'HEAD') return 1;
    if (method === 'CONNECT' && status >= 200 && status < 300) {
      info.upgrade = true;
      return 1;
    }
    return 0;
  }

  private onBody(dir: Dir, chunk: Buffer, start: number, len: number): void {
    const msg = this.cur[dir];
    if (!msg) return;
    msg.bodySize += len;
    if (msg.gap) return; // the preview stops at the first hole
    const room = this.ctx.options.bodyLimit - msg.captured;
    if (room <= 0) {
      msg.truncated = true;
      return;
    }
    const n = Math.min(room, len);
    msg.body.push(Buffer.from(chunk.subarray(start, start + n)));
    msg.captured += n;
    const req = msg.req;
    if (req && !req.emitted) {
      req.bytes += n;
      this.queueBytes += n;
      this.enforceBound();
    }
    if (n < len) msg.truncated = true;
  }

  private onTrailers(dir: Dir, trailers: string[]): void {
    const msg = this.cur[dir];
    if (msg) msg.trailers = headerObject(trailers);
  }

  private onComplete(dir: Dir): void {
    const msg = this.cur[dir];
    if (!msg) return;
    const p = this.parsers[dir];
    const at = this.at[dir];
    msg.complete = true;
    msg.endOff = at.offset + p.offset;
    msg.endTime = at.time;
    msg.endFrame = at.frame;
    msg.span = { ...this.span[dir] };
    // A message starting later in this packet starts its span here.
    const span = this.span[dir];
    span.minT = span.maxT = at.time;
    span.minF = span.maxF = at.frame;
    this.cur[dir] = undefined;
    // The next message starts right after this one, in the same packet if bytes remain.
    this.next[dir] = p.offset < p.end ? { off: msg.endOff, time: at.time, frame: at.frame, peerAck: at.peerAck } : undefined;
    if (this.abort[dir]) {
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

  /**
   * Which queued request a response answers. Certain mode: the oldest, unless unparsed client
   * bytes come first. Otherwise the one candidate left: a request (or unparsed client bytes) the
   * server had begun to receive (start < response's ack) and whose client had not yet acknowledged
   * this response (request's ack <= response start); with none or several, none. After a loss,
   * also see the class comment: the lockstep rule narrows the candidates, and a final response
   * ends the exchange of the oldest candidate.
   */
  private pickRequest(resp: Msg): Req | undefined {
    const q = this.queue;
    this.ambiguous = false;
    this.uniquePick = false;
    this.orphanWhy = 'no-request-seen';
    this.answersInProgress = undefined;
    const p0 = this.parsers[0];
    const inProgress = this.state[0] === 'sync' && !this.cur[0] && this.next[0] && (p0.state !== 'REQUEST_LINE' || p0.line.length > 0) ? this.next[0] : undefined;
    if (this.certain) {
      // The oldest request not yet answered. If every queued request already has its response,
      // the server answered one the parser never saw (swallowed by a wrong body length).
      const r = q.find((x) => !x.response && !x.done);
      const h = this.hidden[0];
      if (!h) {
        if (!r && q.length > 0) this.certain = false;
        // Next in order is the request whose header section is still arriving (an early answer).
        if (!r && inProgress) this.answersInProgress = inProgress.off;
        return r;
      }
      if (r && r.msg.start.off < h.off) return r;
      if (h.one) {
        // It answers a request evicted from the queue.
        this.hidden.shift();
        this.orphanWhy = 'evicted';
        return undefined;
      }
      // In-order pairing has reached client bytes nobody parsed: acknowledgements decide from here.
      this.certain = false;
    }
    const rs = resp.start;
    const recover = this.lossSeen;
    const final = isFinal(resp.info.statusCode);
    if (this.confused) {
      this.ambiguous = true;
      return undefined;
    }
    const could = (off: number, peerAck: number) => off < rs.peerAck && peerAck <= rs.off;
    // Lockstep: the client sent request Y after every earlier response had arrived, so a response
    // that began after what Y acknowledged answers Y or a later request.
    let floor = -1;
    let floorAck = -1;
    if (recover && !this.pipelined) {
      for (const r of q) {
        const m = r.msg.start;
        if (m.peerAck >= 0 && m.peerAck <= rs.off && m.off > floor) {
          floor = m.off;
          floorAck = m.peerAck;
        }
      }
    }
    // Unparsed client bytes before the floor are passed too, unless the floor request may have
    // gone out in the same flight as them (no more acknowledged than the client packet before them).
    const passed = (h: Hidden) => h.off < floor && h.peerAck < floorAck;
    let best: Req | undefined;
    let bestHidden: Hidden | undefined;
    const reqs: Req[] = [];
    let count = 0;
    let minOff = Infinity;
    let minReq: Req | undefined;
    let minHidden: Hidden | undefined;
    const consider = (off: number, req?: Req, h?: Hidden) => {
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
    for (const r of q) {
      const m = r.msg.start;
      if (!r.response && !r.done && m.off >= floor && could(m.off, m.peerAck)) consider(m.off, r);
    }
    for (const h of this.hidden) if (!passed(h) && could(h.off, h.peerAck)) consider(h.off, undefined, h);
    const progressing = inProgress !== undefined && could(inProgress.off, inProgress.peerAck);
    if (progressing) consider(inProgress.off);
    if (recover) {
      // A request line begun while resynchronising, and client bytes the server had received but
      // the capture has not shown (yet): either may hold the request this answers.
      const t = this.tail[0];
      if (this.state[0] === 'resync' && t && !this.skipping && could(t.off, this.clientAck)) consider(t.off);
      if (rs.peerAck > this.clientEnd && could(this.clientEnd, this.clientAck)) consider(this.clientEnd);
      // Client bytes held after an Upgrade or CONNECT: if the server switched, they are the other
      // protocol's (a tunnelled request is answered through the tunnel, maybe with HTTP bytes).
      const hb = this.held[0];
      if (this.state[0] === 'hold' && hb && could(hb.meta.offset, hb.meta.peerAck)) consider(hb.meta.offset);
      if (final && floor >= 0) {
        this.retireBefore(floor, 'response-lost-in-gap', false);
        this.hidden = this.hidden.filter((h) => !passed(h));
      }
    }
    if (count === 1) {
      if (best) {
        this.uniquePick = true;
        return best;
      }
      if (progressing) this.answersInProgress = inProgress.off;
      if (bestHidden) {
        // It answers the one request nobody could parse: that request is spent.
        this.hidden.splice(this.hidden.indexOf(bestHidden), 1);
        if (bestHidden.one) this.orphanWhy = 'evicted';
      }
      return undefined;
    }
    this.ambiguous = count > 1;
    if (this.ambiguous) {
      this.orphanWhy = 'request-ambiguous-after-gap';
      for (const r of reqs) r.maybe = true;
      // Whichever it answers, the oldest candidate's final response is this one or came before.
      if (recover && final && this.anchored) {
        if (minReq) this.retire(minReq, 'response-ambiguous-after-gap');
        else if (minHidden?.one) this.hidden.splice(this.hidden.indexOf(minHidden), 1);
      }
    }
    return undefined;
  }

  /**
   * In-order pairing expected the next response where server bytes were lost (RFC 9112 §9.3: it
   * answers the oldest unanswered request). That request's final response began in the lost bytes,
   * unless they held only interim (1xx) responses: possible only when one was asked for
   * (Expect: 100-continue), one was seen on this connection, or the request asked to upgrade.
   */
  private lostAtBoundary(reason = 'response-lost-in-gap'): void {
    const r = this.queue.find((x) => !x.response && !x.done);
    const h = this.hidden[0];
    if (h && (!r || h.off < r.msg.start.off)) {
      if (h.one) this.hidden.shift();
      return;
    }
    if (!r || this.sawInterim || r === this.upgradeAsked || r.msg.info.upgrade) return;
    if (/100-continue/i.test(r.msg.headers['expect'] ?? '')) return;
    const p1 = this.parsers[1];
    const code = p1.state === 'RESPONSE_LINE' ? /^HTTP\/\d\.\d\s+(\d)/.exec(p1.line)?.[1] : p1.state === 'HEADER' ? String(p1.info.statusCode ?? '')[0] : undefined;
    if (code === '1') return;
    this.retire(r, reason);
  }

  private onResponse(resp: Msg): void {
    let req = this.answeringKnown ? this.answering : this.pickRequest(resp);
    const unique = this.uniquePick;
    const early = this.answersInProgress;
    this.answersInProgress = undefined;
    this.answering = undefined;
    this.answeringKnown = false;
    const status = resp.info.statusCode ?? 0;
    if (status >= 100 && status < 200 && status !== 101) {
      // Interim response (RFC 9110 §15.2): the final one is still to come.
      this.sawInterim = true;
      if (req) (req.interim ??= []).push({ status, time: resp.start.time, frame: resp.start.frame });
      return;
    }
    if (!req && early !== undefined) {
      // It answers the request that was still being read: paired with it once it is queued.
      req = this.queue.find((r) => r.msg.start.off === early && !r.response && !r.done);
      if (!req && !this.early && early === this.next[0]?.off) {
        this.early = { off: early, resp };
        return;
      }
    }
    if (!req || req.emitted) {
      // (An emitted request here was evicted from the queue while its response was being read.)
      this.emitOrphan(resp, req ? 'evicted' : this.orphanWhy);
      this.settle();
      return;
    }
    // Requests queued before this one lost their responses in a gap.
    this.retireBefore(req.msg.start.off, 'response-lost-in-gap');
    req.response = resp;
    const q = this.queue;
    const after = q[q.indexOf(req) + 1];
    // A request sent before this response had fully arrived: the client pipelines.
    if (after && after.msg.start.peerAck >= 0 && after.msg.start.peerAck < resp.endOff) this.pipelined = true;
    const method = req.msg.info.method;
    if (status === 101 || (method === 'CONNECT' && status >= 200 && status < 300)) {
      // Upgrade accepted or tunnel established: the rest of the connection is another protocol.
      this.upgradeRequest = req.msg;
      this.upgraded = status === 101 ? (req.msg.headers['upgrade'] ?? 'unknown').trim().toLowerCase() : 'tunnel';
      this.verdict = 'switch';
      this.upgradeAsked = undefined;
    }
    const declined = req === this.upgradeAsked && this.verdict !== 'switch';
    if (declined) this.upgradeAsked = undefined;
    if (unique && this.lossSeen && !this.certain) this.reanchor(req, resp);
    if (req.msg.complete || req.msg.broken) this.emit(req);
    this.settle();
    // Replay the client bytes held for the verdict now: a later response in this same chunk
    // answers one of them and must find it queued.
    if (declined) this.resumeClient();
  }

  /**
   * `resp` answered `req` and nothing else could have: the next response answers the request after
   * it, so in-order pairing is safe again if every client byte after `req` was parsed.
   */
  private reanchor(req: Req, resp: Msg): void {
    if (this.verdict || this.confused || this.hidden.length > 0) return;
    if (this.state[0] !== 'sync' || this.skipping || this.state[1] !== 'sync' || resp.start.peerAck > this.clientEnd) return;
    this.certain = true;
    this.anchored = true;
  }

  /**
   * Requests (and unparsed client bytes) before stream offset `off` have had their final
   * responses: those not answered are reported with `reason`.
   */
  private retireBefore(off: number, reason: string, hiddenToo = true): void {
    if (hiddenToo && this.lossSeen) while (this.hidden.length > 0 && this.hidden[0]!.off < off) this.hidden.shift();
    for (const r of this.queue.slice()) {
      if (r.msg.start.off >= off) break;
      if (!r.response) this.retire(r, reason);
    }
  }

  /** `r` will never pair: reported now, or once its own bytes are complete. */
  private retire(r: Req, reason: string): void {
    r.done ??= r.maybe && reason === 'response-lost-in-gap' ? 'response-ambiguous-after-gap' : reason;
    if (r.msg.complete || r.msg.broken) this.emit(r);
  }

  private pushHidden(h: Hidden): void {
    if (this.hidden.length >= MAX_HIDDEN) {
      if (!this.confused) this.ctx.violation('http.unparsed_requests', `more than ${MAX_HIDDEN} stretches of unparsed client bytes awaiting responses; pairing stops until the connection settles`, h.off);
      this.confused = true;
      this.certain = false;
      return;
    }
    this.hidden.push(h);
  }

  /** The queue stays within MAX_PENDING_REQUESTS and MAX_PENDING_BYTES: the oldest goes first. */
  private enforceBound(): void {
    const q = this.queue;
    while (q.length > 1 && (q.length > MAX_PENDING_REQUESTS || this.queueBytes > MAX_PENDING_BYTES)) {
      const old = q[0]!;
      this.ctx.violation('http.pending_requests', `more than ${MAX_PENDING_REQUESTS} requests or ${MAX_PENDING_BYTES} bytes awaiting responses; the oldest is reported without its response`, old.msg.start.off);
      // Its response may still come: keep its place, so no later request is paired with it.
      if (!old.response && !old.done && old !== this.answering) {
        const h: Hidden = { off: old.msg.start.off, peerAck: old.msg.start.peerAck, one: true };
        const i = this.hidden.findIndex((x) => x.off > h.off);
        if (this.hidden.length >= MAX_HIDDEN) this.pushHidden(h);
        else if (i < 0) this.hidden.push(h);
        else this.hidden.splice(i, 0, h);
      }
      old.done ??= 'evicted';
      this.emit(old);
    }
  }

  /** Back to certain pairing once nothing is outstanding and both directions are in sync. */
  private settle(): void {
    if (!this.certain && this.queue.length === 0 && this.state[0] === 'sync' && this.state[1] === 'sync' && !this.cur[0] && !this.cur[1]) {
      this.certain = true;
      this.anchored = true;
      this.confused = false;
      this.hidden = [];
    }
  }

  /** Server answered an Upgrade/CONNECT. */
  private switchProtocols(serverRest: Buffer, serverMeta: StreamMeta): void {
    const proto = this.upgraded;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.state[0] = this.state[1] = 'stopped';
    if (proto === 'h2c') {
      const next = this.ctx.handover('http2');
      if (next) {
        this.handedOver = next;
        const req = this.upgradeRequest;
        if (req && next.adoptUpgrade) {
          next.adoptUpgrade({ method: req.info.method ?? 'GET', path: req.info.url ?? '/', headers: req.headers, time: req.start.time, frame: req.start.frame });
        }
        for (const h of held) next.data(0, h.bytes, h.meta);
        if (serverRest.length) next.data(1, serverRest, serverMeta);
      }
    }
  }

  private resumeClient(): void {
    if (this.state[0] !== 'hold') return;
    this.state[0] = 'sync';
    this.parsers[0] = this.makeParser(0);
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const h of held) this.data(0, h.bytes, h.meta);
  }

  // ---- errors --------------------------------------------------------------------------------

  /** The request an early response answered will not be queued: the response is reported alone. */
  private flushEarly(): void {
    const early = this.early;
    this.early = undefined;
    if (early) this.emitOrphan(early.resp, 'no-request-seen');
  }

  private malformed(dir: Dir, code: string, offset: number, known = false): void {
    this.ctx.violation(`http.${code.replace(/^HPE_/, '').toLowerCase()}`, `malformed HTTP/1 ${dir === 0 ? 'request' : 'response'} (${code})`, offset);
    const msg = this.cur[dir];
    if (msg) {
      msg.broken = 'malformed';
      if (!msg.endTime) {
        msg.span = { ...this.span[dir] };
        msg.endOff = Math.max(offset, msg.start.off);
        msg.endTime = this.at[dir].time;
        msg.endFrame = this.at[dir].frame;
      }
      this.finishBroken(dir, msg);
    } else if (dir === 0 && !known) {
      // A request broken before its headers ended was never queued, yet a response may answer it.
      this.flushEarly();
      const m = this.next[0] ?? this.mark(0);
      this.pushHidden({ off: m.off, peerAck: m.peerAck });
      this.skipping = true; // the bytes skipped next belong to it
    } else if (dir === 1 && !known && this.certain) {
      // A response broken before its headers ended, where in-order pairing expected the next one.
      this.lostAtBoundary('malformed');
    }
    this.cur[dir] = undefined;
    this.next[dir] = undefined;
    this.certain = false;
    this.lossSeen = true;
    this.state[dir] = 'resync';
  }

  /** A message that will not complete: requests stay queued for a response; responses are emitted. */
  private finishBroken(dir: Dir, msg: Msg): void {
    const at = this.at[dir];
    if (!msg.endTime) {
      msg.span = { ...this.span[dir] };
      msg.endOff = Math.max(this.seenEnd[dir], msg.start.off);
      msg.endTime = at.time;
      msg.endFrame = at.frame;
    }
    if (dir === 0) {
      const req = msg.req;
      if (req?.response || req?.done) this.emit(req); // already answered: report it now, never pair it again
      return;
    }
    const req = this.answeringKnown ? this.answering : undefined;
    this.answering = undefined;
    this.answeringKnown = false;
    if (req && !req.emitted) {
      this.retireBefore(req.msg.start.off, 'response-lost-in-gap');
      req.response = msg;
      this.emit(req);
    } else this.emitOrphan(msg, msg.broken ?? 'malformed');
  }

  // ---- output --------------------------------------------------------------------------------

  private mark(dir: Dir): Mark {
    const at = this.at[dir];
    return { off: at.offset, time: at.time, frame: at.frame, peerAck: at.peerAck };
  }

  private emit(req: Req, reason?: string): void {
    if (req.emitted) return;
    req.emitted = true;
    const qi = this.queue.indexOf(req);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      this.queueBytes -= req.bytes;
    }
    reason ??= req.response ? undefined : req.done;
    const tx: Transaction = { protocol: 'http', request: this.requestHalf(req.msg) };
    if (req.response) {
      tx.response = this.responseHalf(req.response);
      if (req.interim) tx.response.interim = req.interim;
    }
    const why = reason ?? req.msg.broken ?? req.response?.broken
      ?? (req.msg.gap || req.response?.gap ? 'gap-in-body' : undefined);
    if (why) tx.incomplete = why;
    else if (!req.response) tx.incomplete = 'no-response';
    if (req.response && this.upgraded && (req.response.info.statusCode === 101 || req.msg.info.method === 'CONNECT')) {
      tx.upgrade = this.upgraded;
    }
    this.ctx.emit(tx);
  }

  private emitOrphan(resp: Msg, reason: string): void {
    this.ctx.emit({ protocol: 'http', response: this.responseHalf(resp), incomplete: reason });
  }

  /** Fills the fields every message half shares (no intermediate objects: this runs per message). */
  private fill<T extends MessageHalf>(out: T, m: Msg): T {
    const sp = m.span;
    out.start = sp ? Math.min(sp.minT, m.start.time) : m.start.time;
    out.end = sp ? Math.max(sp.maxT, m.endTime) : m.endTime || m.start.time;
    out.frames = sp ? [Math.min(sp.minF, m.start.frame), Math.max(sp.maxF, m.endFrame)] : [m.start.frame, m.endFrame || m.start.frame];
    out.size = Math.max(0, m.endOff - m.start.off);
    out.headers = m.headers;
    if (m.trailers) out.trailers = m.trailers;
    out.bodySize = m.bodySize;
    if (m.captured > 0) out.body = m.body.length === 1 ? m.body[0]! : Buffer.concat(m.body);
    if (m.truncated) out.bodyTruncated = true;
    if (m.gap) out.gap = true;
    return out;
  }

  private requestHalf(m: Msg): HttpRequestHalf {
    const i = m.info;
    const version = m.line ? m.line.version : `${i.versionMajor}.${i.versionMinor}`;
    return this.fill({ method: i.method ?? '', path: i.url ?? '', version } as HttpRequestHalf, m);
  }

  private responseHalf(m: Msg): HttpResponseHalf {
    const i = m.info;
    return this.fill({ status: i.statusCode ?? 0, reason: i.statusMessage ?? '', version: `${i.versionMajor}.${i.versionMinor}` } as HttpResponseHalf, m);
  }
}

const ZERO = Buffer.alloc(1);

/** A final response ends its request's exchange; 1xx interim responses do not (RFC 9110 §15.2). */
function isFinal(status: number | undefined): boolean {
  return status !== undefined && (status >= 200 || status === 101);
}

/** What a queued request's start line and header fields hold in memory, roughly. */
function headerBytes(info: ParserInfo): number {
  let n = 64 + (info.url?.length ?? 0);
  for (const h of info.headers) n += h.length;
  return n;
}

/** http-parser-js errors that carry no code, under llhttp's names (violation codes must be stable). */
const MESSAGE_CODES: Record<string, string> = {
  'max header size exceeded': 'HPE_HEADER_OVERFLOW',
  'Expected empty line': 'HPE_INVALID_CHUNK_DATA',
  'invalid request method': 'HPE_INVALID_METHOD',
};

/** True when the request parser is between messages (it stops there after an Upgrade request). */
function p0Stopped(p: Parser): boolean {
  return p.state === 'REQUEST_LINE';
}

/** Lower-case forms of header names seen: the same few dozen names recur on every message. */
const LOWER = new Map<string, string>();

/** Header list → object with lower-case names; repeated fields joined with ", " (RFC 9110 §5.3). */
function headerObject(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i]!;
    let k = LOWER.get(name);
    if (k === undefined) {
      k = name.toLowerCase();
      if (LOWER.size < 1024) LOWER.set(name, k);
    }
    const v = list[i + 1]!;
    const prev = out[k];
    // Set-Cookie cannot be joined with commas (RFC 9110 §5.3); keep one cookie per line.
    out[k] = prev === undefined ? v : `${prev}${k === 'set-cookie' ? '\n' : ', '}${v}`;
  }
  return out;
}
