import type { ProbeResult } from '../types.js';

/** Longest server version string believed in a greeting ("10.11.19-MariaDB-0+deb12u1" is 26). */
const MAX_VERSION = 128;

/**
 * MySQL by content: the server speaks first, with Protocol::HandshakeV10 (PAGE_PROTOCOL.html,
 * page_protocol_connection_phase_packets_protocol_handshake_v10): a 3-byte length, sequence id 0,
 * protocol version 10, then a printable server version ending in NUL, then a 4-byte connection id.
 * In the client → server direction the same bytes mean the directions are the other way round.
 * A client's first bytes are never a greeting, so the client direction alone says `no`.
 */
export function probeMysql(dir: 0 | 1, b: Buffer): ProbeResult {
  if (b.length < 5) {
    // Header so far plausible: length small, sequence 0, version 10.
    if (b.length >= 4 && (b[3] !== 0 || b.readUIntLE(0, 3) > 0x10000 || b.readUIntLE(0, 3) < 16)) return 'no';
    return 'more';
  }
  const len = b.readUIntLE(0, 3);
  if (b[3] !== 0 || b[4] !== 10 || len < 16 || len > 0x10000) return 'no';
  const end = Math.min(b.length, 5 + MAX_VERSION + 1, 4 + len);
  let i = 5;
  for (; i < end; i++) {
    const ch = b[i]!;
    if (ch === 0) break;
    if (ch < 0x20 || ch > 0x7e) return 'no';
  }
  if (i === end) return end === b.length && i < 5 + MAX_VERSION ? 'more' : 'no';
  // A version starts with a digit ("8.0.36", "5.5.5-10.11.19-MariaDB").
  if (i === 5 || b[5]! < 0x30 || b[5]! > 0x39) return 'no';
  return dir === 1 ? 'match' : 'reverse';
}
