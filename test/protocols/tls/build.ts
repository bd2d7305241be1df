/**
 * Byte builders for TLS test input (RFC 8446 §4 and §5.1 layouts): records, handshake messages,
 * ClientHello and ServerHello with their extensions. Tests build wire bytes from these, never from
 * pasted hex.
 */
import type { CloseReason, ConnectionInfo, Dir, StreamMeta } from '../../../src/stream/index.js';
import type { Exchange, SessionContext } from '../../../src/protocols/types.js';
import { TlsSession } from '../../../src/protocols/tls/session.js';
import type { TlsExchange } from '../../../src/protocols/tls/types.js';

export const u8 = (...v: number[]): Buffer => Buffer.from(v);
export const u16 = (...v: number[]): Buffer => {
  const b = Buffer.alloc(v.length * 2);
  v.forEach((x, i) => b.writeUInt16BE(x, i * 2));
  return b;
};
/** A vector with a 1- or 2-byte length prefix. */
export const vec = (lenBytes: 1 | 2, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  return Buffer.concat([lenBytes === 1 ? u8(body.length) : u16(body.length), body]);
};
export const ext = (type: number, data: Buffer): Buffer => Buffer.concat([u16(type), vec(2, data)]);

export const record = (type: number, payload: Buffer, version = 0x0303): Buffer => Buffer.concat([u8(type), u16(version, payload.length), payload]);
export const handshake = (type: number, body: Buffer): Buffer => {
  const h = Buffer.alloc(4);
  h[0] = type;
  h.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([h, body]);
};

export const sni = (host: string): Buffer => ext(0, vec(2, u8(0), vec(2, Buffer.from(host))));
export const alpn = (...names: string[]): Buffer => ext(16, vec(2, ...names.map((n) => vec(1, Buffer.from(n)))));
export const versions = (...v: number[]): Buffer => ext(43, vec(1, u16(...v)));
/** supported_versions in a ServerHello: the one selected_version, no list (RFC 8446 §4.2.1). */
export const selected = (v: number): Buffer => ext(43, u16(v));
export const sigAlgs = (...v: number[]): Buffer => ext(13, vec(2, u16(...v)));
export const empty = (type: number): Buffer => ext(type, Buffer.alloc(0));

export interface ClientHelloSpec {
  legacyVersion?: number;
  sessionId?: Buffer;
  ciphers: number[];
  /** Extensions already encoded, in order. */
  extensions?: Buffer[];
  /** Leave the extensions block out altogether (old TLS). */
  noExtensions?: boolean;
}

export function clientHelloBody(s: ClientHelloSpec): Buffer {
  const parts = [u16(s.legacyVersion ?? 0x0303), Buffer.alloc(32, 7), vec(1, s.sessionId ?? Buffer.alloc(0)), vec(2, u16(...s.ciphers)), vec(1, u8(0))];
  if (!s.noExtensions) parts.push(vec(2, ...(s.extensions ?? [])));
  return Buffer.concat(parts);
}

export const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

export interface ServerHelloSpec {
  sessionId?: Buffer;
  cipher: number;
  extensions?: Buffer[];
  random?: Buffer;
}

export function serverHelloBody(s: ServerHelloSpec): Buffer {
  return Buffer.concat([u16(0x0303), s.random ?? Buffer.alloc(32, 9), vec(1, s.sessionId ?? Buffer.alloc(0)), u16(s.cipher), u8(0), vec(2, ...(s.extensions ?? []))]);
}

export const CH = (s: ClientHelloSpec): Buffer => record(22, handshake(1, clientHelloBody(s)), 0x0301);
export const SH = (s: ServerHelloSpec): Buffer => record(22, handshake(2, serverHelloBody(s)));
export const CCS = record(20, u8(1));
export const appData = (n: number): Buffer => record(23, Buffer.alloc(n, 0xee));

/** One step of a conversation: who sends which bytes, at what capture time. */
export interface Step {
  dir: Dir;
  bytes: Buffer;
  time: number;
}

export interface Result {
  exchanges: TlsExchange[];
  violations: { code: string; reason: string; offset?: number }[];
}

const CONN: ConnectionInfo = {
  id: 'c0ffee000001', client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 443 }, family: 4,
  startTime: 0, firstFrame: 1, handshakeSeen: true, midStream: false,
};

/**
 * Feeds steps to a TlsSession, each step's bytes cut at `cuts(step)` (stream offsets within the
 * step), and ends the connection. Gaps are steps with `gap` lengths.
 */
export function runSession(steps: (Step | { dir: Dir; gap: number; time: number })[], cuts: (i: number, len: number) => number[] = () => [], end: CloseReason = 'fin'): Result {
  const exchanges: TlsExchange[] = [];
  const violations: Result['violations'] = [];
  const ctx: SessionContext = {
    conn: CONN, options: { bodyLimit: 0 },
    emit: <T extends Exchange>(tx: T) => { exchanges.push(tx as unknown as TlsExchange); },
    violation: (code, reason, offset) => { violations.push({ code, reason, offset }); },
    handover: () => undefined,
    carried: () => undefined,
  };
  const s = new TlsSession(ctx);
  const offset: [number, number] = [0, 0];
  let frame = 0;
  let last = 0;
  steps.forEach((st, i) => {
    last = st.time;
    const meta = (): StreamMeta => ({ time: st.time, frame: ++frame, offset: offset[st.dir], peerAck: -1 });
    if ('gap' in st) {
      s.gap(st.dir, st.gap, meta());
      offset[st.dir] += st.gap;
      return;
    }
    const at = [0, ...cuts(i, st.bytes.length).filter((c) => c > 0 && c < st.bytes.length).sort((a, b) => a - b), st.bytes.length];
    for (let k = 0; k + 1 < at.length; k++) {
      const piece = st.bytes.subarray(at[k], at[k + 1]);
      if (piece.length === 0) continue;
      s.data(st.dir, piece, meta());
      offset[st.dir] += piece.length;
    }
  });
  s.end(last, end);
  return { exchanges, violations };
}
