import { createHash } from 'node:crypto';
import type { ClientHello } from './hello.js';
import { EXT, isGrease } from './wire.js';

/**
 * The JA4 fingerprint of a ClientHello, after FoxIO's JA4 specification (technical_details/JA4.md
 * in FoxIO-LLC/ja4): `a_b_c` where
 *   a = "t" (TLS over TCP) + version + "d"|"i" (SNI present or not) + 2-digit cipher count +
 *       2-digit extension count + the first and last character of the first ALPN value ("00": none);
 *   b = the first 12 hex digits of SHA-256 over the cipher suites as 4-digit hex, sorted, comma-joined;
 *   c = the same over the extension types sorted (without SNI 0x0000 and ALPN 0x0010), then "_"
 *       and the signature algorithms in the order sent (no "_" when there are none).
 * GREASE values (RFC 8701) are left out everywhere, counts included. Counts stop at 99; an empty
 * list hashes to twelve zeros.
 */
export function ja4(ch: ClientHello): string {
  const ciphers = ch.ciphers.filter((c) => !isGrease(c));
  const exts = ch.extensions.filter((e) => !isGrease(e));
  const versions = ch.versions?.filter((v) => !isGrease(v)) ?? [];
  const version = versions.length ? Math.max(...versions) : ch.legacyVersion;
  const a = `t${versionCode(version)}${exts.includes(EXT.server_name) ? 'd' : 'i'}${count(ciphers.length)}${count(exts.length)}${alpnCode(ch.firstAlpn)}`;
  const b = hash12(ciphers.map(hex).sort().join(','));
  const sorted = exts.filter((e) => e !== EXT.server_name && e !== EXT.alpn).map(hex).sort().join(',');
  const sigs = (ch.signatureAlgorithms ?? []).filter((s) => !isGrease(s)).map(hex).join(',');
  const c = sorted === '' ? '000000000000' : hash12(sigs ? `${sorted}_${sigs}` : sorted);
  return `${a}_${b}_${c}`;
}

/** The spec's two-character version: 13, 12, 11, 10, s3, s2, else 00. */
function versionCode(v: number): string {
  switch (v) {
    case 0x0304: return '13';
    case 0x0303: return '12';
    case 0x0302: return '11';
    case 0x0301: return '10';
    case 0x0300: return 's3';
    case 0x0002: return 's2';
    default: return '00';
  }
}

function count(n: number): string {
  return String(Math.min(n, 99)).padStart(2, '0');
}

const ALNUM = /^[0-9A-Za-z]$/;

/**
 * First and last character of the first ALPN value; "00" when there is none. When either is not
 * alphanumeric, the first and last hex digit of the value's bytes stand in (the spec's rule for
 * binary ALPN values).
 */
function alpnCode(v: Buffer | undefined): string {
  if (!v || v.length === 0) return '00';
  const f = String.fromCharCode(v[0]!), l = String.fromCharCode(v[v.length - 1]!);
  if (ALNUM.test(f) && ALNUM.test(l)) return f + l;
  const h = v.toString('hex');
  return h[0]! + h[h.length - 1]!;
}

function hex(v: number): string {
  return v.toString(16).padStart(4, '0');
}

function hash12(s: string): string {
  return s === '' ? '000000000000' : createHash('sha256').update(s).digest('hex').slice(0, 12);
}
