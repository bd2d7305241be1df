import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import type {
  CarriedProtocol, HttpRequestHalf, HttpResponseHalf, MessageHalf, ProtocolSession, SessionContext, Transaction, UpgradeRequest,
} from '../types.js';
import { addMessages, assign, joinField } from './fields.js';
import { DEFAULT_MAX_FRAME, errorName, FLAG, FRAME, FrameReader, PREFACE, SETTING, type Frame } from './frames.js';
import { HpackDecoder, HpackError, MAX_TABLE_SIZE } from './hpack.js';
import { DEFAULT_MAX_MESSAGES, listPrefix, MAX_HEADER_BLOCK, MAX_HEADER_LIST, MAX_STREAMS } from './limits.js';
import { findFrameSync } from './probe.js';
import type { Block, Half, Stream } from './state.js';

/**
 * HTTP/2 on one connection (RFC 9113), and gRPC on its streams. One frame reader and one HPACK
 * decoder per direction; streams become transactions when both ends are done or one is reset.
 * When the HPACK table is unknown (mid-connection capture, or a header block lost in a gap) the
 * decoder is desynced: fields it cannot know are left out, never guessed, and the record says so.
 */
export class Http2Session implements ProtocolSession {
  private readonly readers: [FrameReader, FrameReader];
  private hpack: [HpackDecoder, HpackDecoder];
  private readonly streams = new Map<number, Stream>();
  private readonly block: [Block | undefined, Block | undefined] = [undefined, undefined];
  /** Client preface bytes still expected at the start of direction 0 (RFC 9113 §3.4: the 24 octets "PRI * HTTP/2.0…"). */
  private prefaceLeft: number;
  /** Framing is lost in a direction until a plausible frame sequence is found again. */
  private readonly lost: [boolean, boolean];
  /** Whether a direction has read frames from a known boundary: a later resync can be vetted. */
  private readonly framed: [boolean, boolean];
  /** The highest stream id seen, and the bytes of the connection never read (gaps, bytes skipped while lost). */
  private highest = 0;
  private unseen = 0;
  private readonly at: [StreamMeta, StreamMeta] = [
    { time: 0, frame: 0, offset: 0, peerAck: -1 }, { time: 0, frame: 0, offset: 0, peerAck: -1 },
  ];
  private goaway: { lastStream: number; code: string; by: 'client' | 'server' } | undefined;
  /**
   * Streams already emitted. Ids are never reused on a connection (RFC 9113 §5.1.1), so late
   * frames for one (a server's answer racing the client's RST_STREAM) belong to no new exchange.
   * Bounded: the oldest ids are forgotten first.
   */
  private readonly closed = new Set<number>();
  private readonly closedOrder: number[] = [];
  private ended = false;
  private readonly maxMessages: number;
  /** gRPC, found by name (SessionContext.carried): http2/ does not import grpc/. */
  private readonly carried: CarriedProtocol | undefined;

  constructor(private readonly ctx: SessionContext, opts: { midStream?: boolean } = {}) {
    const mid = opts.midStream ?? (!ctx.conn.handshakeSeen || ctx.resync === true);
    this.prefaceLeft = mid ? 0 : PREFACE.length;
    // Caught mid-connection, either direction may begin inside a frame.
    this.lost = [mid, mid];
    this.framed = [!mid, !mid];
    this.hpack = [new HpackDecoder({ desynced: mid }), new HpackDecoder({ desynced: mid })];
    this.readers = [this.makeReader(0), this.makeReader(1)];
    this.maxMessages = ctx.options.maxMessages ?? DEFAULT_MAX_MESSAGES;
    this.carried = ctx.carried('grpc');
  }

  /** After an HTTP/1.1 Upgrade: h2c (RFC 7540 §3.2), the 101's request is stream 1, half-closed. */
  adoptUpgrade(req: UpgradeRequest): void {
    const half = this.newHalf(req.time, req.frame);
    half.pseudo = { ':method': req.method, ':path': req.path };
    half.headers = { ...req.headers };
    half.ended = true;
    this.streams.set(1, { id: 1, req: half, emitted: false });
    // The server's first bytes are its SETTINGS; the client sends the preface next.
    this.prefaceLeft = PREFACE.length;
  }

