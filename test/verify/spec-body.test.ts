import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { isHttpLike, type HttpFlowRecord, type RecordResponse } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { compileBody } from '../../src/verify/spec/body.js';
import { SpecError } from '../../src/verify/spec/errors.js';

/** Issue 5, spec language: body assertions, checked on records decoded from the recorded captures. */
const AT = 'checks[0].expect.response.body';
const SPEC = 'spec.yaml';
const EXAMPLES = resolve('examples');
const DEMO_DOC = 'openapi/demo.yaml';
const PAYLOAD_SHAPE = 'pcaps/verify/payload-shape.pcap';

const http = async (f: string, bodyLimit?: number): Promise<HttpFlowRecord[]> =>
  (await analyzeFile(f, { bodyLimit })).records!.filter((r): r is HttpFlowRecord => isHttpLike(r) && r.response !== undefined);
const compile = (spec: unknown, dir = EXAMPLES) => compileBody(spec, AT, dir, SPEC);
const checkResponse = (spec: unknown, r: HttpFlowRecord, dir?: string) => compile(spec, dir).check(r.response!, r);
const byPath = (fs: HttpFlowRecord[], method: string, path: string, status?: number): HttpFlowRecord[] =>
  fs.filter((r) => r.request!.method === method && r.request!.path === path && (status === undefined || r.response!.status === status));
/** A real record with its response body replaced: for bodies the captures do not hold. */
const withBody = (r: HttpFlowRecord, response: Partial<RecordResponse>): HttpFlowRecord => ({ ...r, response: { ...r.response!, ...response } });
const specError = (f: () => unknown): SpecError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return e as SpecError;
  }
  throw new Error('expected a SpecError');
};

let demo: HttpFlowRecord[];
let tmp: string;

/** The parts of an OpenAPI document the variants below edit; the rest passes through untouched. */
interface OaSchema { [keyword: string]: unknown; properties?: Record<string, OaSchema>; required?: string[]; nullable?: boolean }
interface OaResponse { description: string; content?: Record<string, { schema?: OaSchema }> }
interface OaOperation { responses: Record<string, OaResponse> }
interface OaPathItem {
  get?: OaOperation;
  post?: OaOperation;
  delete?: OaOperation;
  servers?: { url: string; variables?: Record<string, { default: string }> }[];
}
interface OaDocument { openapi: string; paths: Record<string, OaPathItem>; components: { schemas: Record<string, OaSchema> } }

/** Writes a modified copy of the demo OpenAPI document to the temp dir; returns its name there. */
const demoVariant = (name: string, edit: (doc: OaDocument) => void, version?: string): string => {
  const doc: OaDocument = parse(readFileSync(join(EXAMPLES, DEMO_DOC), 'utf8'));
  edit(doc);
  if (version) doc.openapi = version;
  writeFileSync(join(tmp, name), stringify(doc));
  return name;
};

beforeAll(async () => {
  demo = await http('pcaps/demo/demo.pcap');
  tmp = mkdtempSync(join(tmpdir(), 'tapwire-spec-body-'));
});

