/**
 * A type checker for parsed filter expressions. @bufbuild/cel 0.6.1 has no checker of its own (its
 * Checker handles constants and identifiers only, and is not exported), so this one walks the AST
 * once at compile time. It knows the variables and the record's fields (types.ts) and takes
 * function signatures from the CEL environment itself, so it rejects what a CEL checker would:
 * unknown variables, fields and functions, `duration_ms > "200"`, `protocol.contains(1)`,
 * `response.stauts`. Values of unknown type (`dyn`: decoded JSON, map lookups) pass and are
 * judged when the expression runs.
 *
 * It also notes which fields of each variable the expression reads (`response.status` reads
 * `status` only), so a record's other fields need not be converted for it.
 */

import type { CelEnv, CelType, parse } from '@bufbuild/cel';
import { celModules } from './cel.js';
import { FilterError } from './error.js';
import { BOOL, type CelT, DOUBLE, DURATION, DYN, INT, list, map, NULL, show, STRING, TIMESTAMP, TYPE } from './types.js';

type Parsed = ReturnType<typeof parse>;
type Expr = Parsed['expr'];
type Constant = Extract<Expr['exprKind'], { case: 'constExpr' }>['value'];

/** Fields read per variable; 'all' when the variable is used whole (iterated, compared, passed on). */
export type Uses = Map<string, Set<string> | 'all'>;

const OPERATORS: Record<string, string> = {
  '_+_': '+', '_-_': '-', '_*_': '*', '_/_': '/', '_%_': '%', '_<_': '<', '_<=_': '<=', '_>_': '>', '_>=_': '>=',
  '_==_': '==', '_!=_': '!=', '!_': '!', '-_': '-', '@in': 'in', '_[_]': '[]', '_&&_': '&&', '_||_': '||',
};
const TYPE_NAMES = new Set(['int', 'uint', 'double', 'bool', 'string', 'bytes', 'list', 'map', 'null_type', 'type', 'dyn']);
const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
const NUMERIC = new Set(['int', 'uint', 'double']);
const CONSTANT_FORMS: Record<string, string> = {
  timestamp: 'expected RFC 3339, like "2026-11-21T10:00:00Z" or "2026-11-21T11:00:00.5+01:00"',
  duration: 'expected a number with a unit (h, m, s, ms, us, ns), like "200ms", "1.5s" or "1m30s"',
};

export function checkExpression(src: string, parsed: Parsed, env: CelEnv, vars: ReadonlyMap<string, CelT>): { type: CelT; uses: Uses } {
  const c = new Checker(src, parsed.sourceInfo?.positions ?? {}, env, vars);
  const type = c.type(parsed.expr);
  if (type.k !== 'bool' && type.k !== 'dyn') c.fail(0, `a filter is true or false, but this expression is ${show(type)}`);
  return { type, uses: c.uses };
}

class Checker {
  readonly uses: Uses = new Map();
  private readonly scopes: Map<string, CelT>[] = [];

  constructor(
    private readonly src: string,
    private readonly positions: Record<string, number>,
    private readonly env: CelEnv,
    private readonly vars: ReadonlyMap<string, CelT>,
  ) {}

  fail(pos: number, what: string): never {
    throw new FilterError(this.src, pos, what);
  }

  /** A node's position; the parser places a binary operator at the space before it, so skip spaces. */
  private at(e: Expr): number {
    let p = this.positions[String(e.id)] ?? 0;
    while (p < this.src.length && /\s/.test(this.src[p]!)) p++;
    return p;
  }

  /** Where a name that follows this node's position (a field after '.', a method) starts. */
  private nameAt(e: Expr, name: string): number {
    const p = this.at(e);
    const i = this.src.indexOf(name, p);
    return i >= 0 ? i : p;
  }

  /** The leftmost character of a subexpression (the parser places && and || at 0: skip those). */
  private start(e: Expr): number {
    const k = e.exprKind;
    let min = k.case === 'callExpr' && (k.value.function === '_&&_' || k.value.function === '_||_') ? Infinity : this.at(e);
    const children: (Expr | undefined)[] =
      k.case === 'selectExpr' ? [k.value.operand] : k.case === 'callExpr' ? [k.value.target, ...k.value.args] : k.case === 'listExpr' ? k.value.elements : [];
    for (const ch of children) if (ch) min = Math.min(min, this.start(ch));
    return min === Infinity ? 0 : min;
  }