  private makeReader(dir: Dir): FrameReader {
    return new FrameReader(
      (f, gapped) => this.onFrame(dir, f, gapped),
      (type, length, offset) => this.ctx.violation('http2.frame_size', `${dir === 0 ? 'client' : 'server'} frame of type ${type} is ${length} bytes, over the ${this.readers[dir].maxFrame} allowed; skipped`, offset),
    );
  }

  // ---- stream events ------------------------------------------------------------------------

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.ended) return;
    const at = this.at[dir];
    at.time = meta.time; at.frame = meta.frame; at.offset = meta.offset; at.peerAck = meta.peerAck;
    let b = bytes;
    let off = meta.offset;
    if (this.lost[dir] && off === 0 && !this.framed[dir]) this.startAtZero(dir, b);
    if (dir === 0 && this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, b.length);
      const want = PREFACE.subarray(PREFACE.length - this.prefaceLeft, PREFACE.length - this.prefaceLeft + n);
      if (!b.subarray(0, n).equals(want)) {
        // No preface where one was due: carry on as if mid-connection.
        this.ctx.violation('http2.bad_preface', 'client connection preface missing or wrong', off);
        this.prefaceLeft = 0;
        this.lost[0] = true;
      } else {
        this.prefaceLeft -= n;
        b = b.subarray(n);
        off += n;
      }
    }
    if (b.length === 0) return;
    if (this.lost[dir]) {
      // Inside a connection known to be HTTP/2, one frame that fits the segment exactly will do,
      // on streams the connection could have reached: each stream opened in unseen bytes took a
      // HEADERS frame of 10 bytes or more, client and server ids alternate (RFC 9113 §5.1.1), and
      // 64 more ids allow for ids skipped. A first sync mid-connection has nothing to vet against.
      const reach = this.highest + 2 * (64 + Math.ceil(this.unseen / 10));
      const p = findFrameSync(b, this.readers[dir].maxFrame, 1, true, this.framed[dir] ? (id) => id <= reach : undefined);
      this.unseen += p < 0 ? b.length : p;
      if (p < 0) return;
      this.lost[dir] = false;
      this.framed[dir] = true;
      // A response may have begun in the bytes never read, for any stream that has none yet.
      if (dir === 1) for (const s of this.streams.values()) if (!s.resp) s.respLost = true;
      this.readers[dir].reset();
      b = b.subarray(p);
      off += p;
    }
    this.readers[dir].push(b, off, meta.time, meta.frame);
  }

  /**
   * A direction caught "mid-connection" whose very first bytes are its start after all: the client
   * preface (RFC 9113 §3.4, unmistakable), or a server's first SETTINGS frame (its preface, §3.4;
   * stream 0, a length a multiple of 6, §6.5). Framing is then known from byte 0, which hunting
   * for a frame that fits one segment cannot find when the first frame's header and payload come in
   * separate pieces (TLS plaintext, read 9 bytes and then the rest).
   */
  private startAtZero(dir: Dir, b: Buffer): void {
    const n = Math.min(b.length, PREFACE.length);
    const known = dir === 0
      ? n > 0 && b.subarray(0, n).equals(PREFACE.subarray(0, n))
      : b.length >= 9 && b[3] === FRAME.SETTINGS && (b[4]! & ~0x01) === 0 && b.readUInt32BE(5) === 0 && b.readUIntBE(0, 3) % 6 === 0;
    if (!known) return;
    if (dir === 0) this.prefaceLeft = PREFACE.length;
    this.lost[dir] = false;
    this.framed[dir] = true;
    this.readers[dir].reset();
    // From the start, this direction's HPACK dynamic table is known: empty (RFC 7541 §2.3.2).
    this.hpack[dir] = new HpackDecoder({ desynced: false });
  }

  gap(dir: Dir, length: number, _meta: StreamMeta): void {
    if (this.ended) return;
    this.unseen += length;
    if (dir === 0 && this.prefaceLeft > 0) this.prefaceLeft = 0;
    if (this.lost[dir]) return;
    if (this.readers[dir].gap(length)) return;
    // Framing lost: any header block may have been in the hole. The dynamic table is connection
    // state that every block may change (RFC 7541 §2.3.2, §4.4), so it is no longer known.
    this.lost[dir] = true;
    this.block[dir] = undefined;
    this.hpack[dir].desync();
    for (const s of this.streams.values()) {
      const h = dir === 0 ? s.req : s.resp;
      if (h && !h.ended) {
        h.gap = true;
        h.grpc?.gap(Number.MAX_SAFE_INTEGER);
      } else if (!h && dir === 1) s.respLost = true;
    }
  }

  fin(_dir: Dir, _time: number): void {}

  end(_time: number, reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    const why = reason === 'eof' ? 'capture-ended' : 'connection-closed';
    for (const s of [...this.streams.values()].sort((a, b) => a.id - b.id)) {
      if (s.emitted) continue;
      // GOAWAY's last-stream-id covers streams the *receiver* of the GOAWAY started (RFC 9113
      // §6.8): odd ids when the server sent it, even (pushed) ids when the client did.
      const g = this.goaway;
      const refused = g !== undefined && s.id > g.lastStream && s.id % 2 === (g.by === 'server' ? 1 : 0);
      // A stream that was reset or whose response ended is done: it keeps its own reasons.
      const done = s.error !== undefined || (s.resp?.ended ?? false);
      this.emit(s, refused ? 'refused-by-goaway' : done ? undefined : why);
    }
  }

  // ---- frames --------------------------------------------------------------------------------

  private onFrame(dir: Dir, f: Frame, gapped: boolean): void {
    const at = this.at[dir];
    if (this.held.size > 0) this.release(at.time);
    const open = this.block[dir];
    if (open && f.type !== FRAME.CONTINUATION) {
      // RFC 9113 §6.10: nothing may come between HEADERS and its CONTINUATIONs.
      this.ctx.violation('http2.continuation_expected', `frame type ${f.type} interrupted a header block on stream ${open.stream}`, f.offset);
      this.block[dir] = undefined;
      this.hpack[dir].desync();
    }
    switch (f.type) {
      case FRAME.DATA: return this.onData(dir, f, gapped);
      case FRAME.HEADERS: return this.onHeadersFrame(dir, f, gapped);
      case FRAME.CONTINUATION: return this.onContinuation(dir, f, gapped);
      case FRAME.PUSH_PROMISE: return this.onPushPromise(dir, f, gapped);
      case FRAME.SETTINGS: return this.onSettings(dir, f);
      case FRAME.RST_STREAM: {
        if (f.payload.length < 4 || f.stream === 0) return this.ctx.violation('http2.bad_rst_stream', 'RST_STREAM with a bad length or stream 0', f.offset);
        const s = this.stream(f.stream, at);
        if (!s) return;
        s.error = { code: errorName(f.payload.readUInt32BE(0)), frame: 'RST_STREAM', by: dir === 0 ? 'client' : 'server' };
        this.touch(dir === 0 ? s.req : s.resp, f, at);
        // Frames the peer sent before it saw the reset may still cross it on the wire: hold the
        // stream briefly so they join this record (an answer racing a client's CANCEL).
        this.hold(s, at.time);
        return;
      }
      case FRAME.GOAWAY: {
        if (f.payload.length < 8) return this.ctx.violation('http2.bad_goaway', 'GOAWAY shorter than 8 bytes', f.offset);
        this.goaway = { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: errorName(f.payload.readUInt32BE(4)), by: dir === 0 ? 'client' : 'server' };
        if (this.goaway.code !== 'NO_ERROR') {
          // A connection error ends every open stream (RFC 9113 §5.4.1).
          for (const s of this.streams.values()) {
            if (!s.emitted) s.error ??= { code: this.goaway.code, frame: 'GOAWAY', by: this.goaway.by };
          }
        }
        return;
      }
      default:
        return; // PRIORITY, PING, WINDOW_UPDATE carry nothing a record needs; unknown types are skipped (§4.1)
    }
  }

  private onSettings(dir: Dir, f: Frame): void {
    if (f.flags & FLAG.ACK) return;
    if (f.payload.length % 6 !== 0) {
      this.ctx.violation('http2.bad_settings', `SETTINGS payload of ${f.payload.length} bytes is not a multiple of 6`, f.offset);
      return;
    }
    // Settings a peer sends govern what the *other* side may send it (RFC 9113 §6.5.2).
    const other = (1 - dir) as Dir;
    for (let p = 0; p + 6 <= f.payload.length; p += 6) {
      const id = f.payload.readUInt16BE(p);
      const v = f.payload.readUInt32BE(p + 2);
      // The peer's decoder limit bounds the encoder's table size updates (RFC 7541 §4.2, §6.3).
      if (id === SETTING.HEADER_TABLE_SIZE) {
        // Valid, but more table than tapwire tracks: a size update past the cap will desync decoding.
        if (v > MAX_TABLE_SIZE) this.ctx.violation('hpack.table_size_limit', `SETTINGS_HEADER_TABLE_SIZE ${v} is above the ${MAX_TABLE_SIZE} bytes of table tracked`, f.offset);
        this.hpack[other].setMaxTableSizeLimit(v);
      } else if (id === SETTING.MAX_FRAME_SIZE) {
        if (v < DEFAULT_MAX_FRAME || v > 16_777_215) this.ctx.violation('http2.bad_settings', `SETTINGS_MAX_FRAME_SIZE ${v} is out of range`, f.offset);
        else this.readers[other].maxFrame = v;
      }
    }
  }

  private onHeadersFrame(dir: Dir, f: Frame, gapped: boolean): void {
    let p = 0;
    let end = f.payload.length;
    if (f.flags & FLAG.PADDED) {
      const pad = f.payload[0] ?? 0;
      p = 1;
      end -= pad;
    }
    // HEADERS (RFC 9113 §6.2): [Pad Length (8)] [E + Stream Dependency (32), Weight (8)] fragment [padding].
    if (f.flags & FLAG.PRIORITY) p += 5;
    if (p > end) return this.ctx.violation('http2.bad_padding', `HEADERS padding longer than the frame on stream ${f.stream}`, f.offset);
    this.startBlock(dir, f, f.payload.subarray(p, end), gapped);
  }

  private onPushPromise(dir: Dir, f: Frame, gapped: boolean): void {
    let p = 0;
    let end = f.payload.length;
    if (f.flags & FLAG.PADDED) {
      p = 1;
      end -= f.payload[0] ?? 0;
    }
    if (p + 4 > end) return this.ctx.violation('http2.bad_push_promise', 'PUSH_PROMISE too short', f.offset);
    const promised = f.payload.readUInt32BE(p) & 0x7fffffff;
    // PUSH_PROMISE (RFC 9113 §6.6): [Pad Length] R + Promised Stream ID (32), then a header block fragment.
    this.startBlock(dir, f, f.payload.subarray(p + 4, end), gapped, promised);
  }

  private startBlock(dir: Dir, f: Frame, fragment: Buffer, gapped: boolean, promised?: number): void {
    const at = this.at[dir];
    // One HEADERS frame may be as large as SETTINGS_MAX_FRAME_SIZE allows (16 MiB): the block limit holds for it too.
    const tooLarge = fragment.length > MAX_HEADER_BLOCK;
    if (tooLarge) this.ctx.violation('http2.header_block_too_large', `header block on stream ${f.stream} passes ${MAX_HEADER_BLOCK} bytes`, f.offset);
    const blk: Block = {
      stream: f.stream, flags: f.flags, parts: tooLarge ? [] : [Buffer.from(fragment)], size: fragment.length,
      time: f.startTime || at.time, frame: f.startFrame || at.frame,
      wire: 9 + f.payload.length, dropped: gapped || tooLarge, ...(promised !== undefined ? { promised } : {}),
    };
    if (f.flags & FLAG.END_HEADERS) this.finishBlock(dir, blk);
    else this.block[dir] = blk;
  }

  private onContinuation(dir: Dir, f: Frame, gapped: boolean): void {
    const blk = this.block[dir];
    if (!blk || blk.stream !== f.stream) {
      this.ctx.violation('http2.unexpected_continuation', `CONTINUATION on stream ${f.stream} with no header block open`, f.offset);
      return;
    }
    blk.size += f.payload.length;
    blk.wire += 9 + f.payload.length;
    if (gapped) blk.dropped = true;
    if (blk.size > MAX_HEADER_BLOCK) {
      this.ctx.violation('http2.header_block_too_large', `header block on stream ${f.stream} passes ${MAX_HEADER_BLOCK} bytes`, f.offset);
      blk.dropped = true;
      blk.parts = [];
    } else if (!blk.dropped) blk.parts.push(Buffer.from(f.payload));
    if (f.flags & FLAG.END_HEADERS) {
      this.block[dir] = undefined;
      this.finishBlock(dir, blk);
    }
  }

  /** A whole header block (HEADERS or PUSH_PROMISE + CONTINUATIONs) is decoded as one unit (RFC 9113 §4.3). */
  private finishBlock(dir: Dir, blk: Block): void {
    const at = this.at[dir];
    let fields: { name: string; value: string }[] = [];
    let partial = false;
    if (blk.dropped) {
      // The block cannot be decoded, and its table updates are lost with it.
      this.hpack[dir].desync();
      partial = true;
    } else {
      try {
        const r = this.hpack[dir].decode(blk.parts.length === 1 ? blk.parts[0]! : Buffer.concat(blk.parts));
        fields = r.fields;
        partial = r.unknown > 0;
        const kept = listPrefix(fields);
        if (kept < fields.length) {
          this.ctx.violation('http2.header_list_too_large', `header block on stream ${blk.stream} decodes to more than ${MAX_HEADER_LIST} bytes of fields; ${fields.length - kept} of ${fields.length} fields dropped`, blk.frame);
          fields = fields.slice(0, kept);
          partial = true;
        }
      } catch (err: unknown) {
        const code = err instanceof HpackError ? err.code : 'hpack.error';
        this.ctx.violation(code, `header block on stream ${blk.stream}: ${err instanceof Error ? err.message : String(err)}`, blk.frame);
        this.hpack[dir].desync();
        partial = true;
      }
    }
    if (blk.promised !== undefined) {
      // A pushed request: the promised stream's request half comes from the PUSH_PROMISE.
      const s = this.stream(blk.promised, at);
      if (!s) return;
      const h = this.newHalf(blk.time, blk.frame);
      assign(h, fields);
      h.partialHeaders = partial;
      h.ended = true;
      s.req = h;
      return;
    }
    const s = this.stream(blk.stream, at);
    if (!s) return;
    const endStream = (blk.flags & FLAG.END_STREAM) !== 0;
    let h = dir === 0 ? s.req : s.resp;
    // A header section always carries pseudo-header fields and trailers never do (RFC 9113
    // §8.3): a first-seen block that ends the stream without any is the trailers of a half
    // whose header section came before the capture.
    const trailersOnly = !h && endStream && !fields.some((f) => f.name.startsWith(':'));
    if (trailersOnly) {
      h = this.newHalf(blk.time, blk.frame);
      h.partialHeaders = true;
      h.gap = true;
      if (dir === 0) s.req = h;
      else s.resp = h;
    }
    if (!h) {
      h = this.newHalf(blk.time, blk.frame);
      assign(h, fields);
      h.partialHeaders = partial;
      if (dir === 0) s.req = h;
      else {
        const status = Number(h.pseudo[':status']);
        if (status >= 100 && status < 200) {
          // Interim response (RFC 9113 §8.1): the final HEADERS is still to come.
          const interim = { status, time: blk.time, frame: blk.frame };
          (s.req ??= this.newHalf(blk.time, blk.frame)).interim ??= [];
          s.req.interim!.push(interim);
          return;
        }
        s.resp = h;
        if (s.req?.interim) h.interim = s.req.interim;
      }
      if (this.carried?.carries(h.headers['content-type'] ?? s.req?.headers['content-type'])) {
        h.grpc = this.carried.reader(this.ctx.options.bodyLimit, this.maxMessages);
      }
    } else {
      // A second header block on the stream is its trailers (RFC 9113 §8.1).
      h.trailers = {};
      for (const f of fields) if (!f.name.startsWith(':')) h.trailers[f.name] = joinField(h.trailers[f.name], f.value, f.name);
      if (partial) h.partialHeaders = true;
    }
    h.size += blk.wire;
    h.end = at.time;
    h.lastFrame = at.frame;
    if (endStream) this.endHalf(s, dir);
  }

  private onData(dir: Dir, f: Frame, gapped: boolean): void {
    const at = this.at[dir];
    let p = 0;
    let end = f.payload.length;
    // DATA (RFC 9113 §6.1): [Pad Length (8)] data [padding]; padding counts toward flow control, not the body.
    if (f.flags & FLAG.PADDED && !gapped) {
      const pad = f.payload[0] ?? 0;
      p = 1;
      end -= pad;
      if (end < p) return this.ctx.violation('http2.bad_padding', `DATA padding longer than the frame on stream ${f.stream}`, f.offset);
    } else if (f.flags & FLAG.PADDED) p = 1;
    const s = this.stream(f.stream, at);
    if (!s) return;
    let h = dir === 0 ? s.req : s.resp;
    if (!h) {
      // DATA before any HEADERS we saw: the headers (and maybe earlier DATA) were before the
      // capture or in a gap. Its body is not known from the start, so no preview is offered.
      h = this.newHalf(f.startTime || at.time, f.startFrame || at.frame);
      h.partialHeaders = true;
      h.gap = true;
      if (dir === 0) s.req = h;
      else s.resp = h;
    }
    const data = f.payload.subarray(p, Math.max(p, end));
    h.size += 9 + f.payload.length;
    h.bodySize += data.length;
    h.end = at.time;
    h.lastFrame = at.frame;
    // gRPC bodies are kept as messages, not as a body preview.
    if (!h.gap && !h.grpc) {
      const room = this.ctx.options.bodyLimit - h.kept;
      if (room > 0) {
        const k = Math.min(room, data.length);
        h.body.push(Buffer.from(data.subarray(0, k)));
        h.kept += k;
        if (k < data.length) h.truncated = true;
      } else if (data.length > 0) h.truncated = true;
    }
    if (h.grpc?.broken && !gapped) h.grpc.restartAt(data);
    h.grpc?.push(data, at.time);
    if (gapped) {
      // The rest of this frame's payload is lost; the frame's END_STREAM flag still holds.
      h.gap = true;
      h.grpc?.gap(Number.MAX_SAFE_INTEGER);
    }
    if (f.flags & FLAG.END_STREAM) this.endHalf(s, dir);
  }

  // ---- streams -------------------------------------------------------------------------------

  private stream(id: number, at: StreamMeta): Stream | undefined {
    if (id === 0) {
      // Stream 0 is the connection itself (RFC 9113 §5.1.1): no stream frame may use it.
      this.ctx.violation('http2.stream_zero', 'a stream frame on stream 0', at.offset);
      return undefined;
    }
    let s = this.streams.get(id);
    if (!s) {
      if (this.closed.has(id)) return undefined;
      if (this.streams.size >= MAX_STREAMS) {
        const oldest = this.streams.values().next().value as Stream;
        this.ctx.violation('http2.too_many_streams', `more than ${MAX_STREAMS} streams open; stream ${oldest.id}, the oldest, is reported incomplete (evicted)`, at.offset);
        this.emit(oldest, 'evicted');
      }
      s = { id, emitted: false };
      this.streams.set(id, s);
      if (id > this.highest) this.highest = id;
    }
    return s.emitted ? undefined : s;
  }

  private newHalf(time: number, frame: number): Half {
    return {
      pseudo: {}, headers: {}, start: time, end: time, firstFrame: frame, lastFrame: frame, size: 0, bodySize: 0,
      body: [], kept: 0, truncated: false, gap: false, ended: false, partialHeaders: false,
    };
  }

  private touch(h: Half | undefined, f: Frame, at: StreamMeta): void {
    if (h) [h.size, h.end, h.lastFrame] = [h.size + 9 + f.payload.length, at.time, at.frame];
  }

  private endHalf(s: Stream, dir: Dir): void {
    const h = dir === 0 ? s.req : s.resp;
    if (h) {
      h.ended = true;
      h.grpc?.finish(h.end);
    }
    if (s.req?.ended && s.resp?.ended) this.emit(s, undefined);
    // A response may end before its request (the server answered early): wait briefly for the
    // request's end or a reset; if neither comes, the record says the request did not end.
    else if (dir === 1 && !s.req) this.emit(s, undefined); // its request was never seen: nothing to wait for
    else if (dir === 1) this.hold(s, h?.end ?? 0);
    else if (s.error) this.emit(s, undefined);
  }

  /** Streams waiting a little for frames that may still come (see RST_STREAM, endHalf). */
  private readonly held = new Map<Stream, number>();
  /** Capture seconds a finished or reset stream waits for crossing frames. */
  private static readonly HOLD_SEC = 1;

  private hold(s: Stream, time: number): void {
    if (!this.held.has(s)) this.held.set(s, time);
  }

  /** Emits held streams whose wait is over, or that became whole. */
  private release(now: number): void {
    for (const [s, since] of this.held) {
      const whole = (s.req?.ended ?? false) && (s.resp?.ended ?? false);
      if (whole || now - since > Http2Session.HOLD_SEC) {
        this.held.delete(s);
        this.emit(s, undefined);
      }
    }
  }

  private emit(s: Stream, reason: string | undefined): void {
    if (s.emitted) return;
    s.emitted = true;
    this.held.delete(s);
    this.streams.delete(s.id);
    this.closed.add(s.id);
    this.closedOrder.push(s.id);
    if (this.closedOrder.length > MAX_STREAMS) this.closed.delete(this.closedOrder.shift()!);
    const req = s.req, resp = s.resp;
    if (!req && !resp) return;
    const carried = this.carried?.carries(req?.headers['content-type'] ?? resp?.headers['content-type']) ? this.carried : undefined;
    const tx: Transaction = { protocol: carried?.name ?? 'http2', streamId: s.id };
    if (req) tx.request = this.requestHalf(req);
    if (resp) tx.response = this.responseHalf(resp, carried);
    if (s.error) tx.error = s.error;
    if (carried && req) {
      const ended = { status: tx.response?.grpcStatus, reset: s.error !== undefined, tookMs: ((resp?.end ?? req.end) - req.start) * 1000 };
      tx.grpc = carried.call(req.pseudo[':path'] ?? '', req.headers, resp?.headers, ended);
    }
    const partial = (req?.partialHeaders ?? false) || (resp?.partialHeaders ?? false);
    if (partial) tx.headersPartial = true;
    const why = reason
      ?? (req?.gap || resp?.gap ? 'gap' : undefined)
      ?? (partial ? 'headers-desynced' : undefined)
      ?? (!resp && s.respLost ? 'response-lost-in-gap' : undefined)
      ?? (!req ? 'no-request-seen' : !resp && !s.error ? 'no-response' : undefined)
      ?? (req && !req.ended && !s.error ? 'request-not-ended' : undefined);
    if (why) tx.incomplete = why;
    this.ctx.emit(tx);
  }

  private fill<T extends MessageHalf>(out: T, h: Half): T {
    out.start = h.start;
    out.end = h.end;
    out.frames = [h.firstFrame, h.lastFrame];
    out.size = h.size;
    out.headers = h.headers;
    if (h.trailers) out.trailers = h.trailers;
    out.bodySize = h.bodySize;
    if (h.kept > 0 && !h.grpc) out.body = h.body.length === 1 ? h.body[0]! : Buffer.concat(h.body);
    if (h.truncated && !h.grpc) out.bodyTruncated = true;
    if (h.gap) out.gap = true;
    return out;
  }

  private requestHalf(h: Half): HttpRequestHalf {
    const out = this.fill({ method: h.pseudo[':method'] ?? '', path: h.pseudo[':path'] ?? '', version: '2' } as HttpRequestHalf, h);
    if (h.pseudo[':authority'] !== undefined) out.authority = h.pseudo[':authority'];
    if (h.pseudo[':scheme'] !== undefined) out.scheme = h.pseudo[':scheme'];
    if (h.grpc) addMessages(out, h.grpc.messages, h.grpc.dropped);
    return out;
  }

  private responseHalf(h: Half, carried: CarriedProtocol | undefined): HttpResponseHalf {
    const st = h.pseudo[':status'];
    // Never a guessed status: without the response's header block there is none.
    const out = this.fill((st !== undefined && /^\d{3}$/.test(st) ? { status: Number(st), reason: '', version: '2' } : { reason: '', version: '2' }) as HttpResponseHalf, h);
    if (h.interim) out.interim = h.interim;
    if (carried) {
      const st = carried.status(h.headers, h.trailers);
      if (st.status !== undefined) out.grpcStatus = st.status;
      if (st.message !== undefined) out.grpcMessage = st.message;
    }
    if (h.grpc) addMessages(out, h.grpc.messages, h.grpc.dropped);
    return out;
  }
}
