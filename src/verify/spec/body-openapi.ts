/**
 * Body assertions, part 3: conformance to an OpenAPI 3.0 or 3.1 document. Operation by method and
 * path template, response by status, media type by Content-Type, then the body against its schema.
 */
import { httpHalves, type FlowRecord } from '../../flows/index.js';
import { isJsonMedia, isRecord, mediaMatches, mediaType, readJson, type BodyHalf, type Fail } from './body-json.js';
import { compileWith, fromFile, newAjv, schemaProblems, type ValidateFunction } from './body-schema.js';

/** What one exchange shows against the document. */
export interface Verdict { problems: string[]; unknown?: string }

/** A Media Type Object's schema, compiled; undefined when the media type has none. */
type Content = Map<string, ValidateFunction | undefined>;
interface Operation { responses: Map<string, Content | undefined>; requestBody?: { required: boolean; content?: Content } }
interface Route { template: string; re: RegExp; params: number; operations: Map<string, Operation> }

export interface OpenApiCheck { check(half: BodyHalf, r: FlowRecord, which: 'request' | 'response'): Verdict }

/** OAS 3.0 §4.7.9 / 3.1 §4.8.9: the HTTP methods a Path Item can hold. */
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Where the document is registered in its ajv, so `#/components/schemas/…` refs resolve inside it. */
const DOC_ID = 'tapwire:openapi';

export function compileOpenApi(file: unknown, baseDir: string, at: string, fail: Fail): OpenApiCheck {
  const routes = fromFile(file, baseDir, at, fail, 'openapi', (doc, rel) => compileDocument(doc, rel, at, fail));
  return { check: (half, r, which) => checkExchange(routes, half, r, which) };
}

function compileDocument(doc: unknown, rel: string, at: string, fail: Fail): Route[] {
  const version = isRecord(doc) ? doc.openapi : undefined;
  if (!isRecord(doc) || typeof version !== 'string' || !/^3\.[01]\.?/.test(version)) {
    const found = !isRecord(doc) ? 'not a mapping' : version === undefined ? (doc.swagger ? `swagger ${doc.swagger} is OpenAPI 2` : 'no "openapi" field') : `openapi: ${JSON.stringify(version)}`;
    return fail(at, `${rel}: not an OpenAPI 3.0 or 3.1 document (${found})`);
  }
  const v30 = version.startsWith('3.0');
  const schemaDoc = (v30 ? from30(doc) : doc) as Record<string, unknown>;
  // 3.0 schemas are an extended subset of JSON Schema draft Wright-00 (OAS 3.0.3 §4.7.24), close
  // to draft-07 once from30 has rewritten nullable; 3.1 schemas are JSON Schema 2020-12 (§4.8.24).
  const ajv = newAjv(v30 ? 'draft-07' : '2020-12');
  ajv.addSchema(schemaDoc, DOC_ID, undefined, false);
  const cache = new Map<string, ValidateFunction>();
  const compileAt = (pointer: string): ValidateFunction => {
    const ref = `${DOC_ID}#${pointer.split('/').map((s) => encodeURIComponent(s)).join('/')}`;
    return cache.get(pointer) ?? cache.set(pointer, compileWith(ajv, resolvePointer(schemaDoc, pointer) as object, at, fail, `${rel} ${pointer}`, ref)).get(pointer)!;
  };
  // Unused component schemas are compiled too: a broken one is a broken document.
  for (const name of Object.keys(isRecord(schemaDoc.components) && isRecord(schemaDoc.components.schemas) ? schemaDoc.components.schemas : {})) {
    compileAt(`/components/schemas/${escapeToken(name)}`);
  }
  const deref = (node: unknown, pointer: string): { node: Record<string, unknown>; pointer: string } => {
    for (let hops = 0; isRecord(node) && typeof node.$ref === 'string' && hops < 20; hops++) {
      const ref = node.$ref;
      if (!ref.startsWith('#/')) fail(at, `${rel} ${pointer}: $ref ${ref}: only references within the document are supported`);
      pointer = decodeURIComponent(ref.slice(1));
      node = resolvePointer(schemaDoc, pointer);
      if (node === undefined) fail(at, `${rel}: $ref ${ref} does not resolve`);
    }
    return { node: isRecord(node) ? node : {}, pointer };
  };
  const content = (holder: Record<string, unknown>, pointer: string): Content | undefined => {
    if (!isRecord(holder.content) || Object.keys(holder.content).length === 0) return undefined;
    return new Map(Object.entries(holder.content).map(([type, media]) => {
      const mp = `${pointer}/content/${escapeToken(type)}`;
      return [mediaType(type)!, isRecord(media) && media.schema !== undefined ? compileAt(`${mp}/schema`) : undefined];
    }));
  };
  const routes: Route[] = [];
  for (const [template, item0] of Object.entries(isRecord(schemaDoc.paths) ? schemaDoc.paths : {})) {
    const item = deref(item0, `/paths/${escapeToken(template)}`);
    const operations = new Map<string, Operation>();
    for (const m of METHODS.filter((k) => isRecord(item.node[k]))) {
      const op = item.node[m] as Record<string, unknown>;
      const opPointer = `${item.pointer}/${m}`;
      const responses = new Map<string, Content | undefined>();
      for (const [status, resp0] of Object.entries(isRecord(op.responses) ? op.responses : {})) {
        const resp = deref(resp0, `${opPointer}/responses/${status}`);
        responses.set(status.toUpperCase(), content(resp.node, resp.pointer));
      }
      const rb = op.requestBody === undefined ? undefined : deref(op.requestBody, `${opPointer}/requestBody`);
      operations.set(m.toUpperCase(), { responses, requestBody: rb && { required: rb.node.required === true, content: content(rb.node, rb.pointer) } });
    }
    const bases = serverBases(item.node.servers ?? schemaDoc.servers);
    const pattern = template.split(/(\{[^}]*\})/).map((s) => (s.startsWith('{') ? '[^/]+' : escapeRe(s))).join('');
    routes.push({ template, re: new RegExp(`^(?:${bases.join('|')})${pattern}$`), params: (template.match(/\{/g) ?? []).length, operations });
  }
  // OAS §4.7.8 Paths Object: concrete paths match before templated ones (`/orders/latest` before `/orders/{id}`).
  return routes.sort((a, b) => a.params - b.params);
}

