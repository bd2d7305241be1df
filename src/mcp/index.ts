/**
 * mcp/: the MCP server: one thin file per tool (tools/) over the same core, bounded results with a
 * text copy of each, resources and prompts, stdio and Streamable HTTP.
 */
export { makeContext } from './context.js';
export { serveHttp, serveStdio } from './transports.js';