describe('OpenAPI conformance', () => {
  it('every response and request of both demo captures conforms to examples/openapi/demo.yaml', async () => {
    const check = compile({ openapi: DEMO_DOC });
    for (const f of ['pcaps/demo/demo.pcap', 'pcaps/demo/demo-fixed.pcap']) {
      const fs = await http(f);
      expect(fs.map((r) => `${r.request!.method} ${r.request!.path} ${r.response!.status}`).sort()).toEqual(expect.arrayContaining(['GET /orders/42 200', 'POST /checkout 200', 'POST /payments 201', 'POST /payments 503']));
      for (const r of fs) {
        expect(check.check(r.response!, r), `${f} ${r.id}`).toEqual({ ok: true, problems: [] });
        expect(check.check(r.request!, r), `${f} ${r.id} request`).toEqual({ ok: true, problems: [] });
      }
    }
  });

  it('a stricter document makes the same responses fail, naming the JSON path and the value', () => {
    const strict = demoVariant('strict.yaml', (d) => {
      d.components.schemas.Order.required!.push('currency');
      d.components.schemas.Order.properties!.total = { type: 'number' };
      delete d.paths['/payments'].post!.responses['503'];
    });
    const order = byPath(demo, 'GET', '/orders/42')[0]!;
    expect(checkResponse({ openapi: strict }, order, tmp)).toEqual({
      ok: false, problems: ['$.currency: missing (required)', '$.total: expected number, got string "99.50"'],
    });
    const failed = byPath(demo, 'POST', '/payments', 503);
    expect(failed).toHaveLength(3);
    for (const r of failed) expect(checkResponse({ openapi: strict }, r, tmp).problems).toEqual(['POST /payments → 503 is not documented']);
    // The 201 that followed is still documented and conforms.
    expect(checkResponse({ openapi: strict }, byPath(demo, 'POST', '/payments', 201)[0]!, tmp).ok).toBe(true);
  });

  it('undocumented paths, methods and media types are problems; server base paths are honoured', () => {
    const order = byPath(demo, 'GET', '/orders/42')[0]!;
    const checkout = byPath(demo, 'POST', '/checkout')[0]!;
    const noCheckout = demoVariant('no-checkout.yaml', (d) => delete d.paths['/checkout']);
    expect(checkResponse({ openapi: noCheckout }, checkout, tmp).problems).toEqual(['POST /checkout is not documented']);
    const noGet = demoVariant('no-get.yaml', (d) => (d.paths['/orders/{id}'].delete = d.paths['/orders/{id}'].get, delete d.paths['/orders/{id}'].get));
    expect(checkResponse({ openapi: noGet }, order, tmp).problems).toEqual(['GET /orders/{id} is not documented']);
    const based = demoVariant('based.yaml', (d) => (d.paths['/orders/{id}'].servers = [{ url: 'http://127.0.0.2:8080/{version}', variables: { version: { default: 'v1' } } }]));
    expect(checkResponse({ openapi: based }, order, tmp).problems).toEqual(['GET /orders/42 is not documented']);
    expect(checkResponse({ openapi: based }, { ...order, request: { ...order.request!, path: '/v1/orders/42?fields=all' } }, tmp).ok).toBe(true);
    const textOnly = demoVariant('text.yaml', (d) => {
      const r = d.paths['/orders/{id}'].get!.responses['200'];
      r.content = { 'text/*': r.content!['application/json'] };
    });
    expect(checkResponse({ openapi: textOnly }, order, tmp).problems).toEqual(['GET /orders/{id} → 200: Content-Type application/json is not documented (documented: text/*)']);
  });

  it('looks up the status exactly, then by range, then default; media types exactly, then by wildcard', () => {
    const ranged = demoVariant('ranged.yaml', (d) => {
      const rs = d.paths['/payments'].post!.responses;
      rs['2XX'] = rs['201'];
      rs.default = rs['503'];
      rs['201'] = { description: 'wrong on purpose', content: { '*/*': { schema: { type: 'string' } } } };
      delete rs['503'];
    });
    const [captured] = byPath(demo, 'POST', '/payments', 201);
    expect(checkResponse({ openapi: ranged }, captured!, tmp).problems).toEqual(['$: expected string, got object']);
    for (const r of byPath(demo, 'POST', '/payments', 503)) expect(checkResponse({ openapi: ranged }, r, tmp).ok).toBe(true);
    const fallback = demoVariant('fallback.yaml', (d) => {
      const rs = d.paths['/payments'].post!.responses;
      delete rs['201'];
      rs['2XX'] = { description: 'any', content: { '*/*': {}, 'application/*': { schema: { $ref: '#/components/schemas/Order' } } } };
    });
    expect(checkResponse({ openapi: fallback }, captured!, tmp).problems).toContain('$.paymentId: not allowed (additionalProperties)');
  });

  it('OpenAPI 3.0 nullable and boolean exclusiveMinimum, OpenAPI 3.1 type lists', () => {
    const order = byPath(demo, 'GET', '/orders/42')[0]!;
    const nullCustomer = withBody(order, { body: '{"id":42,"customer":null,"total":"99.50","status":"pending"}' });
    expect(checkResponse({ openapi: DEMO_DOC }, nullCustomer).problems).toEqual(['$.customer: expected string, got null']);
    const nullable30 = demoVariant('nullable30.yaml', (d) => {
      d.components.schemas.Order.properties!.customer.nullable = true;
      // A property named like a data keyword is still a schema.
      d.components.schemas.Order.properties!.example = { $ref: '#/components/schemas/PaymentId', nullable: true };
    });
    expect(checkResponse({ openapi: nullable30 }, nullCustomer, tmp).ok).toBe(true);
    expect(checkResponse({ openapi: nullable30 }, withBody(order, { body: '{"id":42,"customer":"a","total":"99.50","status":"x","example":null}' }), tmp).ok).toBe(true);
    const nullableRef = demoVariant('nullable-ref.yaml', (d) => {
      d.components.schemas.Customer = { type: 'string', minLength: 1 };
      d.components.schemas.Order.properties!.customer = { $ref: '#/components/schemas/Customer', nullable: true };
    });
    expect(checkResponse({ openapi: nullableRef }, nullCustomer, tmp).ok).toBe(true);
    expect(checkResponse({ openapi: nullableRef }, withBody(order, { body: '{"id":42,"customer":"","total":"99.50","status":"pending"}' }), tmp).problems)
      .toEqual(['$.customer: must NOT have fewer than 1 characters, got string ""']);
    // demo.yaml's Charge.amount has `minimum: 0, exclusiveMinimum: true` (3.0): a zero amount fails.
    const checkout = byPath(demo, 'POST', '/checkout')[0]!;
    const zero = { ...checkout, request: { ...checkout.request!, body: '{"orderId":42,"amount":0,"currency":"EUR"}' } };
    expect(compile({ openapi: DEMO_DOC }).check(zero.request, zero).problems).toEqual(['$.amount: must be > 0, got number 0']);
    const v31 = demoVariant('v31.yaml', (d) => {
      d.components.schemas.Charge.properties!.amount = { type: 'number', exclusiveMinimum: 0 };
      d.components.schemas.Order.properties!.customer = { type: ['string', 'null'] };
    }, '3.1.0');
    expect(checkResponse({ openapi: v31 }, nullCustomer, tmp).ok).toBe(true);
    expect(compile({ openapi: v31 }, tmp).check(zero.request, zero).problems).toEqual(['$.amount: must be > 0, got number 0']);
    for (const r of demo) expect(checkResponse({ openapi: v31 }, r, tmp).ok).toBe(true);
  });
});

