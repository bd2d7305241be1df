/**
 * requests/: the zod schemas of what the front doors take, shared by the HTTP API and the MCP
 * server so the two cannot drift (one FlowQuery). A stage of its own so that zod is loaded by the
 * front doors that validate requests, never by the core or the CLI's offline commands.
 */
export { FlowQuerySchema, flowQueryFields, timeField } from './flow-query.js';
