/** Body assertions, part 1: reading a body as JSON, and the `json:` JSONPath assertions (see body.ts). */
import { isDeepStrictEqual } from 'node:util';
import { JSONPath } from 'jsonpath-plus';

/** One side of an HTTP exchange, as far as body assertions read it (RecordHalf satisfies it). */
export interface BodyHalf {
  headers: Record<string, string>;
  body?: string;
  bodyEncoding?: 'base64';
  bodyTruncated?: boolean;
  bodyDecodeError?: string;
  bodySize?: number;
}

/** A parsed JSON body, or why there is none: a problem when the part seen decides it, unknown otherwise. */
export type JsonRead = { value: unknown } | { problem: string } | { unknown: string };

/** Throws a SpecError at a field path; bound to the spec file by compileBody. */
export type Fail = (at: string, what: string) => never;

/** The media type of a Content-Type value, lower-case, without parameters; undefined when absent. */
export function mediaType(contentType: string | undefined): string | undefined {
  const t = contentType?.split(';')[0]!.trim().toLowerCase();
  return t || undefined;
}

/** application/json and the structured-syntax suffix +json (RFC 6839 §3.1). */
export function isJsonMedia(t: string): boolean {
  return t === 'application/json' || t.endsWith('+json');
}

/** A media range against a media type: exact, `type/*`, or `*\/*` (RFC 9110 §12.5.1). */
export function mediaMatches(range: string, t: string): boolean {
  const r = range.toLowerCase();
  return r === t || r === '*/*' || (r.endsWith('/*') && t.startsWith(r.slice(0, -1)));
}

/**
 * Parses a body as JSON, deciding what a cut-off preview allows: `<html>` cut at the body limit
 * is still not JSON, but `{"items": [1, 2` only might have been.
 */
export function readJson(half: BodyHalf, which: string): JsonRead {
  const ct = mediaType(half.headers['content-type']);
  const declared = ct ? `Content-Type ${ct}` : 'no Content-Type';
  if (half.bodyDecodeError) return { unknown: `${which} body could not be content-decoded (${half.bodyDecodeError})` };
  if (half.body === undefined) {
    // Bodies are omitted when empty (README "Flow record"); without bodySize 0 we cannot tell it was.
    return half.bodySize === 0 && !half.bodyTruncated ? { problem: `${which} body is empty, not JSON (${declared})` } : { unknown: `${which} body was not captured` };
  }
  // JSON exchanged between systems is UTF-8 (RFC 8259 §8.1); base64 marks bytes that are not.
  if (half.bodyEncoding === 'base64') return { problem: `${which} body is not valid JSON (${declared}): not UTF-8 text` };
  const text = half.body.replace(/^\uFEFF/, '');
  const cut = { unknown: `${which} body is cut at the body limit: its JSON cannot be checked whole` };
  try {
    const value: unknown = JSON.parse(text);
    return half.bodyTruncated ? cut : { value };
  } catch {
    const at = jsonErrorAt(text);
    if (at === text.length && half.bodyTruncated) return cut;
    const what = at === text.length ? 'Unexpected end of input' : `Unexpected token ${JSON.stringify(text[at]).slice(1, -1)} at position ${at}`;
    return { problem: `${which} body is not valid JSON (${declared}): ${what}` };
  }
}

/**
 * Where JSON text goes wrong: the length of its longest prefix that could still start a JSON
 * text. Found by bisection, because V8's messages do not always give a position and vary by
 * Node version; a prefix is viable when it parses or fails only at its end.
 */
