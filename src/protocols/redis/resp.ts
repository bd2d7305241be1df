/*
 * RESP, the Redis serialization protocol, versions 2 and 3 (redis.io/docs/reference/protocol-spec),
 * read as a push parser: bytes in any split, one value out per top-level message. Every buffer has
 * a named limit; wire input never throws, a malformed byte stops the parser with a reason (the
 * session counts it as a violation). Values are kept as bounded previews: strings up to
 * `keep` bytes, aggregates up to MAX_ITEMS elements, nesting up to MAX_DEPTH.
 */

/** Longest type line ("+OK", "-ERR …", "$5", an inline command) held before its CRLF. */
export const MAX_LINE = 64 * 1024;
/** Deepest nesting of aggregates; real replies nest a few levels (XREAD, COMMAND DOCS). */
export const MAX_DEPTH = 32;
/** Elements kept per aggregate; the rest are read and counted. */
export const MAX_ITEMS = 64;
/** Largest element count or bulk length believed (the server's proto-max-bulk-len is 512 MB). */
export const MAX_LENGTH = 0x7fffffff;

/** RESP type bytes (RESP2: + - : $ *; RESP3 adds the rest). */
export const TYPES: Readonly<Record<string, string>> = {
  '+': 'simple', '-': 'error', ':': 'integer', '$': 'bulk', '*': 'array',
  '_': 'nil', ',': 'double', '#': 'boolean', '!': 'error', '=': 'verbatim', '(': 'bignum',
  '%': 'map', '~': 'set', '>': 'push', '|': 'attribute',
};
const AGGREGATES = new Set(['*', '%', '~', '>', '|']);
const BULKS = new Set(['$', '!', '=']);
/** Per type byte: its name, and whether a length follows (aggregates, bulks), read without building a string. */
const BYTE_TYPE: (string | undefined)[] = Array.from({ length: 256 }, (_, c) => TYPES[String.fromCharCode(c)]);
const BYTE_LENGTHED: boolean[] = Array.from({ length: 256 }, (_, c) => AGGREGATES.has(String.fromCharCode(c)) || BULKS.has(String.fromCharCode(c)));
const BYTE_BULK: boolean[] = Array.from({ length: 256 }, (_, c) => BULKS.has(String.fromCharCode(c)));

/** One RESP value as kept: its type name, a string preview or a number, elements of an aggregate. */
export interface RespValue {
  type: string;
  /** Simple strings, errors, bulk strings (the first `keep` bytes as UTF-8), doubles, big numbers. */
  str?: string;
  /** Integers and booleans (1/0). */
  num?: number;
  /** Elements (maps and attributes: keys and values alternating), up to MAX_ITEMS. */
  items?: RespValue[];
  /** Element count (maps: pairs) or bulk length in bytes. */
  length?: number;
  /** The string or aggregate was longer than what was kept. */
  truncated?: true;
}

/** A whole top-level message: its value, where it began and ended in the stream, and its packets. */
export interface RespMessage {
  value: RespValue;
  /** The client sent an inline command (a plain line, not an array). */
  inline?: true;
  /** Stream offsets of the first byte and just past the last. */
  off: number;
  endOff: number;
  startTime: number;
  endTime: number;
  startFrame: number;
  endFrame: number;
  /** TCP acknowledgement carried by the first byte's packet (-1: none). */
  peerAck: number;
}

interface Frame {
  value: RespValue;
  /** Elements still to read. */
  left: number;
  /** An attribute: its value is dropped, the next value is the real one. */
  attribute: boolean;
}

/** Where the packet being read came from. */
export interface Where {
  time: number;
  frame: number;
  offset: number;
  peerAck: number;
}

/** The value a message starts with until it is read (never handed out). */
const NIL: RespValue = { type: 'nil' };

