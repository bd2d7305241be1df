/** Body assertions, part 2: JSON Schema with ajv, spec-relative YAML/JSON files, and ajv errors as problems. */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import Ajv2019 from 'ajv/dist/2019.js';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parseDocument } from 'yaml';
import { describe, jsonPathOf, type Fail } from './body-json.js';

export type { ValidateFunction };
export type Dialect = 'draft-07' | '2019-09' | '2020-12';
type AjvInstance = InstanceType<typeof Ajv.default>;

/**
 * A fresh ajv per schema or document: schemas may carry `$id`s, which one instance registers
 * only once. strict: false because OpenAPI adds keywords (example, discriminator, xml) that
 * JSON Schema does not know; ajv-formats for date-time, and OpenAPI's int32, int64, byte …
 */
export function newAjv(dialect: Dialect): AjvInstance {
  const opts = { strict: false, allErrors: true, logger: false as const };
  const ajv = dialect === '2020-12' ? new Ajv2020.default(opts) : dialect === '2019-09' ? new Ajv2019.default(opts) : new Ajv.default(opts);
  addFormats.default(ajv);
  return ajv;
}

/** Picks the dialect from `$schema`; without one, 2020-12 (also OpenAPI 3.1's). */
function dialectOf(schema: unknown, at: string, fail: Fail): Dialect {
  const s = typeof schema === 'object' && schema !== null ? (schema as { $schema?: unknown }).$schema : undefined;
  if (s === undefined || (typeof s === 'string' && s.includes('2020-12'))) return '2020-12';
  if (typeof s === 'string' && s.includes('2019-09')) return '2019-09';
  if (typeof s === 'string' && s.includes('draft-07')) return 'draft-07';
  return fail(at, `unsupported $schema ${JSON.stringify(s)} (draft-07, 2019-09 and 2020-12 are)`);
}

/** Compiles a JSON Schema, naming what is wrong with it; `label` is the file, if any. */
export function compileSchema(schema: unknown, at: string, fail: Fail, label = 'schema'): ValidateFunction {
  if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
    return fail(at, `${label}: expected a JSON Schema object`);
  }
  const ajv = newAjv(dialectOf(schema, at, fail));
  return compileWith(ajv, schema, at, fail, label);
}

/** Meta-validates first, for messages that say where in the schema; then compiles (refs resolve here). */
export function compileWith(ajv: AjvInstance, schema: object | boolean, at: string, fail: Fail, label: string, ref?: string): ValidateFunction {
  if (!ajv.validateSchema(schema)) {
    const why = (ajv.errors ?? []).slice(0, 3).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    return fail(at, `${label}: invalid JSON Schema: ${why}`);
  }
  try {
    return ajv.compile(ref === undefined ? schema : { $ref: ref });
  } catch (e) {
    return fail(at, `${label}: invalid JSON Schema: ${(e as Error).message}`);
  }
}

/** What is built from a file, per file version: a spec with many checks on one document loads it once. */
const built = new Map<string, unknown>();

/**
 * Loads a YAML or JSON file (YAML 1.2 reads both) relative to the spec's directory and builds
 * something from it, cached by path, size and modification time.
 */
export function fromFile<T>(file: unknown, baseDir: string, at: string, fail: Fail, kind: string, build: (doc: unknown, rel: string) => T): T {
  if (typeof file !== 'string' || file === '') return fail(at, 'expected a file path relative to the spec file');
  const abs = resolve(baseDir, file);
  let text: string;
  let key: string;
  try {
    const st = statSync(abs);
    key = `${kind}\0${abs}\0${st.size}\0${st.mtimeMs}`;
    if (built.has(key)) return built.get(key) as T;
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(at, `${file}: cannot read ${abs}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const doc = parseDocument(text);
  const err = doc.errors[0];
  // yaml's message reads "<what> at line L, column C:" then an excerpt; keep the first line.
  if (err) return fail(at, `${file}: YAML error: ${err.message.split('\n')[0]!.replace(/:$/, '')}`);
  const value = build(doc.toJS({ maxAliasCount: 100 }), file);
  built.set(key, value);
  return value;
}

/** ajv errors as short problems naming the JSON path and the value found there. */
export function schemaProblems(errors: ErrorObject[] | null | undefined, data: unknown): string[] {
  let errs = errors ?? [];
  // anyOf/oneOf/allOf/if restate their branches' errors, and a nullable's `type: null` branch
  // (see body-openapi.ts) says nothing the other branch does not: keep them only when alone.
  const composite = (e: ErrorObject): boolean => ['anyOf', 'oneOf', 'allOf', 'if'].includes(e.keyword);
  if (errs.some((e) => !composite(e))) errs = errs.filter((e) => !composite(e));
  errs = errs.filter((e) => !(e.keyword === 'type' && e.params.type === 'null' && errs.some((o) => o !== e && o.instancePath === e.instancePath)));
  return [...new Set(errs.map((e) => problemOf(e, data)))];
}

function problemOf(e: ErrorObject, data: unknown): string {
  const tokens = e.instancePath.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  const where = jsonPathOf(tokens);
  const v = tokens.reduce<unknown>((o, t) => (o as Record<string, unknown> | undefined)?.[t], data);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'type':
      return `${where}: expected ${[p.type].flat().join(' or ')}, got ${describe(v)}`;
    case 'required':
      return `${jsonPathOf([...tokens, String(p.missingProperty)])}: missing (required)`;
    case 'additionalProperties':
      return `${jsonPathOf([...tokens, String(p.additionalProperty)])}: not allowed (additionalProperties)`;
    case 'enum':
      return `${where}: expected one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`;
    case 'const':
      return `${where}: expected ${JSON.stringify(p.allowedValue)}, got ${describe(v)}`;
    case 'format':
      return `${where}: expected format ${p.format}, got ${describe(v)}`;
    default:
      return `${where}: ${e.message ?? e.keyword}, got ${describe(v)}`;
  }
}