function jsonErrorAt(text: string): number {
  const viable = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return true;
    } catch (e) {
      const m = /at position (\d+)/.exec((e as Error).message);
      return m ? Number(m[1]) >= n : /end of JSON input/.test((e as Error).message);
    }
  };
  if (viable(text.length)) return text.length;
  let lo = 0;
  let hi = text.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (viable(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** `$.items[0].qty` from path segments (JSON Pointer tokens or JSONPath names). */
export function jsonPathOf(segments: readonly string[]): string {
  return '$' + segments.map((s) => (/^\d+$/.test(s) ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? `.${s}` : `['${s.replace(/'/g, "\\'")}']`)).join('');
}

/** A value as problems name it: `string "4"`, `number 1795254672`, `array of 3`. */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `array of ${v.length}`;
  if (typeof v === 'object') return 'object';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** The JSON type of a value in JSON Schema's words; integers are also numbers. */
function jsonTypes(v: unknown): string[] {
  if (v === null) return ['null'];
  if (Array.isArray(v)) return ['array'];
  if (typeof v === 'number') return Number.isInteger(v) ? ['integer', 'number'] : ['number'];
  return [typeof v];
}

const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'];
const OPERATORS = ['equals', 'type', 'exists', 'matches', 'length', 'range'];
const KEYS = ['path', ...OPERATORS];

/** One `json:` item: a JSONPath and what every value it selects must satisfy. */
export type JsonAssertion = (doc: unknown) => string[];

export function compileJsonAssertions(spec: unknown, at: string, fail: Fail): JsonAssertion[] {
  if (!Array.isArray(spec)) return fail(at, 'expected a list of { path, <operator> } items');
  return spec.map((item, i) => compileOne(item, `${at}[${i}]`, fail));
}

function compileOne(item: unknown, at: string, fail: Fail): JsonAssertion {
  if (!isRecord(item)) return fail(at, `expected { path, ${OPERATORS.join(' | ')} }`);
  for (const k of Object.keys(item)) if (!KEYS.includes(k)) fail(`${at}.${k}`, `unknown key (expected ${KEYS.join(', ')})`);
  const path = item.path;
  if (typeof path !== 'string' || !path.startsWith('$')) return fail(`${at}.path`, 'expected a JSONPath starting with $');
  // Filters and script expressions need evaluation, which stays off: spec files are data, not code.
  if (JSONPath.toPathArray(path).some((s) => /^\??\(/.test(s))) fail(`${at}.path`, `${path}: filter and script expressions (?(...), (...)) are not supported`);
  const ops = OPERATORS.filter((k) => k in item);
  if (ops.length === 0) fail(at, `needs an operator: ${OPERATORS.join(', ')}`);
  if (item.exists === false && ops.length > 1) fail(`${at}.exists`, 'exists: false cannot be combined with other operators');
  const tests = ops.filter((k) => k !== 'exists').map((k) => compileOperator(k, item[k], `${at}.${k}`, fail));
  return (doc) => {
    // jsonpath-plus selects nothing from a null or false document, not even `$`.
    const found = (path === '$' ? [{ path, value: doc }] : JSONPath({ path, json: doc as object, eval: false, resultType: 'all' }) ?? []) as { path: string; value: unknown }[];
    const where = (m: { path: string }): string => jsonPathOf(JSONPath.toPathArray(m.path).slice(1));
    if (item.exists === false) return found.map((m) => `${where(m)}: expected no value, got ${describe(m.value)}`);
    if (found.length === 0) return [`${path}: expected a value, found none`];
    return found.flatMap((m) => tests.map((t) => t(m.value)).filter((p): p is string => p !== undefined).map((p) => `${where(m)}: ${p}`));
  };
}

/** An operator's test of one value: undefined when it holds, else "expected …, got …". */
function compileOperator(op: string, arg: unknown, at: string, fail: Fail): (v: unknown) => string | undefined {
  switch (op) {
    case 'equals':
      return (v) => (isDeepStrictEqual(v, arg) ? undefined : `expected ${JSON.stringify(arg)}, got ${describe(v)}`);
    case 'type': {
      const want = Array.isArray(arg) ? arg : [arg];
      if (want.length === 0 || !want.every((t) => TYPES.includes(t as string))) fail(at, `expected one of ${TYPES.join(', ')} (or a list of them)`);
      return (v) => (jsonTypes(v).some((t) => want.includes(t)) ? undefined : `expected ${want.join(' or ')}, got ${describe(v)}`);
    }
    case 'exists':
      if (typeof arg !== 'boolean') fail(at, 'expected true or false');
      return () => undefined;
    case 'matches': {
      if (typeof arg !== 'string') return fail(at, 'expected a regular expression string');
      let re: RegExp;
      try {
        re = new RegExp(arg);
      } catch (e) {
        return fail(at, (e as Error).message);
      }
      return (v) => (typeof v === 'string' && re.test(v) ? undefined : `expected a string matching /${arg}/, got ${describe(v)}`);
    }
    case 'length': {
      const b = bounds(typeof arg === 'number' ? { equals: arg } : arg, ['equals', 'atLeast', 'atMost'], at, fail);
      return (v) => {
        const n = typeof v === 'string' || Array.isArray(v) ? v.length : undefined;
        return n !== undefined && b.holds(n) ? undefined : `expected length ${b.text}, got ${n === undefined ? describe(v) : `length ${n}`}`;
      };
    }
    default: {
      const b = bounds(arg, ['min', 'max'], at, fail);
      return (v) => (typeof v === 'number' && b.holds(v) ? undefined : `expected a number ${b.text}, got ${describe(v)}`);
    }
  }
}

/** `{ equals | atLeast | atMost }` or `{ min, max }`: inclusive numeric bounds. */
function bounds(arg: unknown, keys: string[], at: string, fail: Fail): { holds(n: number): boolean; text: string } {
  if (!isRecord(arg) || Object.keys(arg).length === 0) return fail(at, `expected { ${keys.join(', ')} }`);
  for (const [k, v] of Object.entries(arg)) {
    if (!keys.includes(k)) fail(`${at}.${k}`, `unknown key (expected ${keys.join(', ')})`);
    if (typeof v !== 'number') fail(`${at}.${k}`, 'expected a number');
  }
  if ('equals' in arg && Object.keys(arg).length > 1) fail(at, 'equals cannot be combined with atLeast or atMost');
  const lo = (arg.equals ?? arg.atLeast ?? arg.min) as number | undefined;
  const hi = (arg.equals ?? arg.atMost ?? arg.max) as number | undefined;
  if (lo !== undefined && hi !== undefined && lo > hi) fail(at, `empty range: ${lo} > ${hi}`);
  const text = lo === hi ? `${lo}` : lo === undefined ? `<= ${hi}` : hi === undefined ? `>= ${lo}` : `between ${lo} and ${hi}`;
  return { holds: (n) => (lo === undefined || n >= lo) && (hi === undefined || n <= hi), text };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