  private local(name: string): CelT | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const t = this.scopes[i]!.get(name);
      if (t) return t;
    }
    return undefined;
  }

  /** The variable an expression names, when it is a bare variable (not shadowed by a macro's). */
  private variable(e: Expr): string | undefined {
    if (e.exprKind.case !== 'identExpr') return undefined;
    const name = e.exprKind.value.name;
    return this.local(name) === undefined && this.vars.has(name) ? name : undefined;
  }

  private use(name: string, field?: string): void {
    const cur = this.uses.get(name);
    if (field === undefined) this.uses.set(name, 'all');
    else if (cur === undefined) this.uses.set(name, new Set([field]));
    else if (cur !== 'all') cur.add(field);
  }

  type(e: Expr): CelT {
    const k = e.exprKind;
    switch (k.case) {
      case 'constExpr': return constType(k.value);
      case 'identExpr': return this.ident(e, k.value.name);
      case 'selectExpr': {
        const { operand, field, testOnly } = k.value;
        const v = operand && this.variable(operand);
        if (v !== undefined) this.use(v, field);
        const t = this.field(v !== undefined ? this.vars.get(v)! : this.type(operand!), field, this.nameAt(e, field));
        return testOnly ? BOOL : t;
      }
      case 'callExpr': return this.call(e, k.value.function, k.value.target, k.value.args);
      case 'listExpr': return list(common(k.value.elements.map((x) => this.type(x))));
      case 'structExpr': {
        const { messageName, entries } = k.value;
        const keys: CelT[] = [];
        const values = entries.map((en) => {
          if (en.keyKind.case === 'mapKey') keys.push(this.type(en.keyKind.value));
          return en.value ? this.type(en.value) : DYN;
        });
        if (messageName === '') return map(common(keys), common(values));
        return messageName === 'google.protobuf.Duration' ? DURATION : messageName === 'google.protobuf.Timestamp' ? TIMESTAMP : DYN;
      }
      case 'comprehensionExpr': return this.comprehension(k.value);
      default: return this.fail(this.at(e), 'an empty expression');
    }
  }

  private ident(e: Expr, name: string): CelT {
    const local = this.local(name);
    if (local) return local;
    const v = this.vars.get(name);
    if (v) {
      this.use(name);
      return v;
    }
    if (TYPE_NAMES.has(name)) return TYPE;
    return this.fail(this.at(e), `unknown variable '${name}'${suggest(name, this.vars.keys())}`);
  }

  private field(t: CelT, name: string, pos: number): CelT {
    switch (t.k) {
      case 'struct': {
        if (Object.hasOwn(t.fields, name)) return t.fields[name]!;
        return this.fail(pos, `${t.name} has no field '${name}'${suggest(name, Object.keys(t.fields))}`);
      }
      case 'map': return t.value;
      case 'dyn': return DYN;
      default: return this.fail(pos, `${show(t)} has no fields, so '.${name}' cannot apply`);
    }
  }

  private bool(e: Expr): void {
    const t = this.type(e);
    if (t.k !== 'bool' && t.k !== 'dyn') this.fail(this.start(e), `expected true or false here, but this is ${show(t)}`);
  }

  private call(e: Expr, fn: string, target: Expr | undefined, args: Expr[]): CelT {
    // A qualified function name, e.g. strings.quote(s), parses as a method call on `strings`.
    const qualified = target && qualifiedName(target);
    if (qualified && this.env.funcs.find(`${qualified}.${fn}`)) return this.overload(e, `${qualified}.${fn}`, undefined, args);
    switch (fn) {
      case '_&&_':
      case '_||_':
      case '!_':
        for (const a of args) this.bool(a);
        return BOOL;
      case '_?_:_':
        this.bool(args[0]!);
        return common([this.type(args[1]!), this.type(args[2]!)]);
      case '@not_strictly_false':
        this.type(args[0]!);
        return BOOL;
      case '_[_]': return this.index(e, args[0]!, args[1]!);
      case '_==_':
      case '_!=_': {
        const [a, b] = args.map((x) => this.type(x)) as [CelT, CelT];
        if (!comparable(a, b)) this.fail(this.at(e), `'${OPERATORS[fn]}' compares ${show(a)} with ${show(b)}, which are never equal`);
        return BOOL;
      }
      case 'has': return this.fail(this.at(e), 'has() takes a field selection, like has(response.status)');
    }
    if (MACROS.has(fn) && target && !this.env.funcs.find(fn)) {
      this.fail(this.nameAt(e, fn), `${fn}() takes a variable name and an expression, like list.${fn}(x, x > 0)`);
    }
    return this.overload(e, fn, target, args);
  }

  private index(e: Expr, of: Expr, idx: Expr): CelT {
    const key = idx.exprKind.case === 'constExpr' && idx.exprKind.value.constantKind.case === 'stringValue' ? idx.exprKind.value.constantKind.value : undefined;
    const v = this.variable(of);
    if (v !== undefined && key !== undefined && this.vars.get(v)!.k === 'struct') {
      this.use(v, key);
      return this.field(this.vars.get(v)!, key, this.at(idx));
    }
    const t = this.type(of);
    const it = this.type(idx);
    switch (t.k) {
      case 'list':
        if (it.k !== 'int' && it.k !== 'uint' && it.k !== 'dyn') this.fail(this.start(idx), `a list index is an int, not ${show(it)}`);
        return t.elem;
      case 'map': return t.value;
      case 'struct':
        if (key !== undefined) return this.field(t, key, this.at(idx));
        if (it.k !== 'string' && it.k !== 'dyn') this.fail(this.start(idx), `the keys of ${t.name} are strings, not ${show(it)}`);
        return DYN;
      case 'dyn': return DYN;
      default: return this.fail(this.at(e), `${show(t)} cannot be indexed`);
    }
  }

  private overload(e: Expr, fn: string, target: Expr | undefined, args: Expr[]): CelT {
    const label = OPERATORS[fn] ?? fn;
    const where = target && !OPERATORS[fn] ? this.nameAt(e, fn) : this.at(e);
    const group = this.env.funcs.find(fn);
    if (!group) {
      const names = new Set([...this.env.funcs].filter((f) => (f.target !== undefined) === (target !== undefined)).map((f) => f.name));
      return this.fail(where, `unknown ${target ? 'method' : 'function'} '${fn}'${suggest(fn, names)}`);
    }
    const tt = target && this.type(target);
    const at = args.map((a) => this.type(a));
    const all = [...group];
    const shaped = all.filter((f) => (f.target !== undefined) === (target !== undefined) && f.arguments.length === args.length);
    if (shaped.length === 0) {
      const forms = all.slice(0, 4).map(signature).join(', ');
      return this.fail(where, `'${label}' is not called like this; it takes ${forms}${all.length > 4 ? ', …' : ''}`);
    }
    const fits = shaped.filter((f) => (!tt || fitsType(tt, f.target!)) && at.every((t, i) => fitsType(t, f.arguments[i]!)));
    if (fits.length === 0) {
      const applied = `(${at.map(show).join(', ')})`;
      return this.fail(where, tt ? `no method '${label}' on ${show(tt)} takes ${applied}` : `no matching overload for '${label}' applied to ${applied}`);
    }
    this.constantArgument(fn, target, args);
    return common(fits.map((f) => fromCel(f.result)));
  }

  /** A regular expression, timestamp or duration given as a literal is tried now, not on every record. */
  private constantArgument(fn: string, target: Expr | undefined, args: Expr[]): void {
    const probe = fn === 'matches' && target ? '"".matches(v)' : (fn === 'timestamp' || fn === 'duration') && !target ? `${fn}(v)` : undefined;
    const arg = args[0];
    if (probe === undefined || args.length !== 1 || arg?.exprKind.case !== 'constExpr' || arg.exprKind.value.constantKind.case !== 'stringValue') return;
    const v = arg.exprKind.value.constantKind.value;
    const { run, isCelError } = celModules().cel;
    const r = run(probe, { v });
    if (isCelError(r)) this.fail(this.at(arg), fn === 'matches' ? `bad regular expression: ${r.message}` : `bad ${fn} ${JSON.stringify(v)}: ${CONSTANT_FORMS[fn]}`);
  }

  private comprehension(c: Extract<Expr['exprKind'], { case: 'comprehensionExpr' }>['value']): CelT {
    const range = this.type(c.iterRange!);
    let first: CelT;
    let second: CelT = DYN;
    switch (range.k) {
      case 'list': [first, second] = c.iterVar2 ? [INT, range.elem] : [range.elem, DYN]; break;
      case 'map': [first, second] = [range.key, range.value]; break;
      case 'struct': first = STRING; break;
      case 'dyn': first = DYN; break;
      default: return this.fail(this.start(c.iterRange!), `${show(range)} cannot be iterated over`);
    }
    const scope = new Map<string, CelT>([[c.accuVar, this.type(c.accuInit!)], [c.iterVar, first]]);
    if (c.iterVar2) scope.set(c.iterVar2, second);
    this.scopes.push(scope);
    this.type(c.loopCondition!);
    this.type(c.loopStep!);
    const result = this.type(c.result!);
    this.scopes.pop();
    return result;
  }
}