/** A RESP length ("-1", or up to 10 digits) from bytes b[s, e), or undefined when it is not one. */
function lengthOf(b: Buffer, s: number, e: number): number | undefined {
  let i = s;
  const neg = i < e && b[i] === 0x2d;
  if (neg) i++;
  if (i === e || e - i > 10) return undefined;
  let n = 0;
  for (; i < e; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/** A RESP integer ([+-] digits) from bytes b[s, e), or undefined when it is not one. */
function integerOf(b: Buffer, s: number, e: number): number | undefined {
  let i = s;
  if (i < e && (b[i] === 0x2d || b[i] === 0x2b)) i++;
  if (i === e) return undefined;
  for (let j = i; j < e; j++) if (b[j]! < 0x30 || b[j]! > 0x39) return undefined;
  // Past 15 digits the sum below could round differently from the decimal reading.
  if (e - i <= 15) {
    let n = 0;
    for (let j = i; j < e; j++) n = n * 10 + b[j]! - 0x30;
    return b[s] === 0x2d ? -n : n;
  }
  return Number(b.toString('latin1', s, e));
}

export class RespParser {
  /** Set once input was malformed: the reason; nothing more is read. */
  broken: string | undefined;
  private line: Buffer[] = [];
  private lineLen = 0;
  /** Reading a bulk string's body: bytes still to come (its CRLF included). */
  private bulkLeft = -1;
  private bulkKept: Buffer[] = [];
  private bulkKeptLen = 0;
  private bulkValue: RespValue | undefined;
  /** The kept part of the bulk string being read, when it came whole in one chunk (else in bulkKept). */
  private bulkStr: string | undefined;
  private readonly bulkEnd = [0, 0];
  private stack: Frame[] = [];
  private msg: RespMessage | undefined;
  private pos = 0;

  /**
   * `keep`: bytes of a string kept. `client`: the client direction, where a line that does not
   * start with a type byte is an inline command (RESP "Inline commands").
   */
  constructor(private readonly keep: number, private readonly client: boolean, private readonly out: (m: RespMessage) => void) {}

  /** Between messages (nothing partly read). */
  idle(): boolean {
    return this.msg === undefined && this.lineLen === 0;
  }

  /** Offset where the message being read began, or -1. */
  partialOff(): number {
    return this.msg?.off ?? -1;
  }

  partialAck(): number {
    return this.msg?.peerAck ?? -1;
  }

  push(b: Buffer, at: Where): void {
    let i = 0;
    while (i < b.length && this.broken === undefined) {
      this.pos = at.offset + i;
      if (this.msg === undefined && this.lineLen === 0 && this.bulkLeft < 0) {
        this.msg = { value: NIL, off: this.pos, endOff: -1, startTime: at.time, endTime: at.time, startFrame: at.frame, endFrame: at.frame, peerAck: at.peerAck };
      }
      if (this.bulkLeft >= 0) {
        const n = Math.min(this.bulkLeft, b.length - i);
        const want = Math.min(n, this.keep - this.bulkKeptLen, Math.max(0, this.bulkLeft - 2));
        const L = this.bulkLeft;
        if (want > 0) {
          // The common case, the kept part of the string whole in this chunk: decoded straight
          // from the packet, without collecting pieces.
          if (this.bulkKeptLen === 0 && (want === L - 2 || want === this.keep) && this.bulkValue!.type !== 'verbatim') this.bulkStr = b.toString('utf8', i, i + want);
          else this.bulkKept.push(b.subarray(i, i + want));
          this.bulkKeptLen += want;
        }
        // The body's last two bytes must be CRLF; they may arrive in another chunk than the body.
        if (L - 2 < n && L >= 2) this.bulkEnd[0] = b[i + L - 2]!;
        if (L - 1 < n) this.bulkEnd[1] = b[i + L - 1]!;
        this.bulkLeft -= n;
        i += n;
        if (this.bulkLeft === 0) this.bulkDone(i, at);
        continue;
      }
      const nl = b.indexOf(10, i);
      const end = nl < 0 ? b.length : nl + 1;
      if (this.lineLen + end - i > MAX_LINE) return this.fail(`line longer than ${MAX_LINE} bytes`);
      if (nl >= 0 && this.lineLen === 0) {
        // A whole line in this chunk: read in place.
        const s = i;
        i = end;
        this.onLine(b, s, end, at, i);
        continue;
      }
      this.line.push(b.subarray(i, end));
      this.lineLen += end - i;
      i = end;
      if (nl < 0) break;
      const whole = Buffer.concat(this.line);
      this.line = [];
      this.lineLen = 0;
      this.onLine(whole, 0, whole.length, at, i);
    }
  }

  /** Input was lost (a capture gap): whatever was being read is gone; the caller decides where to resume. */
  reset(): void {
    this.line = [];
    this.lineLen = 0;
    this.bulkLeft = -1;
    this.bulkKept = [];
    this.bulkKeptLen = 0;
    this.bulkValue = undefined;
    this.bulkStr = undefined;
    this.stack = [];
    this.msg = undefined;
    this.broken = undefined;
  }

  private fail(reason: string): void {
    this.broken = reason;
  }

  /** The line `b[s, e)` (its LF included) was read whole; `next` is where the input goes on. */
  private onLine(b: Buffer, s: number, e: number, at: Where, next: number): void {
    // RESP lines end in CRLF; inline commands may end in a bare LF (redis-cli --pipe sends CRLF).
    const cr = e - s >= 2 && b[e - 2] === 13;
    const stop = e - (cr ? 2 : 1);
    const c = s < stop ? b[s]! : -1;
    if (this.stack.length === 0 && this.client && c !== 0x2a /* * */) return this.inline(b.toString('latin1', s, stop), at, next);
    if (!cr) return this.fail('line does not end in CRLF');
    const type = c < 0 ? undefined : BYTE_TYPE[c];
    if (type === undefined) return this.fail(`unknown type byte 0x${b[s]!.toString(16).padStart(2, '0')}`);
    if (BYTE_LENGTHED[c]) {
      const n = lengthOf(b, s + 1, stop);
      if (n === undefined) {
        const rest = b.toString('latin1', s + 1, stop);
        if (rest === '?') return this.fail('streamed aggregates and strings (RESP3 "?" length) are not read');
        return this.fail(`bad length "${rest.slice(0, 20)}"`);
      }
      if (n === -1) return this.value({ type: 'nil' }, at, next); // RESP2 null bulk string and null array
      if (n < 0 || n > MAX_LENGTH) return this.fail(`bad length ${n}`);
      if (BYTE_BULK[c]) {
        this.bulkValue = { type, length: n };
        this.bulkLeft = n + 2;
        return;
      }
      if (this.stack.length >= MAX_DEPTH) return this.fail(`aggregates nested deeper than ${MAX_DEPTH}`);
      const count = c === 0x25 /* % */ || c === 0x7c /* | */ ? n * 2 : n;
      const value: RespValue = { type, length: n, items: [] };
      if (count === 0) return this.value(value, at, next);
      this.stack.push({ value, left: count, attribute: c === 0x7c });
      return;
    }
    const value: RespValue = { type };
    if (c === 0x3a /* : */) {
      const num = integerOf(b, s + 1, stop);
      if (num === undefined) return this.fail(`bad ${type} "${b.toString('latin1', s + 1, Math.min(stop, s + 21))}"`);
      value.num = num;
    } else if (c === 0x23 /* # */) {
      const rest = b.toString('latin1', s + 1, stop);
      const num = rest === 't' ? 1 : rest === 'f' ? 0 : NaN;
      if (!Number.isFinite(num)) return this.fail(`bad ${type} "${rest.slice(0, 20)}"`);
      value.num = num;
    } else if (c === 0x5f /* _ */) {
      if (stop !== s + 1) return this.fail('null with content');
    } else value.str = b.toString('latin1', s + 1, Math.min(stop, s + 1 + this.keep));
    this.value(value, at, next);
  }

  private cut(s: string): string {
    return s.length > this.keep ? s.slice(0, this.keep) : s;
  }

  /** An inline command: the line split into words as the server splits it (splitWords). */
  private inline(text: string, at: Where, next: number): void {
    const words = splitWords(text);
    if (words.length === 0) {
      // An empty line between commands: not a message.
      this.msg = undefined;
      return;
    }
    const items = words.slice(0, MAX_ITEMS).map((w): RespValue => ({ type: 'bulk', str: this.cut(Buffer.from(w, 'latin1').toString('utf8')), length: w.length }));
    const value: RespValue = { type: 'array', length: words.length, items };
    if (words.length > MAX_ITEMS) value.truncated = true;
    this.msg!.inline = true;
    this.value(value, at, next);
  }

  private bulkDone(i: number, at: Where): void {
    const v = this.bulkValue!;
    const kept = this.bulkStr === undefined ? (this.bulkKept.length === 1 ? this.bulkKept[0]! : Buffer.concat(this.bulkKept)) : undefined;
    const keptLen = this.bulkKeptLen;
    v.str = this.bulkStr;
    this.bulkStr = undefined;
    this.bulkKept = [];
    this.bulkKeptLen = 0;
    this.bulkLeft = -1;
    this.bulkValue = undefined;
    if (this.bulkEnd[0] !== 13 || this.bulkEnd[1] !== 10) return this.fail('bulk string does not end in CRLF');
    // A verbatim string starts with its three-letter format and a colon ("txt:").
    if (kept !== undefined) v.str = (v.type === 'verbatim' ? kept.subarray(Math.min(4, kept.length)) : kept).toString('utf8');
    else v.str ??= '';
    if (v.length! > keptLen) v.truncated = true;
    this.value(v, at, i);
  }

  /** A whole value: into the aggregate being read, or out as a message. */
  private value(v: RespValue, at: Where, next: number): void {
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) break;
      const items = top.value.items!;
      if (items.length < MAX_ITEMS) items.push(v);
      else top.value.truncated = true;
      top.left--;
      if (top.left > 0) return;
      this.stack.pop();
      if (top.attribute) return; // RESP3 attributes describe the next value: dropped, the value follows.
      v = top.value;
    }
    const m = this.msg!;
    this.msg = undefined;
    m.value = v;
    m.endOff = at.offset + next;
    m.endTime = at.time;
    m.endFrame = at.frame;
    this.out(m);
  }
}

