import { z } from 'zod';
import { MAX_FILTER_LENGTH } from '../query/index.js';
import { MAX_PAGE, type FlowQuery } from '../service/index.js';

/** A time argument or parameter: RFC 3339 or epoch seconds, described by what it bounds. */
export const timeField = (what: string) => z.string().max(40).describe(`${what}: RFC 3339 (2026-11-21T10:00:00Z) or epoch seconds`);

/**
 * A query for a page of flows, as both front doors take it: the HTTP API from its query string
 * (`GET /api/flows`, `/api/snapshots/:id/flows`) and the MCP tools from their arguments
 * (list_flows, analyze_capture). One schema, so the two cannot drift: the MCP tools publish its
 * fields as their input schema, the API parses its query parameters with it.
 */
export const flowQueryFields = {
  filter: z.string().max(MAX_FILTER_LENGTH).describe('CEL flow filter, e.g. \'http && response.status >= 500\' (README "Filter language")'),
  since: timeField('flows that started at or after this time'),
  until: timeField('flows that started at or before this time'),
  limit: z.number().int().min(1).max(MAX_PAGE),
  cursor: z.string().min(1).max(4096).describe('"next" of the previous page'),
  snapshot: z.string().min(1).max(200).describe('the flows of this snapshot (start_snapshot, list_snapshots)'),
};

export const FlowQuerySchema = z.strictObject({
  filter: flowQueryFields.filter.optional(),
  since: flowQueryFields.since.optional(),
  until: flowQueryFields.until.optional(),
  limit: flowQueryFields.limit.optional(),
  cursor: flowQueryFields.cursor.optional(),
  snapshot: flowQueryFields.snapshot.optional(),
});

// The schema and the service's FlowQuery type are one: a field added to one must be added to both.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShape: Same<z.infer<typeof FlowQuerySchema>, FlowQuery> = true;
void sameShape;

