/**
 * client/: the one client of an agent's flow API (HTTP and SSE): what verify --api, run --api,
 * watch --api and the MCP server use to talk to a running agent.
 */
export { AgentClient, AgentClientError, MAX_CLIENT_FLOWS } from './agent.js';
export { SseError, type SseEvent } from './sse.js';
