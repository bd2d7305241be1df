/*
 * PostgreSQL frontend/backend protocol 3.0 (PostgreSQL docs, "Message Formats").
 *
 *   startup (frontend, untyped)      every other message
 *   +----------+------------------+  +------+----------+-----------------+
 *   | Int32 len| Int32 code, body |  | Byte1| Int32 len| body (len - 4)  |
 *   +----------+------------------+  +------+----------+-----------------+
 *
 * `len` counts itself, not the type byte. Every message is parsed from a view bounded by its
 * declared length: a field that would run past it is a violation, never a read past the end.
 */

const c = (s: string) => s.charCodeAt(0);

/** Frontend (client → server) message types. */
export const FRONTEND = {
  Bind: c('B'), Close: c('C'), CopyData: c('d'), CopyDone: c('c'), CopyFail: c('f'), Describe: c('D'),
  Execute: c('E'), Flush: c('H'), FunctionCall: c('F'), Parse: c('P'), Password: c('p'), Query: c('Q'),
  Sync: c('S'), Terminate: c('X'),
} as const;

/** Backend (server → client) message types. */
export const BACKEND = {
  Authentication: c('R'), BackendKeyData: c('K'), BindComplete: c('2'), CloseComplete: c('3'),
  CommandComplete: c('C'), CopyData: c('d'), CopyDone: c('c'), CopyInResponse: c('G'), CopyOutResponse: c('H'),
  CopyBothResponse: c('W'), DataRow: c('D'), EmptyQueryResponse: c('I'), ErrorResponse: c('E'),
  FunctionCallResponse: c('V'), NegotiateProtocolVersion: c('v'), NoData: c('n'), NoticeResponse: c('N'),
  NotificationResponse: c('A'), ParameterDescription: c('t'), ParameterStatus: c('S'), ParseComplete: c('1'),
  PortalSuspended: c('s'), ReadyForQuery: c('Z'), RowDescription: c('T'),
} as const;

const FRONTEND_TYPES = new Set<number>(Object.values(FRONTEND));
const BACKEND_TYPES = new Set<number>(Object.values(BACKEND));

/** Request codes of untyped startup-phase messages. */
export const STARTUP = {
  PROTOCOL_3_0: 196_608,
  CANCEL: 80_877_102,
  SSL: 80_877_103,
  GSSENC: 80_877_104,
} as const;

/** Larger messages are taken for a bad length (the server's own limit is 1 GB; no real query is). */
export const MAX_MESSAGE = 256 * 1024 * 1024;
/** Startup-phase messages are small: parameters only. */
export const MAX_STARTUP = 10_000;

/** A protocol field ran past its message's declared length. */
export class TruncatedMessage extends Error {}

/** Reads fields from exactly one message body. */
export class View {
  p = 0;
  constructor(readonly b: Buffer) {}

  get left(): number {
    return this.b.length - this.p;
  }

  u8(): number {
    if (this.p + 1 > this.b.length) throw new TruncatedMessage('byte');
    return this.b[this.p++]!;
  }

  i16(): number {
    if (this.p + 2 > this.b.length) throw new TruncatedMessage('int16');
    const v = this.b.readInt16BE(this.p);
    this.p += 2;
    return v;
  }

  i32(): number {
    if (this.p + 4 > this.b.length) throw new TruncatedMessage('int32');
    const v = this.b.readInt32BE(this.p);
    this.p += 4;
    return v;
  }

  /** A NUL-terminated string (protocol strings are in the client encoding; UTF-8 in practice). */
  cstr(): string {
    const end = this.b.indexOf(0, this.p);
    if (end < 0) throw new TruncatedMessage('string without its terminating NUL');
    const s = this.b.toString('utf8', this.p, end);
    this.p = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.p + n > this.b.length) throw new TruncatedMessage(`${n} bytes`);
    const v = this.b.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
}

export interface Message {
  /** Type byte; 0 for an untyped startup-phase message. */
  type: number;
  /** The body, a view bounded by the declared length (copy before keeping it). */
  body: Buffer;
  /** Stream offset of the message's first byte. */
  offset: number;
}