/**
 * Base paths from Server Objects (OAS 3.0.3 §4.7.5): the path part of each url, variables
 * replaced by their defaults. No servers means a single server at "/" (§4.7.1).
 */
function serverBases(servers: unknown): string[] {
  if (!Array.isArray(servers) || servers.length === 0) return [''];
  return servers.filter(isRecord).map((s) => {
    const vars = isRecord(s.variables) ? s.variables : {};
    const url = String(s.url ?? '/').replace(/\{([^}]*)\}/g, (_, name: string) => String((vars[name] as { default?: unknown } | undefined)?.default ?? ''));
    const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').replace(/\/+$/, '');
    return escapeRe(path === '' || path.startsWith('/') ? path : `/${path}`);
  });
}

function checkExchange(routes: Route[], half: BodyHalf, r: FlowRecord, which: 'request' | 'response'): Verdict {
  if (!httpHalves(r)) return { problems: [`a ${r.protocol} exchange has no OpenAPI operation`] };
  if (!r.request) return { problems: [], unknown: 'the request was not seen: its OpenAPI operation is unknown' };
  const method = r.request.method.toUpperCase();
  const path = r.request.path.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '').split('?')[0]!;
  const matched = routes.filter((rt) => rt.re.test(path));
  const route = matched.find((rt) => rt.operations.has(method));
  if (!route) return { problems: [`${method} ${matched[0]?.template ?? path} is not documented`] };
  const label = `${method} ${route.template}`;
  const op = route.operations.get(method)!;
  if (which === 'request') {
    const rb = op.requestBody;
    if (!rb?.content) return hasBody(half) ? { problems: [`${label} documents no request body`] } : { problems: [] };
    if (!hasBody(half) && !rb.required) return { problems: [] };
    return checkContent(rb.content, half, `${label} request`, which);
  }
  const status = r.response && 'status' in r.response ? r.response.status : undefined;
  if (status === undefined) return { problems: [], unknown: 'the response status was not seen' };
  // OAS 3.0.3 §4.7.16 Responses Object: an exact code wins over its range (2XX), which wins over default.
  const key = [String(status), `${String(status)[0]}XX`, 'DEFAULT'].find((k) => op.responses.has(k));
  if (key === undefined) return { problems: [`${label} → ${status} is not documented`] };
  const content = op.responses.get(key);
  // HEAD answers carry no body (RFC 9110 §9.3.2); the content documented is GET's.
  if (!content || method === 'HEAD') return hasBody(half) && method !== 'HEAD' ? { problems: [`${label} → ${status} documents no body`] } : { problems: [] };
  return checkContent(content, half, `${label} → ${status}`, which);
}

