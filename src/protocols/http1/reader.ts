import type { Dir, StreamMeta } from '../../stream/index.js';
import type { ParserInfo } from 'http-parser-js';
import type { Http1Limits } from './limits.js';
import { headerObject, type Mark, type Msg, newMessage, type Span } from './message.js';
import { createParser, type Parser, type RequestLineExtra } from './parser.js';

/** What the session decides when the reader meets a message boundary. */
export interface ReaderEvents {
  /**
   * A message's head (start line and header section) was read. Returns 1 when no body follows
   * (RFC 9112 §6.3: the answer to HEAD, 1xx/204/304, a CONNECT tunnel), else 0. `badLength`:
   * Content-Length is not one decimal number (RFC 9110 §8.6); the session calls `fail` once the
   * message has its place.
   */
  head(dir: Dir, msg: Msg, badLength: boolean): number;
  /** `n` body bytes were copied into the message's preview. */
  kept(msg: Msg, n: number): void;
  /** The message ended (`abort` tells a message ended by `fail`). */
  complete(dir: Dir, msg: Msg): void;
  violation(code: string, reason: string, offset: number): void;
}

/** http-parser-js errors that carry no code, under llhttp's names (violation codes must be stable). */
const MESSAGE_CODES: Record<string, string> = {
  'max header size exceeded': 'HPE_HEADER_OVERFLOW',
  'Expected empty line': 'HPE_INVALID_CHUNK_DATA',
  'invalid request method': 'HPE_INVALID_METHOD',
};

/** One byte fed in place of the last byte of a hole inside a body, so the parser's count goes on. */
export const PLACEHOLDER = Buffer.alloc(1);
export const GAP_LOST = -1;
export const GAP_TAKEN = -2;

/**
 * The parser adapter for one direction: an http-parser-js parser, and the message it is reading
 * with the stream positions, capture times and frames of its bytes. It knows HTTP/1 message
 * syntax (RFC 9112) and nothing of pairing; the session binds what it reads.
 *
 * Buffers: `execute` runs over the packet's bytes in place; the body preview is the only copy
 * (made in onBody, before the packet buffer can be reused).
 */
export class MessageReader {
  parser: Parser;
  /** Message being read, and where the next one starts (known once its first byte was fed). */
  cur: Msg | undefined;
  next: Mark | undefined;
  /** Packet being parsed (its meta), for positions inside parser callbacks. */
  readonly at: StreamMeta = { time: 0, frame: 0, offset: 0, peerAck: -1 };
  /** Packets seen for the message in progress (captures may be out of time order). */
  private readonly span: Span = { minT: 0, maxT: 0, minF: 0, maxF: 0 };
  /** Stream offset just past the last byte seen (where a cut-off message ends). */
  seenEnd = 0;
  /** Set by `fail`: the message is malformed though its head parsed (its place is kept). */
  abort: string | undefined;

  constructor(
    private readonly dir: Dir,
    private readonly limits: Http1Limits,
    private readonly bodyLimit: number,
    private readonly events: ReaderEvents,
  ) {
    this.parser = this.newParser();
  }

  /** A fresh parser, at a message start (after resynchronising, or once an Upgrade was declined). */
  newParser(): Parser {
    const p = createParser(this.dir === 0 ? 'REQUEST' : 'RESPONSE', this.limits);
    p.onHeadersComplete = (info) => this.onHeaders(info);
    p.onBody = (chunk, start, len) => this.onBody(chunk, start, len);
    p.onHeaders = (trailers) => this.onTrailers(trailers);
    p.onMessageComplete = () => this.onComplete();
    this.parser = p;
    return p;
  }