describe('JSONPath assertions on real bodies', () => {
  const one = (method: string, path: string, status?: number) => byPath(demo, method, path, status)[0]!;

  it('pass on what the demo responses hold', () => {
    const spec = {
      json: [
        { path: '$.status', equals: 'paid' },
        { path: '$.paymentId', exists: true, matches: '^pay_\\d{6}$', length: 10 },
        { path: '$.attempts', type: 'integer', range: { min: 1, max: 4 } },
        { path: '$.error', exists: false },
        { path: '$.*', type: ['string', 'number'] },
      ],
    };
    expect(checkResponse(spec, one('POST', '/checkout'))).toEqual({ ok: true, problems: [] });
  });

  it('fail naming each selected value that does not hold', () => {
    const order = one('GET', '/orders/42');
    expect(checkResponse({ json: [
      { path: '$.total', type: 'number' },
      { path: '$.status', equals: 'paid' },
      { path: '$.customer', matches: '^[^@]+@' },
      { path: '$.customer', length: { atLeast: 6 } },
      { path: '$.id', range: { max: 10 } },
      { path: '$.items[*].qty', type: 'number' },
      { path: '$.id', exists: false },
    ] }, order).problems).toEqual([
      '$.total: expected number, got string "99.50"',
      '$.status: expected "paid", got string "pending"',
      '$.customer: expected a string matching /^[^@]+@/, got string "alice"',
      '$.customer: expected length >= 6, got length 5',
      '$.id: expected a number <= 10, got number 42',
      '$.items[*].qty: expected a value, found none',
      '$.id: expected no value, got number 42',
    ]);
    // Wildcards name the concrete path of each value.
    expect(checkResponse({ json: [{ path: '$..*', type: 'number' }] }, order).problems).toEqual([
      '$.customer: expected number, got string "alice"', '$.total: expected number, got string "99.50"', '$.status: expected number, got string "pending"',
    ]);
  });

  it('selects the root of any document, null included', () => {
    const nullBody = withBody(one('GET', '/orders/42'), { body: 'null' });
    expect(checkResponse({ json: [{ path: '$', type: 'null' }, { path: '$.id', exists: false }] }, nullBody).ok).toBe(true);
    expect(checkResponse({ json: [{ path: '$', equals: {} }] }, nullBody).problems).toEqual(['$: expected {}, got null']);
  });

  it('reports at most 10 problems per body', () => {
    const items = JSON.stringify({ items: Array.from({ length: 15 }, (_, i) => ({ qty: String(i) })) });
    const { problems } = checkResponse({ json: [{ path: '$.items[*].qty', type: 'integer' }] }, withBody(one('GET', '/orders/42'), { body: items }));
    expect(problems).toHaveLength(10);
    expect(problems[0]).toBe('$.items[0].qty: expected integer, got string "0"');
    expect(problems[9]).toBe('… and 6 more');
  });
});

