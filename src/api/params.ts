import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { FilterError } from '../query/index.js';
import { FlowQuerySchema } from '../requests/index.js';
import { BodyError, DEFAULT_PAGE, MAX_PAGE, readJsonBody, SourceError, timeOf, type FlowQuery } from '../service/index.js';
import { ApiError, bad } from './errors.js';

/** The page size the API clamps to (issue 6: clamped, not rejected). */
export const MAX_LIMIT = MAX_PAGE;
export const DEFAULT_LIMIT = DEFAULT_PAGE;

/**
 * A time parameter: RFC 3339 (`2026-11-21T10:00:00Z`) or epoch seconds (`1795250000.5`), as epoch
 * seconds. Undefined when absent; a 400 naming the parameter when it is neither.
 */
export function timeParam(name: 'since' | 'until', v: string | null | undefined): number | undefined {
  return refused(() => timeOf(name, v ?? undefined));
}

/** A query parameter that must be a whole number (`why` says what it counts, for the refusal). */
export const wholeNumber = (why = '') => z.string().regex(/^\d+$/, { error: (i) => `"${String(i.input)}" is not a whole number${why}` }).transform(Number);

/** `limit`, clamped to 1..max (a page of flows: MAX_LIMIT); a 400 when it is not a whole number. */
export function limitParam(v: string | null, max = MAX_LIMIT): number {
  if (v === null || v === '') return DEFAULT_LIMIT;
  return Math.min(max, Math.max(1, parsed(z.object({ limit: wholeNumber() }), { limit: v }, '').limit));
}

/**
 * A flow page's query string as the FlowQuery both front doors share (service/query.ts): limit
 * clamped (the API clamps where MCP's schema refuses), the rest checked by the schema. Parameters
 * it does not know are ignored, as they always were.
 */
export function flowQueryParams(url: URL, snapshot?: string): FlowQuery {
  const p = url.searchParams;
  const given = (k: string) => p.get(k) ?? undefined;
  return parsed(FlowQuerySchema, {
    filter: given('filter'), since: given('since'), until: given('until'), cursor: given('cursor') || undefined,
    limit: limitParam(p.get('limit')), ...(snapshot !== undefined ? { snapshot } : {}),
  }, '');
}

/**
 * `v` checked by a zod schema: the value, or a 400 naming the first field that fails and why
 * (`body: unknown field "nmae" (known: …)`, `name: expected a string, got number`). `where` names
 * the whole value ("body").
 */
export function parsed<S extends z.ZodType>(schema: S, v: unknown, where: string): z.output<S> {
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  // A field is named by itself ("name: …", as the API always named them); the whole value by `where`.
  const field = issue.path.map(String).join('.') || where || 'query';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    const known = 'shape' in schema ? Object.keys((schema as unknown as z.ZodObject).shape) : [];
    throw bad(`${where || 'query'}: unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})`);
  }
  if (issue.code === 'invalid_type') {
    const got = issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown> | undefined)?.[k as PropertyKey], v);
    if (issue.expected === 'object') throw bad(`${field}: expected a JSON object`);
    throw bad(`${field}: expected a ${issue.expected}, got ${got === null ? 'null' : typeof got}`);
  }
  throw bad(`${field}: ${issue.message}`);
}

/** A request's JSON body (one reader: service/http-body.ts), as the API words its refusals. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  try {
    return await readJsonBody(req, maxBytes);
  } catch (e) {
    if (e instanceof BodyError) throw new ApiError(e.status, e.status === 400 ? `body: ${e.message}` : e.message);
    throw e;
  }
}

/** A source's refusal as the API answers it: bad input 400, something missing 404, a filter 400. */
export function refused<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw apiError(e);
  }
}

export function apiError(e: unknown): unknown {
  if (e instanceof SourceError) return new ApiError(e.kind === 'bad' ? 400 : 404, e.message);
  if (e instanceof FilterError) return bad(e.message);
  return e;
}