  /** Parses `bytes`: how many were consumed (the parser stops after an upgrade), or the error. */
  feed(bytes: Buffer, meta: StreamMeta): number | Error {
    const at = this.at;
    at.time = meta.time; at.frame = meta.frame; at.offset = meta.offset; at.peerAck = meta.peerAck;
    this.seenEnd = meta.offset + bytes.length;
    const span = this.span;
    if (!this.cur && !this.next) {
      this.next = { off: meta.offset, time: meta.time, frame: meta.frame, peerAck: meta.peerAck };
      span.minT = span.maxT = meta.time;
      span.minF = span.maxF = meta.frame;
    } else {
      if (meta.time < span.minT) span.minT = meta.time;
      if (meta.time > span.maxT) span.maxT = meta.time;
      if (meta.frame < span.minF) span.minF = meta.frame;
      if (meta.frame > span.maxF) span.maxF = meta.frame;
    }
    try {
      return this.parser.execute(bytes);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /** The stable code of a parse failure (or of `fail`), consumed once. */
  takeError(r: number | Error): string {
    const err = r as Error & { code?: string };
    const code = this.abort ?? err.code ?? MESSAGE_CODES[err.message] ?? 'HPE_UNKNOWN';
    this.abort = undefined;
    return code;
  }

  /** Ends the message whose head was just read as malformed (from inside `head`). */
  fail(code: string): number {
    this.abort = code;
    this.cur!.info.upgrade = true; // stops the parser after this callback
    return 1;
  }

  /** A partial line longer than any line may be (http-parser-js checks only between calls). */
  lineTooLong(): boolean {
    return this.parser.line.length > this.limits.maxLine;
  }

  /** Between messages: the request parser stops here after a request that asked to upgrade. */
  between(): boolean {
    return this.parser.state === 'REQUEST_LINE';
  }

  /** A message's first bytes were fed but its head is not complete yet. */
  partial(): Mark | undefined {
    const p = this.parser;
    return !this.cur && this.next && (p.state !== 'REQUEST_LINE' || p.line.length > 0) ? this.next : undefined;
  }

  /** The response whose head is being read is a 1xx (its status line got that far). */
  interimInProgress(): boolean {
    const p = this.parser;
    const code = p.state === 'RESPONSE_LINE' ? /^HTTP\/\d\.\d\s+(\d)/.exec(p.line)?.[1] : p.state === 'HEADER' ? String(p.info.statusCode ?? '')[0] : undefined;
    return code === '1';
  }

  /** The body runs until the connection closes (RFC 9112 §6.3 rule 8). */
  closeDelimited(): boolean {
    return this.parser.state === 'BODY_RAW';
  }

  /**
   * A hole of `length` bytes in this direction. Inside a body whose length is known (RFC 9112
   * §6.2 Content-Length, or a chunk in progress, §7.1) framing survives: the body counts the
   * missing bytes. Returns
   *  - n >= 0: the first n bytes of the hole were body; the caller feeds PLACEHOLDER at the last
   *    of them so the parser ends the body or chunk there, and if n < length the rest of the hole
   *    starts at a message boundary;
   *  - GAP_TAKEN: a close-delimited body (§6.3 rule 8) took the whole hole;
   *  - GAP_LOST: framing is lost (the hole is in a head, a chunk-size line, or between messages).
   */
  bodyGap(length: number): number {
    const msg = this.cur;
    const p = this.parser;
    if (!msg) return GAP_LOST;
    let n: number;
    if (p.state === 'BODY_SIZED' && p.body_bytes !== null && p.body_bytes > 0 && p.body_bytes < length) n = p.body_bytes;
    else if ((p.state === 'BODY_SIZED' || p.state === 'BODY_CHUNK') && p.body_bytes !== null && p.body_bytes >= length) n = length;
    else if (p.state === 'BODY_RAW') {
      msg.gap = true;
      msg.bodySize += length;
      return GAP_TAKEN;
    } else return GAP_LOST;
    msg.gap = true;
    msg.bodySize += n - 1;
    p.body_bytes = p.body_bytes! - (n - 1);
    return n;
  }

  mark(): Mark {
    const at = this.at;
    return { off: at.offset, time: at.time, frame: at.frame, peerAck: at.peerAck };
  }

  /** A message cut off at stream offset `end`: its last byte is taken to be in the packet at hand. */
  close(msg: Msg, end: number): void {
    if (msg.endTime) return;
    msg.span = { ...this.span };
    msg.endOff = Math.max(end, msg.start.off);
    msg.endTime = this.at.time;
    msg.endFrame = this.at.frame;
  }

  // ---- parser callbacks ----------------------------------------------------------------------

  private onHeaders(info: ParserInfo): number {
    const start = this.next ?? this.mark();
    this.next = undefined;
    const msg = newMessage(start, info, headerObject(info.headers));
    this.cur = msg;
    const p = this.parser;
    if (this.dir === 0) {
      const extra = (p as Parser & { lineExtra?: RequestLineExtra }).lineExtra;
      if (extra) {
        msg.line = extra;
        if (extra.lenient) this.events.violation('http.lenient_request_line', `request line "${info.method} ${info.url}${extra.version ? ` HTTP/${extra.version}` : ''}" is not RFC 9112 conformant; read leniently`, start.off);
      }
    }
    // Content-Length must be one non-negative decimal number (RFC 9110 §8.6).
    const cl = msg.headers['content-length'];
    const badLength = cl !== undefined && !p.isChunked && !/^\d{1,15}$/.test(cl.trim());
    // "Transfer-Encoding: gzip, chunked" is chunked too: chunked must be the final coding (RFC 9112 §6.1).
    const te = msg.headers['transfer-encoding'];
    if (te && !p.isChunked && /(?:^|,)\s*chunked\s*$/i.test(te)) {
      p.isChunked = true;
      p.body_bytes = null;
    }
    return this.events.head(this.dir, msg, badLength);
  }

  private onBody(chunk: Buffer, start: number, len: number): void {
    const msg = this.cur;
    if (!msg) return;
    msg.bodySize += len;
    if (msg.gap) return; // the preview stops at the first hole
    const room = this.bodyLimit - msg.captured;
    if (room <= 0) {
      msg.truncated = true;
      return;
    }
    const n = Math.min(room, len);
    msg.body.push(Buffer.from(chunk.subarray(start, start + n)));
    msg.captured += n;
    this.events.kept(msg, n);
    if (n < len) msg.truncated = true;
  }

  private onTrailers(trailers: string[]): void {
    const msg = this.cur;
    if (msg) msg.trailers = headerObject(trailers);
  }

  private onComplete(): void {
    const msg = this.cur;
    if (!msg) return;
    const p = this.parser;
    const at = this.at;
    msg.complete = true;
    msg.endOff = at.offset + p.offset;
    msg.endTime = at.time;
    msg.endFrame = at.frame;
    msg.span = { ...this.span };
    // A message starting later in this packet starts its span here.
    const span = this.span;
    span.minT = span.maxT = at.time;
    span.minF = span.maxF = at.frame;
    this.cur = undefined;
    // The next message starts right after this one, in the same packet if bytes remain.
    this.next = p.offset < p.end ? { off: msg.endOff, time: at.time, frame: at.frame, peerAck: at.peerAck } : undefined;
    this.events.complete(this.dir, msg);
  }
}
