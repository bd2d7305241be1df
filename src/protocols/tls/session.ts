import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import { parseClientHello, parseServerHello } from './hello.js';
import { ja4 } from './ja4.js';
import type { HelloAt, TlsConnection, TlsExchange } from './types.js';
import { CONTENT, HANDSHAKE, TLS_LIMITS, alertName } from './wire.js';

/** Why a connection's record is incomplete, as stable codes (docs/flow-record.md, "TLS"). */
export const TLS_INCOMPLETE = {
  /** No ServerHello was seen: the server never answered, refused with an alert, or the capture lost it. */
  noServerHello: 'no-server-hello',
  /** The ClientHello did not parse (also counted as a violation). */
  badClientHello: 'malformed-client-hello',
  /** Bytes were lost before the handshake ended: what came after them was not read. */
  gapInHandshake: 'gap-in-handshake',
  /** Bytes were lost after the handshake: the byte counts are lower bounds. */
  gapInData: 'gap-in-data',
  /** A direction stopped being a run of TLS records (also counted as a violation): counts stop there. */
  notTls: 'not-tls-records',
} as const;

interface Mark {
  time: number;
  frame: number;
}

/** One direction's record reader: a 5-byte header, then `left` payload bytes of record `type`. */
interface Side {
  hdr: Buffer;
  hdrLen: number;
  type: number;
  left: number;
  /** Payload length of the current record. */
  len: number;
  /** Count this record's payload as application data. */
  count: boolean;
  /** Nothing more is read (a gap, or bytes that are no TLS record). */
  lost: boolean;
  /** After this direction's ChangeCipherSpec (TLS ≤ 1.2): its handshake records are encrypted. */
  encrypted: boolean;
  /** Handshake messages are no longer assembled in this direction. */
  hsOff: boolean;
  /** Handshake bytes being assembled into messages (bounded by maxHandshake + 4). */
  pend: Buffer;
  pendStart: Mark;
  /** An alert's two bytes, collected across segments. */
  alert: number[];
}

const side = (): Side => ({
  hdr: Buffer.alloc(5), hdrLen: 0, type: 0, left: 0, len: 0, count: false, lost: false, encrypted: false, hsOff: false,
  pend: Buffer.alloc(0), pendStart: { time: 0, frame: 0 }, alert: [],
});

/**
 * One TLS connection on the wire (RFC 8446 TLS 1.3, RFC 5246 TLS 1.2), without decryption. Each
 * direction is read as a run of records (RFC 8446 §5.1: a 5-byte header of type, legacy version
 * and length, then the payload). Handshake records in clear are joined into handshake messages,
 * which may span records and segments (RFC 8446 §5.1 allows both); the ClientHello and the
 * ServerHello (after a HelloRetryRequest, the second) are parsed, and nothing else of the
 * handshake is held. Record payloads are never copied except the few handshake bytes being
 * assembled.
 *
 * The handshake ends with the client's Finished, the first record it sends encrypted: in TLS 1.3
 * its first application_data record after the ServerHello (RFC 8446 §2: the client's flight is
 * encrypted under handshake keys), in TLS 1.2 its first handshake record after its
 * ChangeCipherSpec (RFC 5246 §7.4.9). From then on, application_data payload bytes are counted
 * each way, in arrival order: in TLS 1.3 this includes the server's NewSessionTicket messages,
 * which are encrypted like data and cannot be told apart.
 *
 * Resumption: in TLS 1.3 the ServerHello carries pre_shared_key (RFC 8446 §4.2.11). In TLS 1.2
 * the server echoes the client's non-empty session id (RFC 5246 §7.4.1.3), or — a session
 * ticket (RFC 5077 §3.1), whose client may send an empty id — answers its ServerHello with
 * ChangeCipherSpec and no Certificate. A Certificate, ServerKeyExchange, CertificateRequest or
 * ServerHelloDone after the ServerHello is a full handshake.
 *
 * One exchange per connection, emitted at its end. A PostgreSQL connection that upgrades to TLS
 * after an SSLRequest stays the postgres analyzer's (it stops reading there); its TLS handshake is
 * not recorded here.
 */
export class TlsSession implements ProtocolSession {
  private readonly sides: [Side, Side] = [side(), side()];
  private readonly conn: TlsConnection = { helloRetry: false, bytes: { toServer: 0, toClient: 0 }, last: 0 };
  private badClientHello = false;
  private incomplete: string | undefined;
  private ended = false;

