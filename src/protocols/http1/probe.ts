import type { ProbeResult } from '../types.js';
import { DEFAULT_HTTP1_LIMITS } from './limits.js';

/*
 * Content detection for HTTP/1.x (RFC 9112 §3 request-line, §4 status-line):
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   status-line  = HTTP-version SP status-code SP [ reason-phrase ] CRLF
 *
 * A line is accepted only when every byte fits; a prefix that still fits asks for more bytes.
 */

/** tchar (RFC 9110 §5.6.2), as a lookup table. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = 1;
for (let c = 97; c <= 122; c++) TCHAR[c] = 1;

const MAX_METHOD = 32;
/** Longest start line considered before giving up (http-parser-js allows 80 KiB of headers). */
const MAX_START_LINE = DEFAULT_HTTP1_LIMITS.maxStartLine;
const SP = 0x20, CR = 0x0d, LF = 0x0a;
const VERSION = Buffer.from('HTTP/1.');

/** "HTTP/1." and a digit at `i`: the position after it, 0 for a prefix that may become one, -1 for no. */
function versionAt(b: Buffer, i: number): number {
  const n = b.length;
  for (let k = 0; k < VERSION.length; k++, i++) {
    if (i >= n) return 0;
    if (b[i] !== VERSION[k]) return -1;
  }
  if (i >= n) return 0;
  if (b[i]! < 48 || b[i]! > 57) return -1;
  return i + 1;
}

/** 1: a full request line at `pos`; 0: a prefix that may become one; -1: not one. */
export function requestLineAt(b: Buffer, pos: number): 1 | 0 | -1 {
  const n = b.length;
  let i = pos;
  // Method: uppercase-led token. Lower-case methods exist in theory; in practice they are noise.
  if (i >= n) return 0;
  const c0 = b[i]!;
  if (c0 < 65 || c0 > 90) return -1;
  while (i < n && TCHAR[b[i]!] && i - pos <= MAX_METHOD) i++;
  if (i - pos > MAX_METHOD) return -1;
  if (i >= n) return 0;
  if (b[i] !== SP) return -1;
  i++;
  const targetStart = i;
  while (i < n && b[i]! > SP && b[i]! < 0x7f) i++;
  if (i >= n) return i - pos < MAX_START_LINE ? 0 : -1;
  if (i === targetStart || b[i] !== SP) return -1;
  i++;
  const v = versionAt(b, i);
  if (v <= 0) return v === 0 ? 0 : -1;
  i = v;
  if (i >= n) return 0;
  if (b[i] === CR) i++;
  if (i >= n) return 0;
  return b[i] === LF ? 1 : -1;
}

/** 1: a status line at `pos` (through the status code); 0: a prefix; -1: not one. */
export function statusLineAt(b: Buffer, pos: number): 1 | 0 | -1 {
  const n = b.length;
  const v = versionAt(b, pos);
  if (v <= 0) return v === 0 ? 0 : -1;
  let i = v;
  if (i >= n) return 0;
  if (b[i] !== SP) return -1;
  i++;
  for (let k = 0; k < 3; k++, i++) {
    if (i >= n) return 0;
    if (b[i]! < 48 || b[i]! > 57) return -1;
  }
  if (i >= n) return 0;
  return b[i] === SP || b[i] === CR || b[i] === LF ? 1 : -1;
}

function skipEmptyLines(b: Buffer): number {
  let i = 0;
  // RFC 9112 §2.2: at least one empty line before a request-line should be ignored.
  while (i < b.length && i < 8 && (b[i] === CR || b[i] === LF)) i++;
  return i;
}

/** The ProtocolAnalyzer probe: `dir` 0 is what reassembly took for client → server. */
export function probeHttp1(dir: 0 | 1, b: Buffer): ProbeResult {
  const p = skipEmptyLines(b);
  const req = requestLineAt(b, p);
  if (req === 1) return dir === 0 ? 'match' : 'reverse';
  const st = statusLineAt(b, p);
  if (st === 1) return dir === 1 ? 'match' : 'reverse';
  if ((req === 0 || st === 0) && b.length < MAX_START_LINE) return 'more';
  return 'no';
}

/**
 * Finds the first position in `b` where a request line (kind "request") or status line starts at
 * a line start. Used to regain sync after a gap or a malformed message. Returns -1 if none.
 */
export function findMessageStart(b: Buffer, kind: 'request' | 'response'): number {
  let from = 0;
  for (;;) {
    const v = b.indexOf(VERSION, from);
    if (v < 0) return -1;
    from = v + 1;
    if (kind === 'response') {
      if ((v === 0 || b[v - 1] === LF) && statusLineAt(b, v) === 1) return v;
      continue;
    }
    // Walk back to the start of the line that holds " HTTP/1." and check it from there.
    let s = v - 1;
    while (s >= 0 && b[s] !== LF && v - s < MAX_START_LINE) s--;
    if (requestLineAt(b, s + 1) === 1) return s + 1;
  }
}
