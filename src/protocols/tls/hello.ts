import { EXT, HRR_RANDOM, TLS_LIMITS, isGrease } from './wire.js';

/**
 * ClientHello and ServerHello bodies, parsed by small pure functions over a bounded view of
 * exactly one handshake message (the 4-byte handshake header already removed). Every read is
 * checked against the end of its own vector, so a length that lies cannot read past it; a
 * malformed hello is a result with a reason and the offset in the message, never a throw.
 *
 *   ClientHello (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 is the same layout):
 *   +---------------+-----------+--------------------+-----------------------+
 *   | legacy_version| random 32 | session_id <0..32> | cipher_suites <2..>   |
 *   +---------------+-----------+--------------------+-----------------------+
 *   | compression_methods <1..> | extensions <0..2^16-1> (absent in old TLS) |
 *   +---------------------------+--------------------------------------------+
 *   ServerHello (RFC 8446 §4.1.3; RFC 5246 §7.4.1.3): legacy_version, random, session_id echo,
 *   one cipher_suite, one compression_method, extensions.
 */

export interface ClientHello {
  /** legacy_version (RFC 8446 §4.1.2: 0x0303 for TLS 1.3 too). */
  legacyVersion: number;
  sessionIdLength: number;
  /** The session id's bytes, kept to see whether a TLS 1.2 server echoes it (a resumption). */
  sessionId: Buffer;
  /** Cipher suites in offered order, GREASE included (the fingerprint drops them). */
  ciphers: number[];
  /** Extension types in the order sent, GREASE included. */
  extensions: number[];
  /** supported_versions (RFC 8446 §4.2.1), in offered order; absent when the extension is. */
  versions?: number[];
  /** server_name's host_name (RFC 6066 §3). */
  sni?: string;
  /** ALPN protocol names offered, in preference order (RFC 7301 §3.1). */
  alpn?: string[];
  /** The first ALPN name's bytes as sent (the fingerprint reads them, not the escaped name). */
  firstAlpn?: Buffer;
  /** signature_algorithms (RFC 8446 §4.2.3), in offered order. */
  signatureAlgorithms?: number[];
  /** A pre_shared_key extension (RFC 8446 §4.2.11): the client offers to resume (TLS 1.3). */
  psk: boolean;
  /** early_data (RFC 8446 §4.2.10): the client sends 0-RTT data. */
  earlyData: boolean;
  /** A non-empty session_ticket extension (RFC 5077 §3.2): the client offers to resume (TLS 1.2). */
  ticket: boolean;
}

export interface ServerHello {
  legacyVersion: number;
  /** supported_versions' selected_version (RFC 8446 §4.2.1): the version, when present. */
  selectedVersion?: number;
  sessionId: Buffer;
  cipher: number;
  extensions: number[];
  /** ALPN: the one protocol the server chose (RFC 7301 §3.1). */
  alpn?: string;
  /** pre_shared_key in the ServerHello: the server accepted a PSK, the session resumed (RFC 8446 §4.2.11). */
  psk: boolean;
  /** The random is the HelloRetryRequest value (RFC 8446 §4.1.3). */
  helloRetry: boolean;
}

export type Parsed<T> = { ok: T } | { error: string; offset: number };

class Malformed extends Error {
  constructor(readonly reason: string, readonly offset: number) {
    super(reason);
  }
}

/** A cursor over [pos, end) of one buffer; every read is bounded by `end`. */
class Cursor {
  constructor(private readonly b: Buffer, public pos: number, public readonly end: number) {}

