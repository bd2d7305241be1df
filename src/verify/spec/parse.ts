import { existsSync, readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { DetectorConfig } from '../config.js';
import { ServiceNames } from '../services.js';
import { describe as showValue } from './body-json.js';
import { compileBody } from './body.js';
import { SpecError } from './errors.js';
import { redisGlob } from './glob.js';
import { compileRegex, parseSelector, selectorFromObject, SelectorError, statusTest } from './selector.js';
import type { Backoff, Check, Expect, HeaderExpect, MessageExpect, Range, ResponseExpect, Selector, Spec } from './types.js';

/**
 * YAML or JSON text → a Spec. Three passes, each failing with the file, the field and what was
 * wrong: YAML syntax (line and column), the shipped JSON Schema (so the schema editors complete
 * from is the one enforced: unknown keys, types, bounds), then what a schema cannot say
 * (selector syntax, regexes, contradictory bounds, body assertions).
 */

type Seg = string | number;
type Raw = Record<string, unknown>;

const SCHEMA_URL = new URL('../../../schema/tapwire-spec.schema.json', import.meta.url);
const BODY_SCHEMA_URL = new URL('../../../schema/tapwire-spec-body.schema.json', import.meta.url);

export function parseSpec(text: string, source: string, baseDir: string): Spec {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = lines.linePos(syntax.pos[0]);
    throw new SpecError(source, `line ${pos.line}, column ${pos.col}`, `not valid YAML: ${syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const ctx = new Context(source, doc, lines);
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // Only an alias expanding past yaml's limit gets here (a "billion laughs" document).
    ctx.fail([], `not valid YAML: ${(e as Error).message}`);
  }
  if (data === null || data === undefined) ctx.fail([], 'the spec is empty: it needs at least `version: 1`');
  const validate = specValidator();
  if (!validate(data)) {
    const { path, what, key } = explain(validate.errors ?? []);
    ctx.fail(path, what, key);
  }
  return build(data as Raw, ctx, baseDir);
}

/** Errors know the spec file, its YAML nodes (for line numbers) and turn field paths into text. */
class Context {
  constructor(readonly source: string, private readonly doc: Document, private readonly lines: LineCounter) {}

  fail(path: readonly Seg[], what: string, key = false): never {
    throw new SpecError(this.source, fieldPath(path), what, this.line(path, key));
  }

  /** The line of the value at path, or of its key when the error is about the key itself. */
  private line(path: readonly Seg[], key: boolean): number | undefined {
    let node: unknown;
    if (key && path.length > 0) {
      const parent = this.doc.getIn(path.slice(0, -1), true);
      if (isMap(parent)) node = parent.items.find((p) => isScalar(p.key) && p.key.value === path[path.length - 1])?.key;
    }
    // A missing key has no node: its mapping's line is the nearest.
    for (let n = path.length; !node && n >= 0; n--) node = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    return range ? this.lines.linePos(range[0]).line : undefined;
  }
}

/** fieldPath backwards: `checks[0].expect.body.json[1]` → ['checks', 0, 'expect', 'body', 'json', 1]. */
function segmentsOf(path: string): Seg[] {
  return [...path.matchAll(/\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.[\]]+)/g)].map((m) => (m[1] !== undefined ? Number(m[1]) : m[2] !== undefined ? (JSON.parse(`"${m[2]}"`) as string) : m[3]!));
}

/** `checks[2].expect.count.atMost`; keys that are not identifiers in quotes: `services["a.b"]`. */
export function fieldPath(path: readonly Seg[]): string {
  if (path.length === 0) return 'top level';
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : /^[A-Za-z_$][\w$-]*$/.test(s) ? `${i ? '.' : ''}${s}` : `[${JSON.stringify(s)}]`)).join('');
}

let validator: ValidateFunction | undefined;

/** The shipped schema, compiled once; the body schema is the body engineer's, or anything until it exists. */
export function specValidator(): ValidateFunction {
  if (validator) return validator;
  const ajv = new Ajv2020.default({ allErrors: true, verbose: true, strict: false, logger: false });
  const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $id: string };
  const bodyRef = new URL('tapwire-spec-body.schema.json', schema.$id).href;
  ajv.addSchema(existsSync(BODY_SCHEMA_URL) ? { ...JSON.parse(readFileSync(BODY_SCHEMA_URL, 'utf8')), $id: bodyRef } : { $id: bodyRef });
  return (validator = ajv.compile(schema));
}

/**
 * The one ajv error that says the most. A value that fits no alternative of a oneOf gets every
 * branch's complaint; the structural ones (an unknown key, a missing key) are the user's real
 * mistake, then the deepest value error; "wrong type" from a branch that does not apply only
 * speaks when nothing else does, in the words of the alternatives' titles.
 */
function explain(errors: ErrorObject[]): { path: Seg[]; what: string; key: boolean } {
  const pathOf = (e: ErrorObject): Seg[] => e.instancePath.split('/').slice(1).map((t) => {
    const s = t.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(s) ? Number(s) : s;
  });
  const shape = (e: ErrorObject) => ['type', 'const', 'enum', 'oneOf', 'anyOf'].includes(e.keyword);
  const byDepth = (a: ErrorObject, b: ErrorObject) => pathOf(b).length - pathOf(a).length;
  // An unknown key is likelier the mistake than the missing key it was meant to be.
  const STRUCTURAL = ['additionalProperties', 'propertyNames', 'required'];
  const structural = errors.filter((e) => STRUCTURAL.includes(e.keyword)).sort((a, b) => byDepth(a, b) || STRUCTURAL.indexOf(a.keyword) - STRUCTURAL.indexOf(b.keyword));
  const e = structural[0] ?? errors.filter((x) => !shape(x)).sort(byDepth)[0] ?? errors.filter((x) => x.keyword !== 'oneOf' && x.keyword !== 'anyOf').sort(byDepth)[0] ?? errors[0]!;
  const path = pathOf(e);
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') {
    const name = String(p.additionalProperty);
    const allowed = allowedKeys(e.parentSchema ?? {});
    const lower = name.toLowerCase();
    const near = allowed.find((k) => editDistance(k.toLowerCase(), lower) <= 2) ?? (lower.length >= 4 ? allowed.find((k) => k.toLowerCase().startsWith(lower)) : undefined);
    return { path: [...path, name], key: true, what: `unknown key${near ? ` (did you mean ${near}?)` : ''}; allowed here: ${allowed.join(', ')}` };
  }
  if (e.keyword === 'required') return { path: [...path, String(p.missingProperty)], key: false, what: 'missing (required)' };
  if (e.keyword === 'propertyNames') {
    return { path: [...path, String(p.propertyName)], key: true, what: `not allowed as a key here: must be ${describeSchema((e.parentSchema as Raw | undefined)?.propertyNames)}` };
  }
  if (path.length === 0) return { path, key: false, what: `a spec is a mapping (version: 1, services, detectors, checks), got ${showValue(e.data)}` };
  // A value that fits none of a oneOf's branches is described by the oneOf, not by one branch.
  const alt = errors.find((x) => (x.keyword === 'oneOf' || x.keyword === 'anyOf') && x.instancePath === e.instancePath);
  return { path, key: false, what: `must be ${describeSchema(alt?.parentSchema ?? e.parentSchema)}, got ${showValue(e.data)}` };
}

function allowedKeys(schema: Raw): string[] {
  const keys = Object.keys((schema.properties as Raw | undefined) ?? {}).filter((k) => k !== '$schema');
  return schema.patternProperties ? [...keys, 'header.<name>'] : keys;
}

/** What a schema accepts, in words: its title when it has one, else from its type and bounds. */
function describeSchema(schema: unknown): string {
  if (typeof schema !== 'object' || schema === null) return 'something else';
  const s = schema as Raw;
  if (typeof s.title === 'string') return s.title;
  if (Array.isArray(s.enum)) return `one of ${s.enum.join(', ')}`;
  const alts = (s.oneOf ?? s.anyOf) as unknown[] | undefined;
  if (alts) return alts.map(describeSchema).join(' or ');
  if (Array.isArray(s.type)) return s.type.map((t) => describeSchema({ ...s, type: t })).join(' or ');
  const lo = s.minimum !== undefined ? ` ≥ ${s.minimum}` : s.exclusiveMinimum !== undefined ? ` > ${s.exclusiveMinimum}` : '';
  const hi = s.maximum !== undefined ? `${lo ? ' and' : ''} ≤ ${s.maximum}` : '';
  switch (s.type) {
    case 'integer': return `a whole number${lo}${hi}`;
    case 'number': return `a number${lo}${hi}`;
    case 'string': return s.minLength ? 'a non-empty string' : 'a string';
    case 'boolean': return 'true or false';
    case 'array': return `a list${s.minItems ? ` of at least ${s.minItems}` : ''}`;
    case 'object': return s.minProperties && s.properties ? `a mapping with at least one of ${Object.keys(s.properties).join(', ')}` : 'a mapping';
  }
  return 'something else';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Pass three: the schema has vouched for every key and type; what is left is meaning. */
function build(raw: Raw, ctx: Context, baseDir: string): Spec {
  const services = (raw.services ?? {}) as Record<string, string[]>;
  const owner = new Map<string, string>();
  for (const [name, addrs] of Object.entries(services)) {
    addrs.forEach((a, i) => {
      const other = owner.get(a);
      if (other !== undefined && other !== name) ctx.fail(['services', name, i], `${a} is also listed under ${other}: an address names one service`);
      owner.set(a, name);
    });
  }
  const checks = ((raw.checks ?? []) as Raw[]).map((c, i) => buildCheck(c, ['checks', i], ctx, baseDir));
  checks.forEach((c, i) => {
    const first = checks.findIndex((o) => o.name === c.name);
    if (first < i) ctx.fail(['checks', i, 'name'], `"${c.name}" is also the name of checks[${first}]: findings name their check, so names must differ`);
  });
  const evidence = raw.evidence as { max?: number } | undefined;
  return {
    source: ctx.source,
    version: 1,
    services,
    names: new ServiceNames(services),
    ...(evidence?.max !== undefined ? { maxEvidence: evidence.max } : {}),
    detectors: (raw.detectors ?? {}) as DetectorConfig,
    checks,
  };
}

function buildCheck(raw: Raw, at: Seg[], ctx: Context, baseDir: string): Check {
  const kinds = (['select', 'noSecretLeaves', 'order', 'cache'] as const).filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    ctx.fail(at, kinds.length === 0 ? 'needs one of select (with expect), noSecretLeaves, order or cache' : `has ${kinds.join(' and ')}: a check is one of select (with expect), noSecretLeaves, order or cache`);
  }
  if (raw.select !== undefined && raw.expect === undefined) ctx.fail([...at, 'select'], 'needs expect: what the selected flows must show');
  if (raw.expect !== undefined && raw.select === undefined) ctx.fail([...at, 'expect'], 'needs select: which flows to expect it of');
  const check: Check = { name: raw.name as string, severity: (raw.severity as Check['severity'] | undefined) ?? 'error', at: fieldPath(at) };
  if (raw.select !== undefined) {
    check.select = buildSelector(raw.select, [...at, 'select'], ctx);
    check.expect = buildExpect(raw.expect as Raw, [...at, 'expect'], ctx, baseDir);
  }
  if (raw.order !== undefined) check.order = (raw.order as unknown[]).map((s, i) => buildSelector(s, [...at, 'order', i], ctx));
  if (raw.cache !== undefined) {
    // The schema vouched for the types and the 0..1 bound; the glob's syntax is left.
    const c = raw.cache as { key: string; minHitRatio: number; service?: string };
    const match = guarded([...at, 'cache', 'key'], ctx, () => redisGlob(c.key));
    check.cache = { key: c.key, match, minHitRatio: c.minHitRatio, ...(c.service !== undefined ? { service: c.service } : {}) };
  }
  if (raw.noSecretLeaves !== undefined) {
    const n = raw.noSecretLeaves;
    check.noSecretLeaves = typeof n === 'string' ? { service: n, allowTo: [] } : { service: (n as Raw).service as string, allowTo: ((n as Raw).allowTo ?? []) as string[] };
  }
  return check;
}

function buildSelector(raw: unknown, at: Seg[], ctx: Context): Selector {
  try {
    return typeof raw === 'string' ? parseSelector(raw) : selectorFromObject(raw as Raw);
  } catch (e) {
    if (!(e instanceof SelectorError)) throw e;
    if (typeof raw !== 'string') return ctx.fail(e.key ? [...at, e.key] : at, e.message);
    return ctx.fail(at, `bad selector '${raw}'${e.column !== undefined ? ` at character ${e.column}` : ''}: ${e.message}`);
  }
}

function buildExpect(raw: Raw, at: Seg[], ctx: Context, baseDir: string): Expect {
  const out: Expect = {};
  if (raw.count) out.count = buildRange(raw.count as Raw, [...at, 'count'], ctx);
  if (raw.backoff) out.backoff = buildBackoff(raw.backoff as Raw, [...at, 'backoff'], ctx);
  if (raw.latency) out.latency = raw.latency as Expect['latency'];
  if (raw.request) out.request = buildMessage(raw.request as Raw, [...at, 'request'], ctx, baseDir);
  if (raw.response) {
    const r = raw.response as Raw;
    const resp: ResponseExpect = buildMessage(r, [...at, 'response'], ctx, baseDir);
    if (r.status !== undefined) resp.status = guarded([...at, 'response', 'status'], ctx, () => statusTest(String(r.status)));
    if (r.grpcStatus !== undefined) resp.grpcStatus = guarded([...at, 'response', 'grpcStatus'], ctx, () => statusTest(String(r.grpcStatus)));
    out.response = resp;
  }
  if (raw.perRequest) {
    const p = raw.perRequest as Raw;
    out.perRequest = {
      ...(p.sql ? { sql: buildRange(p.sql as Raw, [...at, 'perRequest', 'sql'], ctx) } : {}),
      ...(p.calls ? { calls: buildRange(p.calls as Raw, [...at, 'perRequest', 'calls'], ctx) } : {}),
    };
  }
  return out;
}

function buildRange(raw: Raw, at: Seg[], ctx: Context): Range {
  const r = raw as Range;
  if (r.exactly !== undefined && (r.atLeast !== undefined || r.atMost !== undefined)) ctx.fail([...at, 'exactly'], 'cannot be combined with atLeast or atMost');
  if (r.atLeast !== undefined && r.atMost !== undefined && r.atLeast > r.atMost) ctx.fail([...at, 'atLeast'], `${r.atLeast} is more than atMost ${r.atMost}: nothing could pass`);
  return r;
}

function buildBackoff(raw: Raw, at: Seg[], ctx: Context): Backoff {
  const tolerance = (raw.tolerance as number | undefined) ?? 0.25;
  const schedule = raw.schedule as number[] | undefined;
  if (schedule) {
    for (const k of ['initialMs', 'factor', 'maxMs']) if (raw[k] !== undefined) ctx.fail([...at, k], 'cannot be combined with schedule: give a schedule, or initialMs with factor');
    return { tolerance, spec: { schedule }, expectedMs: (i) => schedule[Math.min(i, schedule.length - 1)]! };
  }
  if (raw.initialMs === undefined) ctx.fail(at, 'needs schedule (delays in ms) or initialMs (with factor, default 2)');
  const initialMs = raw.initialMs as number, factor = (raw.factor as number | undefined) ?? 2, maxMs = raw.maxMs as number | undefined;
  if (maxMs !== undefined && maxMs < initialMs) ctx.fail([...at, 'maxMs'], `${maxMs} is less than initialMs ${initialMs}`);
  return {
    tolerance,
    spec: { initialMs, factor, ...(maxMs !== undefined ? { maxMs } : {}) },
    expectedMs: (i) => Math.min(initialMs * factor ** i, maxMs ?? Infinity),
  };
}

function buildMessage(raw: Raw, at: Seg[], ctx: Context, baseDir: string): MessageExpect {
  const out: MessageExpect = {};
  if (raw.headers) {
    out.headers = Object.entries(raw.headers as Record<string, Raw>).map(([name, h]): HeaderExpect => {
      const here = [...at, 'headers', name];
      const absent = h.absent === true || h.present === false;
      if (absent && (h.present === true || h.equals !== undefined || h.matches !== undefined)) ctx.fail(here, 'asks for the header to be both absent and there');
      const e: HeaderExpect = { name: name.toLowerCase() };
      if (absent) e.absent = true;
      else if (h.present === true) e.present = true;
      if (h.equals !== undefined) e.equals = h.equals as string;
      if (h.matches !== undefined) e.matches = guarded([...here, 'matches'], ctx, () => compileRegex(h.matches as string));
      return e;
    });
  }
  if (raw.body !== undefined) {
    try {
      out.body = compileBody(raw.body, fieldPath([...at, 'body']), baseDir, ctx.source);
      out.bodySpec = raw.body;
    } catch (e) {
      // compileBody names the field as text; its node gives the line.
      if (e instanceof SpecError) ctx.fail(segmentsOf(e.at), e.what);
      throw e;
    }
  }
  return out;
}

/** Runs a compiler that throws plain Errors (selector.ts), failing at this field with its message. */
function guarded<T>(path: Seg[], ctx: Context, compile: () => T): T {
  try {
    return compile();
  } catch (e) {
    return ctx.fail(path, (e as Error).message);
  }
}
