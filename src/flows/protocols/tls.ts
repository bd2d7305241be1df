import type { ConnectionInfo } from '../../stream/index.js';
import type { Exchange, TlsExchange } from '../../protocols/index.js';
import { tlsNames } from '../../protocols/index.js';
import type { TlsFlow, TlsRecordRequest, TlsRecordResponse } from '../record.js';
import type { RecordModule } from './module.js';
import { markIncomplete, round3, type PartBuilder } from './part.js';

const hex = (v: number): string => v.toString(16).padStart(4, '0');

/** A TLS connection: the ClientHello as the request half, the ServerHello as the response half. Field order is the contract's. */
function build(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): TlsFlow {
  const t = (tx as TlsExchange).tls;
  const ch = t.clientHello, sh = t.serverHello;
  const start = ch?.at.start ?? sh?.at.start ?? t.last;
  const end = Math.max(t.last, start);
  const r: TlsFlow = {
    id: `${conn.id}-${n}`, protocol: 'tls', connectionId: conn.id,
    src: conn.client, dst: conn.server,
    start, end, durationMs: round3((end - start) * 1000),
  };
  if (ch) {
    const q = { start: ch.at.start, end: ch.at.end } as TlsRecordRequest;
    if (b.opts.frames) q.frames = ch.at.frames;
    q.size = ch.at.size;
    q.legacyVersion = tlsNames.versionName(ch.legacyVersion);
    if (ch.versions) q.versions = ch.versions.filter((v) => !tlsNames.isGrease(v)).map(tlsNames.versionName);
    if (ch.sni !== undefined) q.sni = ch.sni;
    if (ch.alpn) q.alpn = ch.alpn;
    q.ciphers = ch.ciphers.map(hex);
    q.extensions = ch.extensions;
    if (ch.signatureAlgorithms) q.signatureAlgorithms = ch.signatureAlgorithms.map(hex);
    q.sessionIdLength = ch.sessionIdLength;
    if (ch.psk) q.psk = true;
    if (ch.earlyData) q.earlyData = true;
    if (ch.ticket) q.ticket = true;
    q.ja4 = ch.ja4;
    r.request = q;
  }
  if (sh) {
    const s = { start: sh.at.start, end: sh.at.end } as TlsRecordResponse;
    if (b.opts.frames) s.frames = sh.at.frames;
    s.size = sh.at.size;
    s.version = tlsNames.versionName(sh.selectedVersion ?? sh.legacyVersion);
    s.cipher = tlsNames.cipherName(sh.cipher);
    if (sh.alpn !== undefined) s.alpn = sh.alpn;
    if (t.resumed !== undefined) s.resumed = t.resumed;
    if (t.helloRetry) s.helloRetry = true;
    r.response = s;
  }
  if (t.handshakeEnd !== undefined && ch) r.handshakeMs = round3((t.handshakeEnd - ch.at.start) * 1000);
  if (sh) r.bytes = { toServer: t.bytes.toServer, toClient: t.bytes.toClient };
  if (t.alert) r.alert = t.alert;
  markIncomplete(r, tx.incomplete);
  return r;
}

/** The server a TLS client asked for: SNI, else the address. */
const target = (r: TlsFlow, server: string): string => r.request?.sni ?? server;

/**
 * TLS (handshake only, RFC 8446 / RFC 5246): a "call" is a connection's handshake. It has no
 * operation or call key of its own (identical handshakes are not redundant calls); it fails when
 * the server never answered the ClientHello or a fatal alert ended the handshake.
 */
export const tls: RecordModule<TlsFlow> = {
  protocol: 'tls',
  title: 'TLS',
  column: 'tls',
  halves: 'handshake',
  pathParams: false,
  build,
  operation: () => undefined,
  callKey: () => undefined,
  answer: (r) => [r.response?.version, r.response?.cipher, r.response?.alpn, r.alert?.description],
  callName: (r, server) => `TLS handshake with ${target(r, server)}`,
  operationName: (op, server) => `TLS ${op} with ${server}`,
  failed: (r) => !r.response || r.alert?.level === 'fatal',
  problem(r, dst) {
    if (r.alert?.level === 'fatal') return { key: `tls ${dst} ${r.alert.description}`, label: `TLS alert ${r.alert.description} from the ${r.alert.by}`, clientError: r.alert.by === 'server' };
    return undefined;
  },
  routine: () => undefined,
  repeatDetail: () => '',
  outcome(r) {
    if (r.alert?.level === 'fatal') return { label: `alert ${r.alert.description}`, error: true };
    return { label: r.response ? (r.response.resumed ? 'resumed' : 'ok') : 'no-server-hello', error: false };
  },
  rowCall: (r) => `TLS ${r.request?.sni ?? '(no SNI)'}${r.request?.alpn ? ` [${r.request.alpn.join(',')}]` : ''}`,
  rowStatus(r) {
    const s = r.response;
    if (r.alert?.level === 'fatal') return `alert ${r.alert.description}`;
    return s ? `${s.version} ${s.cipher}${s.alpn ? ` ${s.alpn}` : ''}${s.resumed ? ' resumed' : ''}` : undefined;
  },
  table(r) {
    const s = r.response;
    const notes: string[] = [];
    if (s?.resumed) notes.push('resumed');
    if (s?.helloRetry) notes.push('hello-retry');
    if (r.handshakeMs !== undefined) notes.push(`handshake ${r.handshakeMs} ms`);
    if (r.bytes) notes.push(`${r.bytes.toServer}↑ ${r.bytes.toClient}↓ bytes`);
    if (r.alert) notes.push(`alert ${r.alert.description} (${r.alert.by})`);
    return {
      method: 'TLS',
      status: s ? s.version.replace('TLS ', '') : '-',
      what: `${r.request?.sni ?? ''}${s?.alpn ? ` ${s.alpn}` : ''}`,
      notes,
      tail: [],
    };
  },
  filterVariables: {
    tls_sni: (r) => r.request?.sni ?? '',
    tls_ja4: (r) => r.request?.ja4 ?? '',
  },
};
