import { httpHalves, PROTOCOL_NAMES, sqlHalves, type FlowRecord, type HttpFlowRecord, type RecordRequest, type RecordResponse, type RedisFlow } from '../../flows/index.js';
import { globToRegExp, pathTemplate } from '../endpoint.js';
import type { ServiceNames } from '../services.js';
import { redisGlob } from './glob.js';
import type { FieldTest, Pick, Selector, StatusTest } from './types.js';

/**
 * Selectors, in the spirit of Tracetest: `http[service="payment-service" path="/payments"]:first`.
 * The string form and the object form ({ protocol, service, path, pick, … }) compile to the same
 * Selector, so they cannot drift apart.
 */

/** The protocols a selector may name: every protocol in the record registry. */
export const PROTOCOLS: readonly string[] = PROTOCOL_NAMES;
const KEYS = ['service', 'client', 'method', 'path', 'status', 'grpcStatus', 'fingerprint', 'query', 'grpcService', 'grpcMethod', 'redis.command', 'redis.key', 'mysql.query'];
/** An HTTP field name (RFC 9110 token) after `header.`. */
const HEADER_KEY = /^header\.[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A selector that does not parse, or a value that does not compile: which key, at which character (1-based). */
export class SelectorError extends Error {
  constructor(message: string, readonly key?: string, readonly column?: number) {
    super(message);
  }
}

/** Parses the string form; errors carry the character position where the selector goes wrong. */
export function parseSelector(text: string): Selector {
  const s = new Scanner(text);
  s.ws();
  const protoAt = s.col;
  const protocol = s.take(/\*|[A-Za-z][A-Za-z0-9]*/y) ?? s.fail(`expected a protocol (${PROTOCOLS.join(', ')}) or *`);
  if (protocol !== '*' && !PROTOCOLS.includes(protocol)) {
    s.fail(`unknown protocol "${protocol}" (expected ${PROTOCOLS.join(', ')} or *)`, protoAt);
  }
  const fields: { key: string; value: string | true; col: number }[] = [];
  s.ws();
  if (s.eat('[')) {
    for (;;) {
      s.ws();
      if (s.eat(']')) break;
      if (s.done) s.fail('missing "]"');
      const keyAt = s.col;
      const key = s.take(/header\.[^\s=!<>\],]+|[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)?/y) ?? s.fail(`expected a key (${KEYS.join(', ')}, header.<name>), found "${s.next}"`);
      if (fields.some((f) => f.key === key)) s.fail(`${key} is given twice`, keyAt);
      try {
        checkKey(key);
      } catch (e) {
        s.fail((e as Error).message, keyAt);
      }
      s.ws();
      const opAt = s.col;
      const op = s.take(/!=|>=|<=|=|>|</y);
      let value: string | true = true;
      let valueAt = keyAt;
      if (!op) {
        if (!key.startsWith('header.')) s.fail(`expected "=" after ${key}`);
      } else {
        if (op !== '=' && key !== 'status' && key !== 'grpcStatus') s.fail(`"${op}" compares only status and grpcStatus; write ${key}="…"`, opAt);
        s.ws();
        valueAt = s.col;
        const v = s.quoted() ?? s.take(/[^\s,\]]+/y) ?? s.fail(`expected a value for ${key}`);
        value = op === '=' ? v : op + v;
      }
      fields.push({ key, value, col: valueAt });
      s.ws();
      s.eat(',');
    }
  }
  let pick: Pick | undefined;
  if (s.eat(':')) {
    const pickAt = s.col;
    const p = s.take(/[A-Za-z]+(\([^)]*\))?/y) ?? s.fail('expected first, last or nth(n) after ":"');
    try {
      pick = parsePick(p);
    } catch (e) {
      s.fail((e as Error).message, pickAt);
    }
  }
  s.ws();
  if (!s.done) s.fail(`unexpected "${s.next}"${fields.length === 0 && s.next !== '[' ? '' : ' after the selector'}`);
  const tests = fields.map((f) => {
    try {
      return fieldTest(f.key, f.value);
    } catch (e) {
      throw new SelectorError((e as Error).message, f.key, f.col);
    }
  });
  return { text: text.trim(), ...(protocol !== '*' ? { protocol } : {}), tests, ...(pick ? { pick } : {}) };
}