/**
 * Splits one direction into messages. Only a partial message is held. Starts in the untyped
 * startup phase for the frontend; `typed()` switches after the StartupMessage. A length that
 * cannot be right stops the reader (`broken`); the session resynchronises it.
 */
export class MessageReader {
  /**
   * The partial message so far, as copied pieces: joined only once the whole message is here, since
   * joining on every segment copies a large message once per segment (a 10 MB DataRow in 1460-byte
   * segments would copy 35 GB).
   */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes the partial message needs before it can be read (its header, then its declared length). */
  private need = 0;
  /** Stream offset of the held partial message's first byte (-1: none held). */
  pendingOff = -1;
  private startup: boolean;
  /** Set when the next byte is a one-byte answer (to SSLRequest / GSSENCRequest), not a message. */
  expectAnswerByte = false;
  broken: string | undefined;
  /** The violation code for `broken`: pg.message_too_large past MAX_MESSAGE, else pg.bad_message. */
  brokenCode: 'pg.bad_message' | 'pg.message_too_large' = 'pg.bad_message';

  constructor(
    private readonly frontend: boolean,
    startupPhase: boolean,
    private readonly onMessage: (m: Message) => void,
    private readonly onAnswerByte: (byte: number, offset: number) => void = () => {},
  ) {
    this.startup = startupPhase;
  }

  typed(): void {
    this.startup = false;
  }

  get inStartup(): boolean {
    return this.startup;
  }

  push(bytes: Buffer, offset: number): void {
    if (this.broken) return;
    let b = bytes;
    let base = offset;
    if (this.pendingLen > 0) {
      if (this.pendingLen + bytes.length < this.need) {
        this.pending.push(Buffer.from(bytes));
        this.pendingLen += bytes.length;
        return;
      }
      b = Buffer.concat([...this.pending, bytes]);
      base -= this.pendingLen;
      this.resume();
    }
    let p = 0;
    while (p < b.length && !this.broken) {
      if (this.expectAnswerByte) {
        this.expectAnswerByte = false;
        this.onAnswerByte(b[p]!, base + p);
        p++;
        continue;
      }
      if (this.startup) {
        if (b.length - p < 4) break;
        const len = b.readInt32BE(p);
        if (len < 8 || len > MAX_STARTUP) {
          this.broken = `startup message length ${len} is impossible`;
          break;
        }
        if (b.length - p < len) break;
        this.onMessage({ type: 0, body: b.subarray(p + 4, p + len), offset: base + p });
        p += len;
        continue;
      }
      if (b.length - p < 5) break;
      const type = b[p]!;
      const len = b.readInt32BE(p + 1);
      if (!(this.frontend ? FRONTEND_TYPES : BACKEND_TYPES).has(type)) {
        this.broken = `unknown ${this.frontend ? 'frontend' : 'backend'} message type 0x${type.toString(16)}`;
        break;
      }
      if (len < 4 || len > MAX_MESSAGE) {
        this.broken = `message '${String.fromCharCode(type)}' declares length ${len}${len > MAX_MESSAGE ? `, over the ${MAX_MESSAGE} bytes a message may hold` : ''}`;
        this.brokenCode = len > MAX_MESSAGE ? 'pg.message_too_large' : 'pg.bad_message';
        break;
      }
      if (b.length - p < 1 + len) break;
      this.onMessage({ type, body: b.subarray(p + 5, p + 1 + len), offset: base + p });
      p += 1 + len;
    }
    if (p < b.length && !this.broken) {
      const rest = Buffer.from(b.subarray(p));
      this.pending = [rest];
      this.pendingLen = rest.length;
      this.pendingOff = base + p;
      // What is known of the message's length so far: its header, then all of it.
      if (this.expectAnswerByte) this.need = 1;
      else if (this.startup) this.need = rest.length < 4 ? 4 : rest.readInt32BE(0);
      else this.need = rest.length < 5 ? 5 : 1 + rest.readInt32BE(1);
    }
  }

