/**
 * Body assertions of the verification spec (`body:` under a request or response expectation):
 * JSONPath assertions, a JSON Schema inline or from a file, conformance to an OpenAPI 3 document,
 * and the declared content type. Everything loads and compiles in compileBody, so a bad spec
 * fails before any flow is read; check() only evaluates.
 */
import type { FlowRecord } from '../../flows/index.js';
import { compileJsonAssertions, isJsonMedia, isRecord, mediaMatches, mediaType, readJson, type BodyHalf, type Fail, type JsonAssertion } from './body-json.js';
import { compileOpenApi, type OpenApiCheck } from './body-openapi.js';
import { compileSchema, fromFile, schemaProblems, type ValidateFunction } from './body-schema.js';
import { SpecError } from './errors.js';

export interface BodyCheck {
  /**
   * `ok` only when every part was decided and held. `problems` (at most 10) make the check fail;
   * `unknown` without problems makes it inconclusive: a body cut at the body limit or not captured.
   */
  check(half: BodyHalf, r: FlowRecord): { ok: boolean; problems: string[]; unknown?: string };
}

const KEYS = ['json', 'schema', 'schemaFile', 'openapi', 'contentType'];
const MAX_PROBLEMS = 10;

/**
 * @param at the field path of the `body:` object, for errors ("checks[0].expect.response.body")
 * @param baseDir the spec file's directory: schemaFile and openapi are relative to it
 * @param source the spec file's name, for errors
 * @throws SpecError on a malformed assertion, a file that does not load, a schema that does not compile
 */
export function compileBody(spec: unknown, at: string, baseDir: string, source: string): BodyCheck {
  const fail: Fail = (where, what) => {
    throw new SpecError(source, where, what);
  };
  if (!isRecord(spec)) return fail(at, `expected a mapping with any of ${KEYS.join(', ')}`);
  for (const k of Object.keys(spec)) if (!KEYS.includes(k)) fail(`${at}.${k}`, `unknown key (expected ${KEYS.join(', ')})`);
  if (Object.keys(spec).length === 0) fail(at, `empty: give at least one of ${KEYS.join(', ')}`);

  if (spec.contentType !== undefined && (typeof spec.contentType !== 'string' || !/^[\w.+*-]+\/[\w.+*-]+$/.test(spec.contentType))) {
    fail(`${at}.contentType`, 'expected a media type such as application/json, without parameters');
  }
  const contentType = mediaType(spec.contentType as string | undefined);
  const json: JsonAssertion[] = spec.json === undefined ? [] : compileJsonAssertions(spec.json, `${at}.json`, fail);
  const schemas: ValidateFunction[] = [];
  if (spec.schema !== undefined) schemas.push(compileSchema(spec.schema, `${at}.schema`, fail));
  if (spec.schemaFile !== undefined) {
    const where = `${at}.schemaFile`;
    schemas.push(fromFile(spec.schemaFile, baseDir, where, fail, 'schema', (doc, rel) => compileSchema(doc, where, fail, rel)));
  }
  const openapi: OpenApiCheck | undefined = spec.openapi === undefined ? undefined : compileOpenApi(spec.openapi, baseDir, `${at}.openapi`, fail);
  const needsJson = json.length > 0 || schemas.length > 0 || (contentType !== undefined && isJsonMedia(contentType));
  if (needsJson && contentType !== undefined && !isJsonMedia(contentType)) {
    fail(`${at}.contentType`, `${contentType} is not JSON, but json and schema assertions need a JSON body`);
  }

  return {
    check(half, r) {
      const which = half === r.request ? 'request' : 'response';
      const problems: string[] = [];
      const unknown: string[] = [];
      const actual = mediaType(half.headers['content-type']);
      if (contentType !== undefined && !(actual && mediaMatches(contentType, actual))) {
        problems.push(`${which} Content-Type is ${actual ?? 'missing'}, expected ${contentType}`);
      }
      if (needsJson && contentType === undefined && actual !== undefined && !isJsonMedia(actual)) {
        problems.push(`${which} Content-Type is ${actual}, not JSON`);
      } else if (needsJson) {
        const j = readJson(half, which);
        if ('value' in j) {
          for (const a of json) problems.push(...a(j.value));
          for (const v of schemas) if (!v(j.value)) problems.push(...schemaProblems(v.errors, j.value));
        } else if ('problem' in j) problems.push(j.problem);
        else unknown.push(j.unknown);
      }
      if (openapi) {
        const v = openapi.check(half, r, which);
        problems.push(...v.problems);
        if (v.unknown) unknown.push(v.unknown);
      }
      return outcome(problems, unknown);
    },
  };
}

function outcome(all: string[], unknowns: string[]): { ok: boolean; problems: string[]; unknown?: string } {
  const distinct = [...new Set(all)];
  const problems = distinct.length > MAX_PROBLEMS ? [...distinct.slice(0, MAX_PROBLEMS - 1), `… and ${distinct.length - MAX_PROBLEMS + 1} more`] : distinct;
  const unknown = [...new Set(unknowns)].join('; ');
  return { ok: problems.length === 0 && unknown === '', problems, ...(unknown && { unknown }) };
}