/**
 * Words of an inline command as Redis's sdssplitargs reads them: blanks separate; "double quotes"
 * take \\n \\r \\t \\b \\a \\xHH and \\ escapes; 'single quotes' take only \\'. An unbalanced
 * quote makes the server refuse the line; here the rest is one word.
 */
export function splitWords(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  const ESC: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };
  while (i < n) {
    while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= n) break;
    let w = '';
    const q = line[i] === '"' || line[i] === "'" ? line[i++] : '';
    while (i < n) {
      const c = line[i]!;
      if (!q && (c === ' ' || c === '\t')) break;
      if (q && c === q) {
        i++;
        break;
      }
      if (q === '"' && c === '\\' && i + 1 < n) {
        const e = line[i + 1]!;
        if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          w += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else {
          w += ESC[e] ?? e;
          i += 2;
        }
        continue;
      }
      if (q === "'" && c === '\\' && line[i + 1] === "'") {
        w += "'";
        i += 2;
        continue;
      }
      w += c;
      i++;
    }
    out.push(w);
  }
  return out;
}

/** A value as text for a preview: strings as they are, numbers as digits, aggregates as JSON-ish lists. */
export function preview(v: RespValue, limit: number): string {
  const s = text(v, limit);
  return s.length > limit ? `${s.slice(0, limit)}…` : s;
}

function text(v: RespValue, limit: number): string {
  if (v.str !== undefined) return v.str + (v.truncated ? '…' : '');
  if (v.num !== undefined) return String(v.num);
  if (v.items) {
    let out = '[';
    for (const it of v.items) {
      if (out.length > limit) break;
      out += (out.length > 1 ? ', ' : '') + (it.items ? text(it, limit) : JSON.stringify(text(it, limit)));
    }
    return out + (v.truncated ? ', …]' : ']');
  }
  return v.type === 'nil' ? '(nil)' : '';
}
