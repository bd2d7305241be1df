import type { Dir } from '../../stream/index.js';
import type { ProbeResult } from '../types.js';
import { CONTENT, HANDSHAKE, TLS_LIMITS } from './wire.js';

/** Bytes the probe reads: the record header (5), the handshake header (4) and legacy_version (2). */
const PROBE_BYTES = 11;

/**
 * TLS by content, not port: a handshake record (content type 22, RFC 8446 §5.1) whose legacy
 * record version is 0x0301–0x0304 and whose length a record may have, starting a ClientHello
 * (handshake type 1) with a plausible length and a 3.x legacy_version (RFC 8446 §4.1.2). The
 * ClientHello says which end is the client: sent by the server's side of the stream, it reverses.
 * Anything else — a ServerHello first (the ClientHello was not captured), a TLS record mid-stream —
 * is not matched: without the ClientHello there is no record to build, and coverage still names
 * such a connection "tls" (recognize.ts).
 */
export function probeTls(dir: Dir, b: Buffer): ProbeResult {
  if (b.length === 0) return 'more';
  if (b[0] !== CONTENT.handshake) return 'no';
  if (b.length >= 2 && b[1] !== 3) return 'no';
  if (b.length >= 3 && (b[2]! < 1 || b[2]! > 4)) return 'no';
  if (b.length >= 5) {
    const len = b.readUInt16BE(3);
    if (len < 4 || len > TLS_LIMITS.maxRecord) return 'no';
  }
  if (b.length >= 6 && b[5] !== HANDSHAKE.client_hello) return 'no';
  if (b.length >= 9) {
    const hl = b.readUIntBE(6, 3);
    // legacy_version, random (32), session id length, cipher suites length (2), one suite, compression (2)
    if (hl < 2 + 32 + 1 + 2 + 2 + 2 || hl > TLS_LIMITS.maxHandshake) return 'no';
  }
  if (b.length >= 10 && b[9] !== 3) return 'no';
  if (b.length < PROBE_BYTES) return 'more';
  return dir === 0 ? 'match' : 'reverse';
}
