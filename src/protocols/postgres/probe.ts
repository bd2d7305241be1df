import type { ProbeResult } from '../types.js';
import { BACKEND, FRONTEND, MAX_STARTUP, STARTUP } from './messages.js';

const FRONT = new Set<number>(Object.values(FRONTEND));
const BACK = new Set<number>(Object.values(BACKEND));
const CODES = new Set<number>(Object.values(STARTUP));
/** Typed messages mid-connection are believed only when this many tile the segment exactly. */
const MIN_RUN = 2;

/** Length of the run of plausible typed messages from the start of `b`, and whether it ends exactly. */
function run(b: Buffer, types: Set<number>): { messages: number; exact: boolean } {
  let p = 0;
  let messages = 0;
  while (p < b.length) {
    if (b.length - p < 5) return { messages, exact: false };
    const len = b.readInt32BE(p + 1);
    if (!types.has(b[p]!) || len < 4 || len > 64 * 1024 * 1024) return { messages, exact: false };
    if (p + 1 + len > b.length) return { messages, exact: false };
    p += 1 + len;
    messages++;
  }
  return { messages, exact: true };
}

/**
 * PostgreSQL by content: a StartupMessage, SSLRequest, GSSENCRequest or CancelRequest from the
 * client (untyped: length then a known request code), or, caught mid-connection, a run of typed
 * messages that tiles the segment. A MySQL greeting on port 5432 matches neither.
 */
export function probePostgres(dir: 0 | 1, b: Buffer): ProbeResult {
  if (b.length >= 8) {
    const len = b.readInt32BE(0);
    const code = b.readInt32BE(4);
    if (len >= 8 && len <= MAX_STARTUP && CODES.has(code)) {
      if (code === STARTUP.PROTOCOL_3_0 && b.length < len) return b.length < MAX_STARTUP ? 'more' : 'no';
      return dir === 0 ? 'match' : 'reverse';
    }
  } else if (b.length >= 4) {
    const len = b.readInt32BE(0);
    if (len >= 8 && len <= MAX_STARTUP) return 'more';
  }
  const f = run(b, FRONT);
  const k = run(b, BACK);
  // A backend run that ends in ReadyForQuery is the strongest mid-connection sign.
  if (k.exact && k.messages >= MIN_RUN) return dir === 1 ? 'match' : 'reverse';
  if (f.exact && f.messages >= MIN_RUN) return dir === 0 ? 'match' : 'reverse';
  return 'no';
}