/** The object form, already checked against the schema for its keys and value types. */
export function selectorFromObject(o: Record<string, unknown>): Selector {
  const tests: FieldTest[] = [];
  const parts: string[] = [];
  for (const [key, v] of Object.entries(o)) {
    if (key === 'protocol' || key === 'pick') continue;
    try {
      checkKey(key);
      tests.push(fieldTest(key, v === true ? true : String(v)));
    } catch (e) {
      throw new SelectorError((e as Error).message, key);
    }
    parts.push(v === true ? key : `${key}=${JSON.stringify(String(v))}`);
  }
  let pick: Pick | undefined;
  if (o.pick !== undefined) {
    try {
      pick = parsePick(String(o.pick));
    } catch (e) {
      throw new SelectorError((e as Error).message, 'pick');
    }
  }
  const protocol = o.protocol === undefined || o.protocol === '*' ? undefined : String(o.protocol);
  const text = `${protocol ?? '*'}${parts.length ? `[${parts.join(' ')}]` : ''}${o.pick !== undefined ? `:${String(o.pick)}` : ''}`;
  return { text, ...(protocol ? { protocol } : {}), tests, ...(pick ? { pick } : {}) };
}

/**
 * Does the flow match? Undefined when it cannot be told: the record lacks the half a test reads
 * (a response whose request was never seen, tested on its path), so a check can say inconclusive
 * instead of judging on missing evidence.
 */
export function matches(sel: Selector, r: FlowRecord, names: ServiceNames): boolean | undefined {
  if (sel.protocol !== undefined && r.protocol !== sel.protocol) return false;
  let unknown = false;
  for (const t of sel.tests) {
    const v = t.test(r, names);
    if (v === false) return false;
    if (v === undefined) unknown = true;
  }
  return unknown ? undefined : true;
}

/** The matching flows in time order, after :first/:last/:nth; and the flows that might match. */
export function selectFlows(sel: Selector, flows: readonly FlowRecord[], names: ServiceNames): { flows: FlowRecord[]; unknown: FlowRecord[] } {
  const hit: FlowRecord[] = [];
  const unknown: FlowRecord[] = [];
  for (const r of flows) {
    const m = matches(sel, r, names);
    if (m) hit.push(r);
    else if (m === undefined) unknown.push(r);
  }
  hit.sort((a, b) => a.start - b.start);
  const p = sel.pick;
  if (!p) return { flows: hit, unknown };
  const one = p.kind === 'first' ? hit[0] : p.kind === 'last' ? hit[hit.length - 1] : hit[p.n - 1];
  return { flows: one ? [one] : [], unknown };
}

/** `503`, `5xx`, `>=500`, `!=200` (also `>`, `<`, `<=`, `=`). */
export function statusTest(text: string): StatusTest {
  const t = text.trim();
  const cls = /^([1-5])xx$/i.exec(t);
  if (cls) return { text: t, test: (s) => Math.floor(s / 100) === Number(cls[1]) };
  const cmp = /^(>=|<=|!=|>|<|=)?\s*(\d+)$/.exec(t);
  if (!cmp) throw new Error(`"${text}" is not a status test: write 503, 5xx, >=500 or !=200`);
  const n = Number(cmp[2]);
  const op = cmp[1] ?? '=';
  const test = { '=': (s: number) => s === n, '!=': (s: number) => s !== n, '>=': (s: number) => s >= n, '<=': (s: number) => s <= n, '>': (s: number) => s > n, '<': (s: number) => s < n }[op]!;
  return { text: op === '=' ? String(n) : `${op}${n}`, test };
}

function checkKey(key: string): void {
  if (KEYS.includes(key) || HEADER_KEY.test(key)) return;
  if (key.startsWith('header.')) throw new Error(`"${key.slice(7)}" is not an HTTP header name`);
  throw new Error(`unknown key "${key}" (keys: ${KEYS.join(', ')}, header.<name>)`);
}