describe('JSON Schema', () => {
  it('inline, and from a YAML file relative to the spec', () => {
    const order = byPath(demo, 'GET', '/orders/42')[0]!;
    const schema = { type: 'object', required: ['id'], properties: { id: { type: 'integer' }, total: { type: 'string', pattern: '^\\d+\\.\\d{2}$' } } };
    expect(checkResponse({ schema }, order).ok).toBe(true);
    expect(checkResponse({ schema: { ...schema, properties: { id: { type: 'string' } }, required: ['id', 'createdAt'] } }, order).problems)
      .toEqual(['$.createdAt: missing (required)', '$.id: expected string, got number 42']);
    mkdirSync(join(tmp, 'schemas'), { recursive: true });
    writeFileSync(join(tmp, 'schemas/order.yaml'), stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema, properties: { ...schema.properties, status: { enum: ['paid'] } } }));
    expect(checkResponse({ schemaFile: 'schemas/order.yaml' }, order, tmp).problems).toEqual(['$.status: expected one of "paid", got string "pending"']);
  });

  it('checks formats', () => {
    const order = byPath(demo, 'GET', '/orders/42')[0]!;
    const schema = { properties: { created: { type: 'string', format: 'date-time' } } };
    expect(checkResponse({ schema }, withBody(order, { body: '{"created":"2026-11-21T10:00:00Z"}' })).ok).toBe(true);
    expect(checkResponse({ schema }, withBody(order, { body: '{"created":"21/11/2026"}' })).problems).toEqual(['$.created: expected format date-time, got string "21/11/2026"']);
  });
});

describe('bodies that are not JSON, cut, or missing', () => {
  const order = () => byPath(demo, 'GET', '/orders/42')[0]!;
  const spec = { json: [{ path: '$.id', exists: true }] };

  it('a body that does not parse as its declared Content-Type is a problem', () => {
    const html = withBody(order(), { body: '<html><body>Internal error</body></html>' });
    const want = 'response body is not valid JSON (Content-Type application/json): Unexpected token < at position 0';
    expect(checkResponse(spec, html)).toEqual({ ok: false, problems: [want] });
    expect(checkResponse({ openapi: DEMO_DOC }, html).problems).toEqual([want]);
    expect(checkResponse({ contentType: 'application/json' }, html).problems).toEqual([want]);
    expect(checkResponse(spec, withBody(order(), { body: '{"id":42,}' })).problems).toEqual(['response body is not valid JSON (Content-Type application/json): Unexpected token } at position 9']);
    expect(checkResponse(spec, withBody(order(), { body: '{"id":42' })).problems).toEqual(['response body is not valid JSON (Content-Type application/json): Unexpected end of input']);
    expect(checkResponse(spec, withBody(order(), { body: Buffer.from([0x7b, 0xff, 0xfe]).toString('base64'), bodyEncoding: 'base64' })).problems)
      .toEqual(['response body is not valid JSON (Content-Type application/json): not UTF-8 text']);
  });

  it('checks the Content-Type', () => {
    const text = withBody(order(), { headers: { ...order().response!.headers, 'content-type': 'text/html; charset=utf-8' } });
    expect(checkResponse(spec, text).problems).toEqual(['response Content-Type is text/html, not JSON']);
    expect(checkResponse({ contentType: 'text/*' }, text).ok).toBe(true);
    expect(checkResponse({ contentType: 'application/json' }, order()).ok).toBe(true);
    expect(checkResponse({ contentType: 'application/xml' }, order()).problems).toEqual(['response Content-Type is application/json, expected application/xml']);
  });

  it('a body cut at --body-limit is inconclusive, unless the part seen decides', async () => {
    const cut = byPath(await http('pcaps/demo/demo.pcap', 20), 'GET', '/orders/42')[0]!;
    expect(cut.response!.bodyTruncated).toBe(true);
    for (const s of [spec, { schema: { type: 'object' } }, { openapi: DEMO_DOC }]) {
      const v = checkResponse(s, cut);
      expect(v).toEqual({ ok: false, problems: [], unknown: 'response body is cut at the body limit: its JSON cannot be checked whole' });
    }
    // The status is documented or not whatever the body holds.
    const strict = demoVariant('no-200.yaml', (d) => delete d.paths['/orders/{id}'].get!.responses['200']);
    expect(checkResponse({ openapi: strict }, cut, tmp).problems).toEqual(['GET /orders/{id} → 200 is not documented']);
    // `<html>` is not JSON however it goes on.
    expect(checkResponse(spec, withBody(cut, { body: '<html><body>Internal' })).problems).toEqual(['response body is not valid JSON (Content-Type application/json): Unexpected token < at position 0']);
  });

  it('a body not captured is inconclusive; an empty one is not JSON', () => {
    expect(checkResponse(spec, withBody(order(), { body: undefined, bodySize: 63 }))).toEqual({ ok: false, problems: [], unknown: 'response body was not captured' });
    expect(checkResponse(spec, withBody(order(), { body: undefined, bodySize: 0 })).problems).toEqual(['response body is empty, not JSON (Content-Type application/json)']);
    expect(checkResponse({ openapi: DEMO_DOC }, withBody(order(), { body: undefined, bodySize: 0 })).problems).toEqual(['GET /orders/{id} → 200: response body is empty (documented: application/json)']);
  });
});

