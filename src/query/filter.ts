/**
 * The filter language shared by the API, `tapwire analyze --filter` and the MCP tools: a CEL
 * expression over one flow record (README "Filter language"), compiled once to a predicate.
 *
 *   compileFilter('http && response.status >= 500 && dst.name == "payment"')(record) → boolean
 *
 * Compiling checks the syntax (syntax.ts, for exact error positions), parses and plans with
 * @bufbuild/cel, and type-checks against the record's shape (check.ts): a bad expression is a
 * FilterError naming its position. Running never throws: an expression that fails on a record
 * (a field the record lacks, a division by zero) does not match it.
 */

import type { CelEnv } from '@bufbuild/cel';
import type { RE2JS } from '@bufbuild/re2';
import { celModules } from './cel.js';
import type { FlowRecord } from '../flows/index.js';
import { checkExpression } from './check.js';
import { FilterError } from './error.js';
import { checkSyntax } from './syntax.js';
import { VARIABLES } from './vars.js';

export { FilterError } from './error.js';

/** Longest accepted expression, in characters. */
export const MAX_FILTER_LENGTH = 4096;

/**
 * `matches` compiles its pattern on every call by default; with the same RE2 engine behind a
 * cache, a filter's patterns (almost always literals) compile once. Bounded: a hostile stream of
 * distinct patterns cannot grow it.
 */
const compiled = new Map<string, RE2JS>();
const re2 = {
  compile(pattern: string) {
    let m = compiled.get(pattern);
    if (!m) {
      if (compiled.size >= 256) compiled.clear();
      compiled.set(pattern, (m = celModules().re2.RE2JS.compile(pattern)));
    }
    return m;
  },
};

/** CEL's standard functions plus the strings extension (lowerAscii, replace, split, indexOf…), made on first use. */
let env: CelEnv | undefined;
function celEnvironment(): CelEnv {
  const { cel, ext } = celModules();
  return (env ??= cel.celEnv({ funcs: ext.strings, re2 }));
}
const TYPES = new Map(Object.entries(VARIABLES).map(([name, v]) => [name, v.type]));

export type FlowPredicate = (r: FlowRecord) => boolean;

export function compileFilter(expr: string): FlowPredicate {
  if (expr.length > MAX_FILTER_LENGTH) {
    throw new FilterError(expr, MAX_FILTER_LENGTH, `the expression is ${expr.length} characters long; the limit is ${MAX_FILTER_LENGTH}`);
  }
  const uncommented = checkSyntax(expr);
  let parsed;
  try {
    parsed = celModules().cel.parse(uncommented);
  } catch (e) {
    // The recogniser accepted what the parser did not: report the parser's own words and place.
    const at = (e as { location?: { start?: { offset?: number } } }).location?.start?.offset ?? 0;
    throw new FilterError(expr, at, e instanceof RangeError ? 'the expression nests too deeply' : (e as Error).message.replace(/^<input>:\d+:\d+: /, ''));
  }
  const { uses } = checkExpression(expr, parsed, celEnvironment(), TYPES);
  // One activation object, reused: the constants folded out of the expression, and each variable
  // it names, read from the current record when the evaluator first asks for it, once per record.
  const activation: Record<string, unknown> = foldConstants(parsed.expr);
  const evaluate = celModules().cel.plan(celEnvironment(), parsed);
  let current: FlowRecord;
  let generation = 0;
  for (const [name, use] of uses) {
    const v = VARIABLES[name]!;
    const only = use === 'all' ? undefined : use;
    let stamp = -1;
    let value: unknown;
    Object.defineProperty(activation, name, {
      enumerable: true,
      get: () => {
        if (stamp !== generation) {
          value = v.read(current, only);
          stamp = generation;
        }
        return value;
      },
    });
  }
  const evaluateIn = evaluate as (ctx: Record<string, unknown>) => unknown;
  return (r: FlowRecord): boolean => {
    current = r;
    generation++;
    // A field the record lacks is an error value inside the evaluator, and most records lack
    // some field a filter names: without stack traces those errors cost several times less.
    const traces = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return evaluateIn(activation) === true;
    } catch {
      return false;
    } finally {
      Error.stackTraceLimit = traces;
    }
  };
}

type Expr = ReturnType<typeof import('@bufbuild/cel').parse>['expr'];

/**
 * `timestamp("2026-11-21T10:00:00Z")` and `duration("200ms")` with a literal argument are worked
 * out once here (the evaluator would parse the text again for every record): each becomes a
 * variable named `@constN`, a name no expression can spell. Returns those variables' values.
 */
function foldConstants(root: Expr): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const visit = (e: Expr | undefined): void => {
    if (!e) return;
    const k = e.exprKind;
    switch (k.case) {
      case 'selectExpr': visit(k.value.operand); break;
      case 'listExpr': k.value.elements.forEach(visit); break;
      case 'structExpr': for (const en of k.value.entries) { if (en.keyKind.case === 'mapKey') visit(en.keyKind.value); visit(en.value); } break;
      case 'comprehensionExpr': [k.value.iterRange, k.value.accuInit, k.value.loopCondition, k.value.loopStep, k.value.result].forEach(visit); break;
      case 'callExpr': {
        const { function: fn, target, args } = k.value;
        const arg = args[0]?.exprKind;
        if ((fn === 'timestamp' || fn === 'duration') && !target && args.length === 1 && arg?.case === 'constExpr' && arg.value.constantKind.case === 'stringValue') {
          const name = `@const${Object.keys(values).length}`;
          values[name] = celModules().cel.run(`${fn}(v)`, { v: arg.value.constantKind.value });
          e.exprKind = { case: 'identExpr', value: { $typeName: 'cel.expr.Expr.Ident', name } };
          return;
        }
        visit(target);
        args.forEach(visit);
      }
    }
  };
  visit(root);
  return values;
}