  /** Drops any partial message and starts reading at a known message boundary. */
  resume(): void {
    this.pending = [];
    this.pendingLen = 0;
    this.need = 0;
    this.pendingOff = -1;
    this.broken = undefined;
    this.brokenCode = 'pg.bad_message';
  }
}

/**
 * Where a backend stream can be picked up again after a gap or garbage: the next ReadyForQuery
 * ('Z', length 5, status I/T/E), the one message every exchange ends with. -1 if none.
 */
export function findReadyForQuery(b: Buffer, from = 0): number {
  for (let p = b.indexOf(BACKEND.ReadyForQuery, from); p >= 0 && p + 6 <= b.length; p = b.indexOf(BACKEND.ReadyForQuery, p + 1)) {
    if (b.readInt32BE(p + 1) === 5 && (b[p + 5] === 0x49 || b[p + 5] === 0x54 || b[p + 5] === 0x45)) return p + 6;
  }
  return -1;
}

/** Positions looked at for a message start after a hole, and bytes held while looking (64 KiB). */
export const SCAN_WINDOW = 64 * 1024;

/** Fixed body lengths the protocol gives some messages (protocol-message-formats.html). */
const FIXED_FRONTEND: Record<number, number> = { [FRONTEND.Sync]: 0, [FRONTEND.Flush]: 0, [FRONTEND.Terminate]: 0, [FRONTEND.CopyDone]: 0 };
const FIXED_BACKEND: Record<number, number> = {
  [BACKEND.ParseComplete]: 0, [BACKEND.BindComplete]: 0, [BACKEND.CloseComplete]: 0, [BACKEND.NoData]: 0,
  [BACKEND.PortalSuspended]: 0, [BACKEND.EmptyQueryResponse]: 0, [BACKEND.ReadyForQuery]: 1, [BACKEND.BackendKeyData]: 8,
};

/**
 * What a run of messages from `p` to the end of `b` proved. `at` is where it stopped (the message
 * that broke or ran past `b`) and `wake` the length of `b` from which the verdict can change: a run
 * that broke (neither exact nor partial) never changes, one that ran past the end changes once its
 * last message's header, then all of it, is here, so continuing at `at` with `messages` counted
 * gives what a rescan from `p` would (resync.ts relies on that).
 */
export interface Run {
  messages: number;
  exact: boolean;
  partial: boolean;
  at: number;
  wake: number;
}

/** Per type byte: -1 not a message type, -2 a type of any length, else its fixed body length (runAt's lookups, one per byte). */
function typeTable(types: Set<number>, fixed: Record<number, number>): Int32Array {
  const t = new Int32Array(256).fill(-1);
  for (const ty of types) t[ty] = fixed[ty] ?? -2;
  return t;
}
const FRONTEND_TABLE = typeTable(FRONTEND_TYPES, FIXED_FRONTEND);
const BACKEND_TABLE = typeTable(BACKEND_TYPES, FIXED_BACKEND);

/** runAt's answer, reused: it is asked at every byte while framing is lost, so it allocates nothing. */
const run: Run = { messages: 0, exact: false, partial: false, at: 0, wake: 0 };

function answer(messages: number, exact: boolean, partial: boolean, at: number, wake: number): Run {
  run.messages = messages;
  run.exact = exact;
  run.partial = partial;
  run.at = at;
  run.wake = wake;
  return run;
}

/**
 * Messages a run from `p` holds before it runs past `b` or breaks, and whether it ends exactly at
 * the end. The answer is overwritten by the next call: read it before calling again.
 */