describe('spec errors name the spec file, the field and what is wrong', () => {
  it('missing files', () => {
    expect(specError(() => compile({ openapi: 'openapi/nope.yaml' })).message).toBe(`${SPEC}: ${AT}.openapi: openapi/nope.yaml: cannot read ${join(EXAMPLES, 'openapi/nope.yaml')}: no such file`);
    expect(specError(() => compile({ schemaFile: 'schemas/nope.json' })).message).toBe(`${SPEC}: ${AT}.schemaFile: schemas/nope.json: cannot read ${join(EXAMPLES, 'schemas/nope.json')}: no such file`);
  });

  it('YAML errors, with their line', () => {
    writeFileSync(join(tmp, 'bad.yaml'), 'openapi: 3.0.3\npaths:\n  /x: [1, 2\ninfo: {}\n');
    const e = specError(() => compile({ openapi: 'bad.yaml' }, tmp));
    expect(e.at).toBe(`${AT}.openapi`);
    expect(e.message).toMatch(/^spec\.yaml: checks\[0\]\.expect\.response\.body\.openapi: bad\.yaml: YAML error: .* at line 4, column 1$/);
  });

  it('documents that are not OpenAPI 3', () => {
    writeFileSync(join(tmp, 'swagger.yaml'), 'swagger: "2.0"\ninfo: { title: x, version: "1" }\npaths: {}\n');
    expect(specError(() => compile({ openapi: 'swagger.yaml' }, tmp)).message).toBe(`${SPEC}: ${AT}.openapi: swagger.yaml: not an OpenAPI 3.0 or 3.1 document (swagger 2.0 is OpenAPI 2)`);
    writeFileSync(join(tmp, 'list.json'), '[1, 2]');
    expect(specError(() => compile({ openapi: 'list.json' }, tmp)).message).toContain('list.json: not an OpenAPI 3.0 or 3.1 document (not a mapping)');
    expect(specError(() => compile({ openapi: demoVariant('v4.yaml', () => {}, '4.0.0') }, tmp)).message).toContain('v4.yaml: not an OpenAPI 3.0 or 3.1 document (openapi: "4.0.0")');
  });

  it('invalid schemas, inline, in a file and in an OpenAPI document', () => {
    expect(specError(() => compile({ schema: { type: 'object', properties: { id: { type: 'integr' } } } })).message)
      .toMatch(/^spec\.yaml: checks\[0\]\.expect\.response\.body\.schema: schema: invalid JSON Schema: \/properties\/id\/type must be/);
    writeFileSync(join(tmp, 'bad-schema.json'), JSON.stringify({ required: 'id' }));
    expect(specError(() => compile({ schemaFile: 'bad-schema.json' }, tmp)).message).toBe(`${SPEC}: ${AT}.schemaFile: bad-schema.json: invalid JSON Schema: /required must be array`);
    const badComponent = demoVariant('bad-component.yaml', (d) => (d.components.schemas.Unused = { type: 'object', properties: { n: { minimum: 'zero' } } }));
    expect(specError(() => compile({ openapi: badComponent }, tmp)).message).toBe(`${SPEC}: ${AT}.openapi: bad-component.yaml /components/schemas/Unused: invalid JSON Schema: /properties/n/minimum must be number`);
    const badRef = demoVariant('bad-ref.yaml', (d) => (d.paths['/checkout'].post!.responses['200'].content!['application/json'].schema = { $ref: '#/components/schemas/Nope' }));
    expect(specError(() => compile({ openapi: badRef }, tmp)).message).toMatch(/^spec\.yaml: checks\[0\]\.expect\.response\.body\.openapi: bad-ref\.yaml \/paths\/~1checkout\/post\/responses\/200\/content\/application~1json\/schema: invalid JSON Schema: can't resolve reference #\/components\/schemas\/Nope/);
    // 3.0's boolean exclusiveMinimum is not 3.1's.
    expect(specError(() => compile({ openapi: demoVariant('v31-bool.yaml', () => {}, '3.1.0') }, tmp)).message).toContain('v31-bool.yaml /components/schemas/Charge: invalid JSON Schema: /properties/amount/exclusiveMinimum must be number');
  });

  it('malformed assertions', () => {
    const cases: [unknown, string, string][] = [
      ['body', AT, 'expected a mapping'],
      [{}, AT, 'empty'],
      [{ jsn: [] }, `${AT}.jsn`, 'unknown key'],
      [{ json: { path: '$.a' } }, `${AT}.json`, 'expected a list'],
      [{ json: [{ path: 'a', exists: true }] }, `${AT}.json[0].path`, 'starting with $'],
      [{ json: [{ path: '$.a' }] }, `${AT}.json[0]`, 'needs an operator'],
      [{ json: [{ path: '$.a', typ: 'string' }] }, `${AT}.json[0].typ`, 'unknown key'],
      [{ json: [{ path: '$.items[?(@.qty > 1)]', exists: true }] }, `${AT}.json[0].path`, 'filter and script expressions'],
      [{ json: [{ path: '$.a', type: 'text' }] }, `${AT}.json[0].type`, 'expected one of string'],
      [{ json: [{ path: '$.a', matches: '(' }] }, `${AT}.json[0].matches`, 'Invalid regular expression'],
      [{ json: [{ path: '$.a', range: { min: 5, max: 1 } }] }, `${AT}.json[0].range`, 'empty range'],
      [{ json: [{ path: '$.a', length: { least: 1 } }] }, `${AT}.json[0].length.least`, 'unknown key'],
      [{ json: [{ path: '$.a', exists: false, equals: 1 }] }, `${AT}.json[0].exists`, 'cannot be combined'],
      [{ contentType: 'json' }, `${AT}.contentType`, 'expected a media type'],
      [{ contentType: 'text/html', json: [{ path: '$', exists: true }] }, `${AT}.contentType`, 'is not JSON'],
      [{ schema: 'object' }, `${AT}.schema`, 'expected a JSON Schema object'],
      [{ schema: { $schema: 'http://json-schema.org/draft-04/schema#' } }, `${AT}.schema`, 'unsupported $schema'],
    ];
    for (const [spec, at, what] of cases) {
      const e = specError(() => compile(spec));
      expect(e.at, JSON.stringify(spec)).toBe(at);
      expect(e.message, JSON.stringify(spec)).toContain(what);
      expect(e.message.startsWith(`${SPEC}: ${at}: `)).toBe(true);
    }
  });
});

/** A JSON Schema node, as far as the description check walks it. */
interface SchemaNode { description?: string; properties?: Record<string, SchemaNode>; oneOf?: SchemaNode[]; $defs?: Record<string, SchemaNode> }

describe('schema/tapwire-spec-body.schema.json', () => {
  const schema = JSON.parse(readFileSync('schema/tapwire-spec-body.schema.json', 'utf8'));
  const validate = new Ajv2020.default({ strict: true, allowUnionTypes: true }).compile(schema);

  it('accepts the assertions compileBody accepts and rejects what it rejects', () => {
    const good = {
      json: [
        { path: '$.status', equals: 'paid' }, { path: '$.items[*].qty', type: 'number' }, { path: '$.id', exists: true },
        { path: '$.email', matches: '^[^@]+@' }, { path: '$.items', length: { atLeast: 1 } }, { path: '$.total', range: { min: 0, max: 1000 } },
      ],
      schema: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } },
      openapi: DEMO_DOC,
      contentType: 'application/json',
    };
    expect(validate(good), JSON.stringify(validate.errors)).toBe(true);
    expect(() => compile(good)).not.toThrow();
    for (const bad of [{}, { jsn: [] }, { json: [{ path: '$.a' }] }, { json: [{ path: 'a', exists: true }] }, { contentType: 'json' }, { json: [{ path: '$.a', length: { least: 1 } }] }]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
      expect(() => compile(bad), JSON.stringify(bad)).toThrow(SpecError);
    }
  });

  it('describes every property', () => {
    const missing: string[] = [];
    const walk = (node: SchemaNode | undefined, at: string): void => {
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node.properties ?? {})) {
        if (!v.description) missing.push(`${at}.${k}`);
        walk(v, `${at}.${k}`);
        for (const alt of v.oneOf ?? []) walk(alt, `${at}.${k}`);
      }
      for (const [k, v] of Object.entries(node.$defs ?? {})) walk(v, `$defs.${k}`);
    };
    walk(schema, '$');
    expect(schema.$id).toBe('tapwire-spec-body.schema.json');
    expect(missing).toEqual([]);
  });
});