function constType(c: Constant): CelT {
  switch (c.constantKind.case) {
    case 'boolValue': return BOOL;
    case 'int64Value': return INT;
    case 'uint64Value': return { k: 'uint' };
    case 'doubleValue': return DOUBLE;
    case 'stringValue': return STRING;
    case 'bytesValue': return { k: 'bytes' };
    case 'nullValue': return NULL;
    case 'durationValue': return DURATION;
    case 'timestampValue': return TIMESTAMP;
    default: return DYN;
  }
}

/** `a.b.c` as a dotted name, when the expression is only identifiers and field selections. */
function qualifiedName(e: Expr): string | undefined {
  if (e.exprKind.case === 'identExpr') return e.exprKind.value.name;
  if (e.exprKind.case !== 'selectExpr' || e.exprKind.value.testOnly || !e.exprKind.value.operand) return undefined;
  const head = qualifiedName(e.exprKind.value.operand);
  return head === undefined ? undefined : `${head}.${e.exprKind.value.field}`;
}

/** The type several values share, or dyn when they differ. */
function common(ts: CelT[]): CelT {
  const first = ts[0];
  return first !== undefined && ts.every((t) => show(t) === show(first)) ? first : DYN;
}

/** Whether == can ever be true: CEL compares numbers across int, uint and double, and anything with null. */
function comparable(a: CelT, b: CelT): boolean {
  if (a.k === 'dyn' || b.k === 'dyn' || a.k === 'null' || b.k === 'null') return true;
  if (NUMERIC.has(a.k) && NUMERIC.has(b.k)) return true;
  const mapLike = (t: CelT) => t.k === 'map' || t.k === 'struct';
  return (mapLike(a) && mapLike(b)) || a.k === b.k;
}