export function runAt(b: Buffer, p: number, frontend: boolean, messages = 0): Run {
  const table = frontend ? FRONTEND_TABLE : BACKEND_TABLE;
  while (p < b.length) {
    const type = b[p]!;
    const f = table[type]!;
    if (b.length - p < 5) return f !== -1 ? answer(messages, false, true, p, p + 5) : answer(messages, false, false, p, Infinity);
    if (f === -1) return answer(messages, false, false, p, Infinity);
    const len = b.readInt32BE(p + 1);
    if (len < 4 || len > MAX_MESSAGE) return answer(messages, false, false, p, Infinity);
    if (f >= 0 && len !== 4 + f) return answer(messages, false, false, p, Infinity);
    if (type === BACKEND.ReadyForQuery && !frontend && p + 5 < b.length && b[p + 5] !== 0x49 && b[p + 5] !== 0x54 && b[p + 5] !== 0x45) return answer(messages, false, false, p, Infinity);
    if (p + 1 + len > b.length) return answer(messages, false, true, p, p + 1 + len);
    p += 1 + len;
    messages++;
  }
  return answer(messages, true, false, p, p + 1);
}

/** Whether a run proves a message start: more messages are needed away from the held bytes' start. */
export function provesStart(r: Run, first: boolean): boolean {
  return (r.exact && r.messages >= (first ? 1 : 2)) || (r.partial && r.messages >= (first ? 2 : 3));
}

/**
 * Where a message provably starts in `b` after framing was lost (a gap, garbage): messages are a
 * type byte and a length that counts itself (protocol-message-formats.html), so a start is a
 * known type with a sane length (the fixed one where the protocol fixes it) from which further
 * messages tile the rest of the segment. At the segment's start one whole message ending exactly
 * at its end is enough (a sender writes whole messages, and segments start where writes do more
 * often than not); elsewhere two, or three when the last runs on into the next segment. -1: none.
 */
export function findMessageStart(b: Buffer, frontend: boolean): number {
  const limit = Math.min(b.length, SCAN_WINDOW);
  for (let p = 0; p < limit; p++) {
    if (provesStart(runAt(b, p, frontend), p === 0)) return p;
  }
  return -1;
}

/** Where a frontend stream can be picked up again: right after the next Sync ('S', length 4). */
export function findSync(b: Buffer, from = 0): number {
  for (let p = b.indexOf(FRONTEND.Sync, from); p >= 0 && p + 5 <= b.length; p = b.indexOf(FRONTEND.Sync, p + 1)) {
    if (b.readInt32BE(p + 1) === 4) return p + 5;
  }
  return -1;
}

// ---- one small pure function per message type ------------------------------------------------

export interface Startup {
  code: number;
  params: Record<string, string>;
}

export function parseStartup(body: Buffer): Startup {
  const v = new View(body);
  const code = v.i32();
  const params: Record<string, string> = {};
  if (code === STARTUP.PROTOCOL_3_0) {
    while (v.left > 1) {
      const k = v.cstr();
      if (k === '') break;
      params[k] = v.cstr();
    }
  } else if (code === STARTUP.CANCEL) {
    params.pid = String(v.i32());
    v.i32(); // the secret key is a credential: read past, never kept
  }
  return { code, params };
}

export interface Parse {
  name: string;
  sql: string;
  paramTypes: number[];
}

export function parseParse(body: Buffer): Parse {
  const v = new View(body);
  const name = v.cstr();
  const sql = v.cstr();
  const n = v.i16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(v.i32() >>> 0);
  return { name, sql, paramTypes };
}

export interface Bind {
  portal: string;
  statement: string;
  /** 0 text, 1 binary, per parameter (expanded from the 0/1/n format-code rule). */
  formats: number[];
  /** Views of the values; null for SQL NULL. */
  values: (Buffer | null)[];
  resultFormats: number[];
}

export function parseBind(body: Buffer): Bind {
  const v = new View(body);
  const portal = v.cstr();
  const statement = v.cstr();
  const nf = v.i16();
  const fcodes: number[] = [];
  for (let i = 0; i < nf; i++) fcodes.push(v.i16());
  const np = v.i16();
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < np; i++) {
    const len = v.i32();
    values.push(len === -1 ? null : v.bytes(len));
  }
  const nr = v.i16();
  const resultFormats: number[] = [];
  for (let i = 0; i < nr; i++) resultFormats.push(v.i16());
  // Zero codes: all text; one code: it applies to all; else one per parameter.
  const formats = values.map((_, i) => (nf === 0 ? 0 : nf === 1 ? fcodes[0]! : fcodes[i] ?? 0));
  return { portal, statement, formats, values, resultFormats };
}