describe('the users-api capture (pcaps/verify/payload-shape.pcap)', () => {
  let users: HttpFlowRecord[];
  let doc: string;
  beforeAll(async () => {
    users = await http(PAYLOAD_SHAPE);
    doc = 'users.yaml';
    writeFileSync(join(tmp, doc), stringify({
      openapi: '3.1.0',
      info: { title: 'users-api', version: '1' },
      servers: [{ url: 'http://127.0.0.32:8080' }],
      paths: { '/users/{id}': { get: { responses: { 200: { description: 'a user', content: { 'application/json': { schema: { $ref: '#/components/schemas/User' } } } } } } } },
      components: { schemas: { User: { type: 'object', required: ['id', 'name', 'created'], properties: { id: { type: 'integer' }, name: { type: 'string' }, created: { type: 'string', format: 'date-time' }, age: { type: 'integer', minimum: 0 } } } } },
    }));
  });
  const problemsOf = (spec: unknown): Record<string, string[]> =>
    Object.fromEntries(users.map((r) => [r.request!.path, compile(spec, tmp).check(r.response!, r).problems]).filter(([, p]) => p!.length > 0));
  const html = 'response body is not valid JSON (Content-Type application/json): Unexpected token < at position 0';

  it('finds the responses that break the documented shape, and only them', () => {
    expect(users).toHaveLength(10);
    expect(problemsOf({ openapi: doc })).toEqual({
      '/users/4': ['$.id: expected integer, got string "4"'],
      '/users/7': ['$.created: expected string, got number 1795255200'],
      '/users/9': ['$.created: expected format date-time, got string "21/11/2026"'],
      '/users/10': [html],
    });
  });

  it('the same with JSONPath assertions and an inline schema', () => {
    expect(problemsOf({ json: [{ path: '$.id', type: 'integer' }, { path: '$.created', matches: '^\\d{4}-\\d{2}-\\d{2}T' }] })).toEqual({
      '/users/4': ['$.id: expected integer, got string "4"'],
      '/users/7': ['$.created: expected a string matching /^\\d{4}-\\d{2}-\\d{2}T/, got number 1795255200'],
      '/users/9': ['$.created: expected a string matching /^\\d{4}-\\d{2}-\\d{2}T/, got string "21/11/2026"'],
      '/users/10': [html],
    });
    expect(Object.keys(problemsOf({ schema: { properties: { created: { format: 'date-time' } } } }))).toEqual(['/users/9', '/users/10']);
  });

  it('an undocumented status', () => {
    const only404 = 'users-404.yaml';
    writeFileSync(join(tmp, only404), stringify({ openapi: '3.0.3', info: { title: 'u', version: '1' }, paths: { '/users/{id}': { get: { responses: { 404: { description: 'none' } } } } } }));
    expect(new Set(Object.values(problemsOf({ openapi: only404 })).flat())).toEqual(new Set(['GET /users/{id} → 200 is not documented']));
  });
});
