import type { Exchange } from '../types.js';
import type { ClientHello, ServerHello } from './hello.js';

/** Where a hello was on the wire: capture times and frames of its first and last byte, and its size. */
export interface HelloAt {
  start: number;
  end: number;
  frames: [number, number];
  /** Bytes of the handshake message, its 4-byte header included. */
  size: number;
}

/** What the session tells the record module about one TLS connection: emitted once, at its end. */
export interface TlsConnection {
  clientHello?: ClientHello & { at: HelloAt; ja4: string };
  serverHello?: ServerHello & { at: HelloAt };
  /** A HelloRetryRequest came before the ServerHello (RFC 8446 §4.1.4). */
  helloRetry: boolean;
  /**
   * Whether the session was resumed: TLS 1.3 by a pre_shared_key in the ServerHello; TLS 1.2 by
   * an echoed non-empty session id, or (tickets) a ChangeCipherSpec before any Certificate.
   * Undefined while a TLS 1.2 server had not said yet.
   */
  resumed?: boolean;
  /** Capture time of the end of the handshake (the client's Finished), when seen. */
  handshakeEnd?: number;
  /** application_data payload bytes after the handshake, per direction. */
  bytes: { toServer: number; toClient: number };
  /** The first alert sent in clear (before encryption), and by whom. */
  alert?: { level: 'warning' | 'fatal' | 'unknown'; description: string; by: 'client' | 'server' };
  /** Capture time of the last byte seen either way. */
  last: number;
}

export interface TlsExchange extends Exchange {
  protocol: 'tls';
  tls: TlsConnection;
}
