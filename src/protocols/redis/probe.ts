import type { ProbeResult } from '../types.js';

/** Longest first line looked at: a RESP header line is a type byte and a number, a short reply a few words. */
const PROBE_LINE = 512;

/** Commands a client may send inline (a plain line) as its first: the ones people type in telnet and health checks. */
const INLINE = new Set(['PING', 'GET', 'SET', 'INFO', 'HELLO', 'AUTH', 'SELECT', 'DEL', 'EXISTS', 'KEYS', 'SUBSCRIBE', 'PSUBSCRIBE', 'PUBLISH',
  'MULTI', 'ECHO', 'INCR', 'CLIENT', 'CONFIG', 'COMMAND', 'DBSIZE', 'SCAN', 'MGET', 'MSET', 'HGET', 'HSET', 'LPUSH', 'RPUSH', 'FLUSHALL', 'FLUSHDB', 'TTL', 'EXPIRE']);

/** What a first line says: a client command, a server reply, undecided, or not RESP. */
type Side = 'client' | 'server' | 'either' | 'more' | 'no';

function classify(b: Buffer): Side {
  const nl = b.indexOf(10);
  if (nl < 0) {
    // Undecided only while what came is a line begun: a type byte or a letter, then printable text.
    const head = b.toString('latin1', 0, Math.min(b.length, PROBE_LINE));
    return b.length < PROBE_LINE && /^[-+:$*%~>|_#,=!(A-Za-z][\x20-\x7e]*\r?$/.test(head) ? 'more' : 'no';
  }
  if (nl < 1 || b[nl - 1] !== 13) return inline(b.toString('latin1', 0, nl).trim());
  const line = b.toString('latin1', 0, nl - 1);
  const t = line[0]!, rest = line.slice(1);
  switch (t) {
    case '*': {
      // An array of bulk strings is how every client sends commands; a server's array reply may be that too.
      if (!/^\d{1,7}$/.test(rest) || Number(rest) === 0) return rest === '-1' || rest === '0' ? 'server' : 'no';
      if (b.length <= nl + 1) return 'more';
      // Either side: an array of bulk strings keeps the directions as given.
      return b[nl + 1] === 0x24 ? 'either' : b[nl + 1] !== undefined && '+-:*%_#,~>=!('.includes(String.fromCharCode(b[nl + 1]!)) ? 'server' : 'no';
    }
    case '$': case '=': case '!': return /^(-1|\d{1,10})$/.test(rest) ? 'server' : 'no';
    case ':': return /^-?\d{1,20}$/.test(rest) ? 'server' : 'no';
    case '%': case '~': case '>': case '|': return /^\d{1,7}$/.test(rest) ? 'server' : 'no';
    case '_': return rest === '' ? 'server' : 'no';
    case '#': return rest === 't' || rest === 'f' ? 'server' : 'no';
    case ',': return /^[-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|inf|nan)$/.test(rest) ? 'server' : 'no';
    // Simple strings and errors: printable text ("+OK", "+PONG", "-ERR …", "-WRONGTYPE …", "-NOAUTH …").
    case '+': return /^[\x20-\x7e]{1,200}$/.test(rest) ? 'server' : 'no';
    case '-': return /^[A-Z]{2,}[\x20-\x7e]*$/.test(rest) ? 'server' : 'no';
    default: return inline(line.trim());
  }
}

function inline(line: string): Side {
  const word = line.split(/[ \t]+/)[0] ?? '';
  // "GET / HTTP/1.1" is HTTP's (http1 probes first; this keeps the answer right on its own).
  return INLINE.has(word.toUpperCase()) && /^[\x20-\x7e]*$/.test(line) && !/HTTP\/\d/.test(line) ? 'client' : 'no';
}

/**
 * Redis (RESP2 and RESP3) by content: a client's command (an array of bulk strings `*N\r\n$`, or
 * an inline command line) or a server's reply (a RESP type byte and a well-formed header line).
 * Which side sent it settles the directions.
 */
export function probeRedis(dir: 0 | 1, b: Buffer): ProbeResult {
  const side = classify(b);
  if (side === 'more' || side === 'no') return side;
  if (side === 'either') return 'match';
  return (side === 'client') === (dir === 0) ? 'match' : 'reverse';
}
