import { parseTime } from '../common/time.js';
import { bad } from './errors.js';

/** The page size the API clamps to (issue 6: clamped, not rejected). */
export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 100;

/**
 * A time parameter: RFC 3339 (`2026-11-21T10:00:00Z`) or epoch seconds (`1795250000.5`), as epoch
 * seconds. Undefined when absent; a 400 naming the parameter when it is neither.
 */
export function timeParam(name: string, v: string | null | undefined): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const t = parseTime(v);
  if (t !== undefined) return t;
  throw bad(`${name}: "${v}" is neither RFC 3339 (2026-11-21T10:00:00Z) nor epoch seconds`);
}

/** `limit`, clamped to 1..max (a page of flows: MAX_LIMIT); a 400 when it is not a whole number. */
export function limitParam(v: string | null, max = MAX_LIMIT): number {
  if (v === null || v === '') return DEFAULT_LIMIT;
  if (!/^\d+$/.test(v)) throw bad(`limit: "${v}" is not a whole number`);
  return Math.min(max, Math.max(1, Number(v)));
}