  need(n: number, what: string): void {
    if (this.end - this.pos < n) throw new Malformed(`${what}: needs ${n} bytes, ${this.end - this.pos} left`, this.pos);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** A vector with a 1- or 2-byte length: a cursor over exactly its body. */
  vec(lenBytes: 1 | 2, what: string): Cursor {
    const n = lenBytes === 1 ? this.u8(what) : this.u16(what);
    this.need(n, what);
    const c = new Cursor(this.b, this.pos, this.pos + n);
    this.pos += n;
    return c;
  }
  get left(): number {
    return this.end - this.pos;
  }
}

/** A list of 16-bit values filling a vector (cipher suites, versions, signature algorithms); bounded. */
function u16List(c: Cursor, what: string): number[] {
  if (c.left % 2 !== 0) throw new Malformed(`${what}: odd length ${c.left}`, c.pos);
  const out: number[] = [];
  while (c.left > 0) {
    const v = c.u16(what);
    if (out.length < TLS_LIMITS.maxList) out.push(v);
  }
  return out;
}

/** Printable ASCII as is, anything else as \xNN, cut at maxName bytes: a name from the wire is shown, never trusted. */
function name(b: Buffer): string {
  let s = '';
  for (const x of b.subarray(0, TLS_LIMITS.maxName)) s += x >= 0x20 && x < 0x7f && x !== 0x5c ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`;
  return s;
}

/** ProtocolNameList (RFC 7301 §3.1): opaque ProtocolName<1..2^8-1>, in a <2..2^16-1> vector. */
function alpnList(c: Cursor, first?: (b: Buffer) => void): string[] {
  const l = c.vec(2, 'ALPN list');
  const out: string[] = [];
  while (l.left > 0) {
    const p = l.vec(1, 'ALPN protocol name');
    if (p.left === 0) throw new Malformed('ALPN protocol name is empty', p.pos);
    const v = p.bytes(p.left, 'ALPN protocol name');
    if (out.length === 0) first?.(Buffer.from(v.subarray(0, TLS_LIMITS.maxName)));
    if (out.length < TLS_LIMITS.maxList) out.push(name(v));
  }
  return out;
}

/** ServerNameList (RFC 6066 §3): the first host_name (type 0). */
function serverName(c: Cursor): string | undefined {
  const l = c.vec(2, 'server_name list');
  while (l.left > 0) {
    const type = l.u8('server_name type');
    const n = l.vec(2, 'server_name');
    if (type === 0) return name(n.bytes(n.left, 'host_name'));
  }
  return undefined;
}

function tryParse<T>(f: () => T): Parsed<T> {
  try {
    return { ok: f() };
  } catch (e) {
    if (e instanceof Malformed) return { error: e.reason, offset: e.offset };
    return { error: e instanceof Error ? e.message : String(e), offset: 0 };
  }
}

/** A ClientHello's body (after the 4-byte handshake header). */
export function parseClientHello(body: Buffer): Parsed<ClientHello> {
  return tryParse(() => {
    const c = new Cursor(body, 0, body.length);
    const legacyVersion = c.u16('legacy_version');
    c.bytes(32, 'random');
    const sid = c.vec(1, 'legacy_session_id');
    if (sid.left > 32) throw new Malformed(`legacy_session_id is ${sid.left} bytes, at most 32`, sid.pos - 1);
    const sessionId = Buffer.from(sid.bytes(sid.left, 'legacy_session_id'));
    const cs = c.vec(2, 'cipher_suites');
    if (cs.left < 2) throw new Malformed('cipher_suites is empty', cs.pos);
    const ciphers = u16List(cs, 'cipher_suites');
    const cm = c.vec(1, 'legacy_compression_methods');
    if (cm.left < 1) throw new Malformed('legacy_compression_methods is empty', cm.pos);
    const ch: ClientHello = { legacyVersion, sessionIdLength: sessionId.length, sessionId, ciphers, extensions: [], psk: false, earlyData: false, ticket: false };
    // RFC 5246 §7.4.1.2: extensions may be absent altogether (the message ends after compression).
    if (c.left === 0) return ch;
    const exts = c.vec(2, 'extensions');
    if (c.left !== 0) throw new Malformed(`${c.left} bytes after the extensions`, c.pos);
    while (exts.left > 0) {
      const type = exts.u16('extension type');
      const data = exts.vec(2, 'extension data');
      if (ch.extensions.length < TLS_LIMITS.maxList) ch.extensions.push(type);
      switch (type) {
        case EXT.server_name: if (data.left > 0) ch.sni = serverName(data); break;
        case EXT.alpn: ch.alpn = alpnList(data, (b) => { ch.firstAlpn = b; }); break;
        case EXT.supported_versions: ch.versions = u16List(data.vec(1, 'supported_versions'), 'supported_versions'); break;
        case EXT.signature_algorithms: ch.signatureAlgorithms = u16List(data.vec(2, 'signature_algorithms'), 'signature_algorithms'); break;
        case EXT.pre_shared_key: ch.psk = true; break;
        case EXT.early_data: ch.earlyData = true; break;
        case EXT.session_ticket: ch.ticket = data.left > 0; break;
        default: break;
      }
    }
    return ch;
  });
}

/** A ServerHello's body (or a HelloRetryRequest's, which has the same layout). */
export function parseServerHello(body: Buffer): Parsed<ServerHello> {
  return tryParse(() => {
    const c = new Cursor(body, 0, body.length);
    const legacyVersion = c.u16('legacy_version');
    const random = c.bytes(32, 'random');
    const sid = c.vec(1, 'legacy_session_id_echo');
    if (sid.left > 32) throw new Malformed(`legacy_session_id_echo is ${sid.left} bytes, at most 32`, sid.pos - 1);
    const sessionId = Buffer.from(sid.bytes(sid.left, 'legacy_session_id_echo'));
    const cipher = c.u16('cipher_suite');
    c.u8('legacy_compression_method');
    const sh: ServerHello = { legacyVersion, sessionId, cipher, extensions: [], psk: false, helloRetry: random.equals(HRR_RANDOM) };
    if (c.left === 0) return sh;
    const exts = c.vec(2, 'extensions');
    if (c.left !== 0) throw new Malformed(`${c.left} bytes after the extensions`, c.pos);
    while (exts.left > 0) {
      const type = exts.u16('extension type');
      const data = exts.vec(2, 'extension data');
      if (sh.extensions.length < TLS_LIMITS.maxList) sh.extensions.push(type);
      switch (type) {
        case EXT.supported_versions: {
          const v = data.u16('selected_version');
          if (!isGrease(v)) sh.selectedVersion = v;
          break;
        }
        case EXT.alpn: {
          const l = alpnList(data);
          // RFC 7301 §3.1: the server's list holds exactly one name.
          if (l.length !== 1) throw new Malformed(`ALPN in a ServerHello names ${l.length} protocols, not 1`, data.pos);
          sh.alpn = l[0];
          break;
        }
        case EXT.pre_shared_key: sh.psk = true; break;
        default: break;
      }
    }
    return sh;
  });
}
