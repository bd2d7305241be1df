import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { RECORDS } from '../../src/flows/protocols/index.js';

/**
 * schema/flow-record.schema.json (and its two siblings) against the single source of truth,
 * src/flows/record.ts, read with the TypeScript compiler API: every interface the schema
 * describes has exactly the schema's properties, with the same ones required, down through
 * nested objects and arrays. Then every golden record (test/golden/**\/*.jsonl) must validate.
 */

const SCHEMAS = ['flow-record.schema.json', 'flow-record-http.schema.json', 'flow-record-postgres.schema.json', 'flow-record-tls.schema.json'];
type Node = Record<string, unknown> & { properties?: Record<string, Node>; required?: string[]; allOf?: Node[]; $ref?: string; items?: Node | false };
const docs = new Map<string, Node>(SCHEMAS.map((f) => [f, JSON.parse(readFileSync(join('schema', f), 'utf8')) as Node]));

/** A `$ref` (local or to a sibling file) resolved to its schema node, with the file it is in. */
function deref(node: Node, file: string): { node: Node; file: string } {
  if (!node.$ref) return { node, file };
  const [target, pointer = ''] = node.$ref.split('#');
  const f = target || file;
  let at: unknown = docs.get(f);
  expect(at, `${file}: $ref to ${f}, which is not in schema/`).toBeDefined();
  for (const part of pointer.split('/').filter(Boolean)) at = (at as Record<string, unknown>)[part];
  expect(at, `${file}: $ref ${node.$ref} points nowhere`).toBeDefined();
  return deref(at as Node, f);
}

/** Properties and required names of a schema object, through $ref and allOf. */
function shape(node: Node, file: string): { props: Map<string, { node: Node; file: string }>; required: Set<string> } {
  const d = deref(node, file);
  const props = new Map<string, { node: Node; file: string }>();
  const required = new Set<string>(d.node.required ?? []);
  for (const sub of d.node.allOf ?? []) {
    const s = shape(sub, d.file);
    for (const [k, v] of s.props) props.set(k, v);
    for (const r of s.required) required.add(r);
  }
  for (const [k, v] of Object.entries(d.node.properties ?? {})) props.set(k, { node: v, file: d.file });
  return { props, required };
}

const program = ts.createProgram(['src/flows/record.ts', 'src/flows/protocols/index.ts'], { strict: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext });
const checker = program.getTypeChecker();
const recordFile = program.getSourceFile('src/flows/record.ts')!;
const exports = new Map(checker.getExportsOfModule(checker.getSymbolAtLocation(recordFile)!).map((s) => [s.name, s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s]));

function declared(name: string): ts.Type {
  const sym = exports.get(name);
  expect(sym, `src/flows/record.ts exports no ${name}`).toBeDefined();
  return checker.getDeclaredTypeOfSymbol(sym!);
}

/** The object type inside `T | undefined` or `T[]`, or undefined for primitives, unions of them and string maps. */
function objectType(t: ts.Type): ts.Type | undefined {
  const u = checker.getNonNullableType(t);
  if (u.isUnion() || !(u.flags & ts.TypeFlags.Object)) return undefined;
  if (checker.getIndexInfosOfType(u).length > 0 && checker.getPropertiesOfType(u).length === 0) return undefined;
  return u;
}

/** Compares a TS object type with a schema object, recursing into object and array properties. */
function compare(t: ts.Type, node: Node, file: string, where: string, seen: Set<ts.Type>): void {
  if (seen.has(t)) return;
  seen.add(t);
  const { props, required } = shape(node, file);
  const tsProps = checker.getPropertiesOfType(t);
  expect([...props.keys()].sort(), `${where}: schema properties vs the TypeScript type`).toEqual(tsProps.map((p) => p.name).sort());
  const tsRequired = tsProps.filter((p) => !(p.flags & ts.SymbolFlags.Optional)).map((p) => p.name).sort();
  expect([...required].sort(), `${where}: required properties`).toEqual(tsRequired);
  for (const p of tsProps) {
    const pt = checker.getTypeOfSymbol(p);
    const sub = props.get(p.name)!;
    const sn = deref(sub.node, sub.file);
    const nn = checker.getNonNullableType(pt);
    if (checker.isArrayType(nn) && sn.node.items) {
      const elem = objectType(checker.getTypeArguments(nn as ts.TypeReference)[0]!);
      const items = deref(sn.node.items, sn.file);
      if (elem && (items.node.properties || items.node.allOf)) compare(elem, items.node, items.file, `${where}.${p.name}[]`, seen);
      continue;
    }
    const obj = objectType(pt);
    if (obj && !checker.isTupleType(obj) && (sn.node.properties || sn.node.allOf)) compare(obj, sn.node, sn.file, `${where}.${p.name}`, seen);
  }
}

describe('flow record schema', () => {
  const top = docs.get('flow-record.schema.json')!;

  it('is draft 2020-12, like the spec schema', () => {
    for (const [f, d] of docs) expect(d.$schema, f).toBe('https://json-schema.org/draft/2020-12/schema');
  });

  it('describes each flow type of src/flows/record.ts, property by property, and nothing else', () => {
    const union = declared('FlowRecord');
    expect(union.isUnion()).toBe(true);
    const members = (union as ts.UnionType).types.map((m) => m.aliasSymbol?.name ?? m.symbol.name).sort();
    const refs = (top.oneOf as Node[]).map((r) => r.$ref!.replace('#/$defs/', '')).sort();
    expect(refs, 'the schema oneOf lists exactly the FlowRecord union').toEqual(members);
    for (const name of members) compare(declared(name), { $ref: `#/$defs/${name}` }, 'flow-record.schema.json', name, new Set());
    compare(declared('FlowEnvelope'), { $ref: '#/$defs/FlowEnvelope' }, 'flow-record.schema.json', 'FlowEnvelope', new Set());
  });

  it('names the protocols of the Protocol union and of the record registry', () => {
    const protocol = declared('Protocol');
    const names = (protocol as ts.UnionType).types.map((t) => (t as ts.StringLiteralType).value).sort();
    const env = (top.$defs as Record<string, Node>).FlowEnvelope!.properties!.protocol!;
    expect([...(env.enum as string[])].sort()).toEqual(names);
    expect(Object.keys(RECORDS).sort()).toEqual(names);
  });

  const ajv = new Ajv2020.default({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats.default(ajv);
  for (const [f, d] of docs) if (f !== 'flow-record.schema.json') ajv.addSchema(d, f);
  const validate = ajv.compile(top);
  const goldens = (readdirSync('test/golden', { recursive: true }) as string[]).filter((f) => f.endsWith('.jsonl')).sort();

  it('has golden records to validate', () => expect(goldens.length).toBeGreaterThan(30));
  for (const g of goldens) {
    it(`validates every record of test/golden/${g}`, () => {
      const lines = readFileSync(join('test/golden', g), 'utf8').split('\n').filter(Boolean);
      const bad: string[] = [];
      for (const [i, line] of lines.entries()) {
        if (!validate(JSON.parse(line))) bad.push(`line ${i + 1}: ${ajv.errorsText(validate.errors)}`);
        if (bad.length >= 5) break;
      }
      expect(bad).toEqual([]);
    });
  }
});