  constructor(private readonly ctx: SessionContext) {}

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.ended) return;
    if (meta.time > this.conn.last) this.conn.last = meta.time;
    const s = this.sides[dir];
    let p = 0;
    while (p < bytes.length && !s.lost) {
      if (s.hdrLen < 5) {
        const n = Math.min(5 - s.hdrLen, bytes.length - p);
        bytes.copy(s.hdr, s.hdrLen, p, p + n);
        s.hdrLen += n;
        p += n;
        if (s.hdrLen === 5) {
          this.header(dir, s, meta, meta.offset + p - 5);
          if (s.left === 0 && !s.lost) this.recordEnd(dir, s);
        }
        continue;
      }
      const n = Math.min(s.left, bytes.length - p);
      this.body(dir, s, bytes.subarray(p, p + n), meta, meta.offset + p);
      s.left -= n;
      p += n;
      if (s.left === 0) this.recordEnd(dir, s);
    }
  }

  gap(dir: Dir, _length: number, _meta: StreamMeta): void {
    const s = this.sides[dir];
    if (this.ended || s.lost) return;
    // Record boundaries are lost with the bytes: this direction is not read again.
    s.lost = true;
    this.incomplete ??= this.conn.handshakeEnd === undefined ? TLS_INCOMPLETE.gapInHandshake : TLS_INCOMPLETE.gapInData;
  }

  fin(_dir: Dir, time: number): void {
    if (time > this.conn.last) this.conn.last = time;
  }

  end(time: number, _reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.conn.clientHello && !this.conn.serverHello && !this.badClientHello) return;
    if (this.conn.last === 0) this.conn.last = time;
    const tx: TlsExchange = { protocol: 'tls', tls: this.conn };
    if (this.badClientHello) tx.incomplete = TLS_INCOMPLETE.badClientHello;
    else if (!this.conn.serverHello) tx.incomplete = TLS_INCOMPLETE.noServerHello;
    else if (this.incomplete) tx.incomplete = this.incomplete;
    this.ctx.emit(tx);
  }

  /** The negotiated version is TLS 1.3 (supported_versions in the ServerHello, RFC 8446 §4.2.1). */
  private tls13(): boolean {
    return this.conn.serverHello?.selectedVersion === 0x0304;
  }

  /** A record header is complete: check it, and act on what its type says about the handshake. */
  private header(dir: Dir, s: Side, meta: StreamMeta, offset: number): void {
    const h = s.hdr;
    const type = h[0]!, len = h.readUInt16BE(3);
    if (type < CONTENT.change_cipher_spec || type > CONTENT.heartbeat || h[1] !== 3 || h[2]! > 4 || len > TLS_LIMITS.maxRecord) {
      s.lost = true;
      this.incomplete ??= TLS_INCOMPLETE.notTls;
      this.ctx.violation('tls.bad_record', `${dir === 0 ? 'client' : 'server'} record header ${h.toString('hex')} is not a TLS record (type 20–24, version 3.x, length ≤ ${TLS_LIMITS.maxRecord})`, offset);
      return;
    }
    s.type = type;
    s.len = s.left = len;
    s.count = false;
    s.alert = [];
    const sh = this.conn.serverHello;
    switch (type) {
      case CONTENT.change_cipher_spec:
        // TLS 1.3 sends it only for middlebox compatibility (RFC 8446 §D.4), also before a second
        // ClientHello: it changes nothing there.
        if (!sh || this.tls13()) break;
        s.encrypted = true;
        if (dir === 1 && this.conn.resumed === undefined) this.conn.resumed = true;
        break;
      case CONTENT.handshake:
        if (dir === 0 && s.encrypted && this.conn.handshakeEnd === undefined) this.conn.handshakeEnd = meta.time;
        break;
      case CONTENT.application_data:
        if (dir === 0 && sh && this.conn.handshakeEnd === undefined && this.tls13()) this.conn.handshakeEnd = meta.time;
        else if (this.conn.handshakeEnd !== undefined) s.count = true;
        break;
      default:
        break;
    }
  }

  private body(dir: Dir, s: Side, b: Buffer, meta: StreamMeta, offset: number): void {
    if (s.count) {
      if (dir === 0) this.conn.bytes.toServer += b.length;
      else this.conn.bytes.toClient += b.length;
      return;
    }
    if (s.encrypted) return;
    if (s.type === CONTENT.handshake && !s.hsOff) this.handshakeBytes(dir, s, b, meta, offset);
    else if (s.type === CONTENT.alert && s.len === 2) for (const x of b) s.alert.push(x);
  }

  private recordEnd(dir: Dir, s: Side): void {
    s.hdrLen = 0;
    if (s.type === CONTENT.alert && s.alert.length === 2 && !this.conn.alert) {
      const level = s.alert[0] === 1 ? 'warning' : s.alert[0] === 2 ? 'fatal' : 'unknown';
      this.conn.alert = { level, description: alertName(s.alert[1]!), by: dir === 0 ? 'client' : 'server' };
    }
  }

  /** Handshake bytes in clear: joined into messages (RFC 8446 §4: type, 24-bit length, body). */
  private handshakeBytes(dir: Dir, s: Side, b: Buffer, meta: StreamMeta, offset: number): void {
    if (s.pend.length === 0) s.pendStart = { time: meta.time, frame: meta.frame };
    s.pend = s.pend.length === 0 ? Buffer.from(b) : Buffer.concat([s.pend, b]);
    while (!s.hsOff && s.pend.length >= 1) {
      const type = s.pend[0]!;
      // A TLS 1.2 server after its ServerHello: the next message's type says full or resumed.
      if (dir === 1 && this.conn.serverHello) {
        this.afterServerHello(type);
        s.hsOff = true;
        break;
      }
      if (s.pend.length < 4) break;
      const len = s.pend.readUIntBE(1, 3);
      if (len > TLS_LIMITS.maxHandshake) {
        s.hsOff = true;
        this.ctx.violation('tls.handshake_too_long', `${dir === 0 ? 'client' : 'server'} handshake message type ${type} is ${len} bytes, more than ${TLS_LIMITS.maxHandshake}`, offset);
        break;
      }
      if (s.pend.length < 4 + len) break;
      const at: HelloAt = { start: s.pendStart.time, end: meta.time, frames: [s.pendStart.frame, meta.frame], size: 4 + len };
      this.message(dir, s, type, s.pend.subarray(4, 4 + len), at, offset);
      s.pend = s.pend.subarray(4 + len);
      s.pendStart = { time: meta.time, frame: meta.frame };
    }
    if (s.hsOff) s.pend = Buffer.alloc(0);
  }

  private message(dir: Dir, s: Side, type: number, body: Buffer, at: HelloAt, offset: number): void {
    if (dir === 0) {
      if (type !== HANDSHAKE.client_hello) return;
      // After the first ClientHello nothing of the client's handshake is needed (a second one,
      // after a HelloRetryRequest, only changes its key share).
      s.hsOff = true;
      const r = parseClientHello(body);
      if ('error' in r) {
        this.badClientHello = true;
        this.ctx.violation('tls.bad_client_hello', `ClientHello: ${r.error}`, offset);
        return;
      }
      this.conn.clientHello = { ...r.ok, at, ja4: ja4(r.ok) };
      if (r.ok.sni !== undefined) this.ctx.options.onServerName?.(this.ctx.conn, r.ok.sni);
      return;
    }
    if (type !== HANDSHAKE.server_hello) return;
    const r = parseServerHello(body);
    if ('error' in r) {
      s.hsOff = true;
      this.ctx.violation('tls.bad_server_hello', `ServerHello: ${r.error}`, offset);
      return;
    }
    if (r.ok.helloRetry) {
      // RFC 8446 §4.1.4: a second ClientHello and then the real ServerHello follow.
      this.conn.helloRetry = true;
      return;
    }
    this.conn.serverHello = { ...r.ok, at };
    if (this.tls13()) {
      this.conn.resumed = r.ok.psk;
      s.hsOff = true;
    } else {
      const sid = this.conn.clientHello?.sessionId;
      if (sid && sid.length > 0 && sid.equals(r.ok.sessionId)) {
        this.conn.resumed = true;
        s.hsOff = true;
      }
    }
  }

  /** The TLS ≤ 1.2 server's message after its ServerHello (RFC 5246 §7.3 figures 1 and 2; RFC 5077 §3.1). */
  private afterServerHello(type: number): void {
    if (this.conn.resumed !== undefined) return;
    switch (type) {
      case HANDSHAKE.certificate: case HANDSHAKE.server_key_exchange: case HANDSHAKE.certificate_request: case HANDSHAKE.server_hello_done:
        this.conn.resumed = false;
        break;
      default:
        // NewSessionTicket: a resumption by ticket sends it before ChangeCipherSpec; header() decides then.
        break;
    }
  }
}
