import { isJsonMedia, mediaType, readJson, type BodyHalf } from './spec/body-json.js';

/**
 * The shape of a JSON document: every path with the type found there, `$.items[].qty: integer`.
 * Strings that are dates are told apart by format, because "2026-11-21T10:00:00Z" and
 * "21/11/2026" in one field across responses is the disagreement payload-shape and diff look for.
 */
export type Shape = Map<string, string>;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
const OTHER_DATE = /^(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}\/\d{1,2}\/\d{1,2}|[A-Z][a-z]{2},? \d{1,2} [A-Z][a-z]{2} \d{4}.*)$/;

export function valueType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'string') return ISO_DATE.test(v) ? 'string(date-iso8601)' : OTHER_DATE.test(v) ? 'string(date-other)' : 'string';
  return typeof v;
}

/** Paths are capped so one huge document cannot make a huge shape. */
const MAX_PATHS = 500;

export function jsonShape(doc: unknown): Shape {
  const out: Shape = new Map();
  const walk = (v: unknown, path: string): void => {
    if (out.size >= MAX_PATHS) return;
    const t = valueType(v);
    const prev = out.get(path);
    // Elements of one array may differ; keep every type seen at the path.
    out.set(path, prev && prev !== t && !prev.split('|').includes(t) ? `${prev}|${t}` : prev ?? t);
    if (Array.isArray(v)) for (const x of v) walk(x, `${path}[]`);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${path}.${k}`);
  };
  walk(doc, '$');
  return out;
}

/**
 * The parsed JSON body of an HTTP half, or why it is not one; `undefined` when its Content-Type is
 * not JSON. One reader for detectors, diff and spec body checks (spec/body-json.ts), so they judge
 * a body alike — a cut-off preview is unknown unless the part seen is already broken.
 */
export function jsonBody(h: BodyHalf): { ok: true; doc: unknown } | { ok: false; error: string } | { ok: false; unknown: string } | undefined {
  const ct = mediaType(h.headers['content-type']);
  if (!ct || !isJsonMedia(ct)) return undefined;
  const r = readJson(h, 'response');
  return 'value' in r ? { ok: true, doc: r.value } : 'problem' in r ? { ok: false, error: r.problem } : { ok: false, unknown: r.unknown };
}