function parsePick(p: string): Pick {
  if (p === 'first' || p === 'last') return { kind: p };
  const nth = /^nth\(\s*(\d+)\s*\)$/.exec(p);
  if (!nth) throw new Error(`unknown pick "${p}" (expected first, last or nth(n))`);
  const n = Number(nth[1]);
  if (n < 1) throw new Error('nth(n) counts from 1');
  return { kind: 'nth', n };
}

/** A test on an HTTP-like request: false for other protocols, unknown when the request was not seen. */
const onHttpRequest = (f: (q: RecordRequest, r: HttpFlowRecord) => boolean | undefined) => (r: FlowRecord) =>
  (httpHalves(r) ? (r.request ? f(r.request, r) : undefined) : false);
const onHttpResponse = (f: (s: RecordResponse) => boolean | undefined) => (r: FlowRecord) =>
  (httpHalves(r) ? (r.response ? f(r.response) : undefined) : false);
/**
 * What the selectors read of a SQL request, whichever database sent it: the statement, its
 * fingerprint, and what carried it (PostgreSQL's message, MySQL's command).
 */
interface SqlRequest { query?: string; fingerprint?: string; message?: string; command?: string }
const onSqlRequest = (f: (q: SqlRequest) => boolean) => (r: FlowRecord) =>
  (sqlHalves(r) ? (r.request ? f(r.request) : undefined) : false);
/**
 * A test on a Redis command: false for other protocols and for pub/sub pushes (they have no
 * command), unknown for a reply whose command was not seen.
 */
const onRedisRequest = (f: (q: NonNullable<RedisFlow['request']>) => boolean) => (r: FlowRecord) =>
  (r.protocol !== 'redis' ? false : r.request ? f(r.request) : r.response?.type === 'push' ? false : undefined);

/** Compiles one key=value; throws a plain Error whose message names what is wrong with the value. */
function fieldTest(key: string, value: string | true): FieldTest {
  if (key.startsWith('header.')) {
    const name = key.slice(7).toLowerCase();
    return {
      key, test: onHttpRequest((q, r) => {
        const v = q.headers[name];
        // A header block HPACK could not decode may hold the field: not knowing is not absence.
        if (v === undefined) return 'headersPartial' in r && r.headersPartial ? undefined : false;
        return value === true || v === value;
      }),
    };
  }
  if (value === true || value === '') throw new Error(`${key} needs a value`);
  switch (key) {
    case 'service': return { key, value, test: (r, names) => names.matches(r.dst, value) };
    case 'client': return { key, value, test: (r, names) => names.matches(r.src, value) };
    case 'method': {
      const m = value.toUpperCase();
      const http = onHttpRequest((q) => q.method.toUpperCase() === m);
      // PostgreSQL's message (Query, Execute), MySQL's command (COM_QUERY, COM_STMT_EXECUTE).
      const sql = onSqlRequest((q) => (q.message ?? q.command ?? '').toUpperCase() === m);
      return { key, test: (r) => (sqlHalves(r) ? sql(r) : http(r)) };
    }
    case 'path': {
      const test = pathMatcher(value);
      return { key, test: onHttpRequest((q) => test(q.path)) };
    }
    case 'status': {
      const st = statusTest(value);
      return { key, test: onHttpResponse((s) => (s.status === undefined ? undefined : st.test(s.status))) };
    }
    case 'grpcStatus': {
      const st = statusTest(value);
      const test = onHttpResponse((s) => (s.grpcStatus === undefined ? undefined : st.test(s.grpcStatus)));
      return { key, test: (r) => r.protocol === 'grpc' && test(r) };
    }
    case 'fingerprint': {
      // Fingerprints are lower-case with whitespace folded; so is the glob, and only `*` is special
      // (`?` is the fingerprint's literal placeholder).
      const re = new RegExp(`^${value.trim().replace(/\s+/g, ' ').split('*').map(escapeRe).join('.*')}$`, 'is');
      return { key, test: onSqlRequest((q) => q.fingerprint !== undefined && re.test(q.fingerprint)) };
    }
    case 'query': return { key, test: onSqlRequest(queryTest(value)) };
    case 'mysql.query': {
      const test = onSqlRequest(queryTest(value));
      return { key, test: (r) => r.protocol === 'mysql' && test(r) };
    }
    case 'redis.command': {
      // Redis command names are case-insensitive; records carry them upper-case.
      const re = redisGlob(value, { ignoreCase: true });
      return { key, test: onRedisRequest((q) => re.test(q.command)) };
    }
    case 'redis.key': {
      // Keys are case-sensitive, as Redis compares them.
      const re = redisGlob(value);
      return { key, test: onRedisRequest((q) => q.key !== undefined && re.test(q.key)) };
    }
    // r.grpc comes from the request's path: without the request it is not known.
    case 'grpcService': return { key, test: (r) => r.protocol === 'grpc' && (r.grpc ? r.grpc.service === value : r.request ? false : undefined) };
    case 'grpcMethod': return { key, test: (r) => r.protocol === 'grpc' && (r.grpc ? r.grpc.method === value : r.request ? false : undefined) };
  }
  throw new Error(`unknown key "${key}"`);
}

