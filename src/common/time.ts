/**
 * A time as tapwire's front doors take it: RFC 3339 (`2026-11-21T10:00:00Z`) or epoch seconds
 * (`1795250000.5`), as epoch seconds. Undefined when it is neither.
 */
export function parseTime(v: string): number | undefined {
  if (/^\d+(?:\.\d+)?$/.test(v)) return Number(v);
  // RFC 3339 requires a date, a time and an offset; Date.parse alone accepts far more.
  if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/.test(v)) {
    const ms = Date.parse(v);
    if (!Number.isNaN(ms)) return ms / 1000;
  }
  return undefined;
}