function fitsType(t: CelT, p: CelType): boolean {
  if (t.k === 'dyn') return true;
  switch (p.kind) {
    case 'scalar': return p.scalar === 'dyn' || t.k === (p.scalar === 'null_type' ? 'null' : p.scalar);
    case 'list': return t.k === 'list' && fitsType(t.elem, p.element);
    case 'map': return t.k === 'map' || t.k === 'struct';
    default: return t.k === objectType(p.name);
  }
}

function fromCel(p: CelType): CelT {
  switch (p.kind) {
    case 'scalar': return p.scalar === 'null_type' ? NULL : { k: p.scalar };
    case 'list': return list(fromCel(p.element));
    case 'map': return map(fromCel(p.key), fromCel(p.value));
    default: return { k: objectType(p.name) };
  }
}

function objectType(name: string): 'timestamp' | 'duration' | 'dyn' {
  return name === 'google.protobuf.Timestamp' ? 'timestamp' : name === 'google.protobuf.Duration' ? 'duration' : 'dyn';
}

function signature(f: { name: string; target: CelType | undefined; arguments: readonly CelType[] }): string {
  const args = f.arguments.map((a) => show(fromCel(a))).join(', ');
  return f.target ? `${show(fromCel(f.target))}.${f.name}(${args})` : `${OPERATORS[f.name] ?? f.name}(${args})`;
}

/** " (did you mean 'x'?)" for a candidate one edit away (a letter changed, added, dropped or swapped). */
function suggest(name: string, candidates: Iterable<string>): string {
  for (const c of candidates) if (oneEditApart(name.toLowerCase(), c.toLowerCase())) return ` (did you mean '${c}'?)`;
  return '';
}

function oneEditApart(a: string, b: string): boolean {
  if (Math.abs(a.length - b.length) > 1) return false;
  let head = 0;
  while (head < a.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  return (x.length <= 1 && y.length <= 1) || (x.length === 2 && y.length === 2 && x[0] === y[1] && x[1] === y[0]);
}