/** `query`: the text occurs in the SQL statement, case-insensitively. */
function queryTest(value: string): (q: SqlRequest) => boolean {
  const text = value.toLowerCase();
  return (q) => (q.query ?? '').toLowerCase().includes(text);
}

/**
 * `/regex/` is a regular expression over the whole request target (query string included); anything
 * else is a glob (`*` one segment, `**` any) over the path without its query string, or over its
 * template, so `/orders/{id}` matches `/orders/42`.
 */
export function pathMatcher(value: string): (path: string) => boolean {
  if (value.length >= 3 && value.startsWith('/') && value.endsWith('/')) {
    const re = compileRegex(value.slice(1, -1));
    return (p) => re.test(p);
  }
  if (!value.startsWith('/')) throw new Error(`path "${value}" must start with "/" (a glob such as /orders/*, or a /regex/)`);
  const glob = globToRegExp(value);
  return (p) => {
    const q = p.indexOf('?');
    return glob.test(q < 0 ? p : p.slice(0, q)) || glob.test(pathTemplate(p));
  };
}

/** Compiles a regular expression a spec wrote, with an error that shows it and says what is wrong. */
export function compileRegex(src: string): RegExp {
  try {
    return new RegExp(src);
  } catch (e) {
    throw new Error(`invalid regular expression /${src}/: ${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '')}`);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A cursor over the selector text; positions are 1-based characters, as messages show them. */
class Scanner {
  private i = 0;
  constructor(private readonly text: string) {}
  get col(): number { return this.i + 1; }
  get done(): boolean { return this.i >= this.text.length; }
  get next(): string { return this.text[this.i] ?? 'end of selector'; }
  ws(): void { while (this.i < this.text.length && /\s/.test(this.text[this.i]!)) this.i++; }
  eat(c: string): boolean {
    if (this.text[this.i] !== c) return false;
    this.i++;
    return true;
  }
  /** Consumes a match of a sticky regex at the cursor. */
  take(re: RegExp): string | undefined {
    re.lastIndex = this.i;
    const m = re.exec(this.text);
    if (!m) return undefined;
    this.i += m[0].length;
    return m[0];
  }
  /** A "double" or 'single' quoted value; a backslash escapes the next character. */
  quoted(): string | undefined {
    const q = this.text[this.i];
    if (q !== '"' && q !== "'") return undefined;
    const at = this.col;
    let out = '';
    for (let j = this.i + 1; j < this.text.length; j++) {
      const c = this.text[j]!;
      if (c === '\\' && j + 1 < this.text.length) out += this.text[++j];
      else if (c === q) {
        this.i = j + 1;
        return out;
      } else out += c;
    }
    return this.fail(`unterminated ${q === '"' ? 'double' : 'single'}-quoted value`, at);
  }
  fail(message: string, col = this.col): never {
    throw new SelectorError(message, undefined, col);
  }
}