function checkContent(content: Content, half: BodyHalf, label: string, which: string): Verdict {
  const ct = mediaType(half.headers['content-type']);
  const documented = [...content.keys()].join(', ');
  if (!hasBody(half)) return half.bodySize === 0 ? { problems: [`${label}: ${which} body is empty (documented: ${documented})`] } : { problems: [], unknown: `${which} body was not captured` };
  // OAS §4.7.17 Response Object content: the most specific key applies (text/plain over text/*).
  const key = ct && ([...content.keys()].find((k) => k === ct) ?? [...content.keys()].filter((k) => mediaMatches(k, ct)).sort((a, b) => b.length - a.length)[0]);
  if (!key) return { problems: [`${label}: Content-Type ${ct ?? '(none)'} is not documented (documented: ${documented})`] };
  const validate = content.get(key);
  // Only JSON bodies are validated against schemas; others are checked for their media type only.
  if (!validate || !isJsonMedia(ct!)) return { problems: [] };
  const j = readJson(half, which);
  if (!('value' in j)) return toVerdict(j);
  return { problems: validate(j.value) ? [] : schemaProblems(validate.errors, j.value) };
}

function toVerdict(j: ReturnType<typeof readJson>): Verdict {
  return 'problem' in j ? { problems: [j.problem] } : 'unknown' in j ? { problems: [], unknown: j.unknown } : { problems: [] };
}

function hasBody(half: BodyHalf): boolean {
  return half.body !== undefined || half.bodyTruncated === true || (half.bodySize ?? 0) > 0;
}

/**
 * OAS 3.0 Schema Objects in JSON Schema draft-07 terms: `nullable: true` adds null to the type
 * (or wraps a type-less schema, such as a $ref, in anyOf with null), and boolean
 * exclusiveMinimum/exclusiveMaximum (draft Wright-00) become the numeric draft-07 form.
 * Examples, enums and defaults are data, not schemas, and are left alone.
 */
function from30(node: unknown, names = false): unknown {
  if (Array.isArray(node)) return node.map((x) => from30(x));
  if (!isRecord(node)) return node;
  const out: Record<string, unknown> = {};
  // In a map of names (properties, components.schemas) a key called "example" is a schema's name.
  for (const [k, v] of Object.entries(node)) out[k] = !names && DATA_KEYS.includes(k) ? v : from30(v, !names && NAME_MAPS.includes(k));
  if (names) return out;
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof out[flag] !== 'boolean') continue;
    if (out[flag] === true && typeof out[bound] === 'number') {
      out[flag] = out[bound];
      delete out[bound];
    } else delete out[flag];
  }
  if (typeof out.nullable !== 'boolean') return out;
  const nullable = out.nullable;
  delete out.nullable;
  if (!nullable) return out;
  if (out.type === undefined) return { anyOf: [{ type: 'null' }, out] };
  out.type = [out.type, 'null'].flat();
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  return out;
}

const DATA_KEYS = ['example', 'examples', 'enum', 'default', 'const'];
const NAME_MAPS = ['properties', 'patternProperties', 'definitions', 'schemas'];

function resolvePointer(doc: unknown, pointer: string): unknown {
  return pointer.split('/').slice(1).map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~')).reduce<unknown>((o, t) => (isRecord(o) || Array.isArray(o) ? (o as Record<string, unknown>)[t] : undefined), doc);
}

function escapeToken(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
