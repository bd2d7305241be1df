import { parseTime } from '../common/index.js';
import { SourceError } from './errors.js';

/**
 * A query's time bound as epoch seconds; undefined when absent. A SourceError naming the
 * parameter when it is neither RFC 3339 nor epoch seconds. The one time parser of flow queries
 * (the API, MCP, every source); apart from query.ts so that what needs only it (a local backend)
 * does not load the CEL evaluator.
 */
export function timeOf(name: 'since' | 'until', v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const t = parseTime(v);
  if (t === undefined) throw new SourceError('bad', `${name}: "${v}" is neither RFC 3339 (2026-11-21T10:00:00Z) nor epoch seconds`);
  return t;
}