export function parseExecute(body: Buffer): { portal: string; maxRows: number } {
  const v = new View(body);
  return { portal: v.cstr(), maxRows: v.i32() };
}

/** Describe and Close: 'S' statement or 'P' portal, and its name. */
export function parseTarget(body: Buffer): { kind: 'S' | 'P'; name: string } {
  const v = new View(body);
  const k = v.u8();
  return { kind: k === c('S') ? 'S' : 'P', name: v.cstr() };
}

export function parseQuery(body: Buffer): string {
  return new View(body).cstr();
}

/** ErrorResponse / NoticeResponse fields by their one-letter codes (S, V, C, M, D, H, P …). */
export function parseFields(body: Buffer): Record<string, string> {
  const v = new View(body);
  const out: Record<string, string> = {};
  for (;;) {
    const code = v.u8();
    if (code === 0) break;
    out[String.fromCharCode(code)] = v.cstr();
  }
  return out;
}

export interface Column {
  name: string;
  typeOid: number;
  format: number;
}

export function parseRowDescription(body: Buffer): Column[] {
  const v = new View(body);
  const n = v.i16();
  const cols: Column[] = [];
  for (let i = 0; i < n; i++) {
    const name = v.cstr();
    v.i32(); // table oid
    v.i16(); // column number
    const typeOid = v.i32() >>> 0;
    v.i16(); // type size
    v.i32(); // type modifier
    cols.push({ name, typeOid, format: v.i16() });
  }
  return cols;
}

export function parseDataRow(body: Buffer): (Buffer | null)[] {
  const v = new View(body);
  const n = v.i16();
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = v.i32();
    out.push(len === -1 ? null : v.bytes(len));
  }
  return out;
}

export function parseCommandComplete(body: Buffer): string {
  return new View(body).cstr();
}

/** 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block. */
export function parseReadyForQuery(body: Buffer): 'idle' | 'transaction' | 'failed' {
  const s = new View(body).u8();
  return s === c('T') ? 'transaction' : s === c('E') ? 'failed' : 'idle';
}

/**
 * Authentication requests. Only the mechanism is kept: salts, SASL data and (on the frontend
 * side) passwords and proofs are credentials and never leave this function.
 */
export function parseAuthentication(body: Buffer): { code: number; mechanism?: string } {
  const v = new View(body);
  const code = v.i32();
  const names: Record<number, string> = { 0: 'ok', 2: 'kerberos', 3: 'cleartext', 5: 'md5', 7: 'gss', 9: 'sspi' };
  if (code === 10) {
    const mechs: string[] = [];
    while (v.left > 1) {
      const m = v.cstr();
      if (m === '') break;
      mechs.push(m);
    }
    return { code, mechanism: mechs.join(',') };
  }
  return names[code] !== undefined ? { code, mechanism: names[code] } : { code };
}

export function parseParameterStatus(body: Buffer): { name: string; value: string } {
  const v = new View(body);
  return { name: v.cstr(), value: v.cstr() };
}

export function parseBackendKeyData(body: Buffer): { pid: number } {
  return { pid: new View(body).i32() }; // the secret key is a credential: not read
}

export function parseNotification(body: Buffer): { pid: number; channel: string; payload: string } {
  const v = new View(body);
  return { pid: v.i32(), channel: v.cstr(), payload: v.cstr() };
}

export function parseParameterDescription(body: Buffer): number[] {
  const v = new View(body);
  const n = v.i16();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(v.i32() >>> 0);
  return out;
}

/** CopyInResponse / CopyOutResponse / CopyBothResponse: overall format (0 text, 1 binary). */
export function parseCopyResponse(body: Buffer): { format: number; columns: number } {
  const v = new View(body);
  const format = v.u8();
  return { format, columns: v.i16() };
}
