import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { McpContext } from './context.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import { registerTool, type AnyTool } from './tool.js';
import { analyzeCapture } from './tools/analyze-capture.js';
import { clusterEventsTool } from './tools/cluster-events.js';
import { diffTool } from './tools/diff.js';
import { exportPcap } from './tools/export-pcap.js';
import { getFlow } from './tools/get-flow.js';
import { listFlows } from './tools/list-flows.js';
import { listWorkloads } from './tools/list-workloads.js';
import { listSnapshots } from './tools/list-snapshots.js';
import { runAndVerifyTool } from './tools/run-and-verify.js';
import { runHistoryTool } from './tools/run-history.js';
import { runsTouchingTool } from './tools/runs-touching.js';
import { serviceMap } from './tools/service-map.js';
import { startSnapshot } from './tools/start-snapshot.js';
import { stopSnapshot } from './tools/stop-snapshot.js';
import { verifyTool } from './tools/verify.js';

export const TOOLS: readonly AnyTool[] = [
  listFlows, getFlow, serviceMap, startSnapshot, stopSnapshot, listSnapshots, exportPcap, verifyTool, diffTool,
  runAndVerifyTool, analyzeCapture, runHistoryTool, runsTouchingTool, clusterEventsTool, listWorkloads,
];

const INSTRUCTIONS = 'tapwire shows what code actually did on the network: decoded HTTP/1, HTTP/2, gRPC, PostgreSQL, MySQL/MariaDB and Redis flows and TLS handshakes, '
  + 'from a capture file (`capture` argument), a running agent, or a local capture. verify judges them (retries, redundant calls, '
  + 'N+1, secrets forwarded, a spec\'s checks); run_and_verify runs a test command under capture and verifies it. Results are bounded: '
  + 'follow `next` cursors, and get_flow for one flow in full.';

/**
 * One MCP server (one session) over a shared context: every tool, the resources and the prompts.
 * When its transport closes, it drops its verdict subscription; the context outlives it.
 */
export function createMcpServer(ctx: McpContext): McpServer {
  const server = new McpServer({ name: 'tapwire', version: '0.1.0' }, {
    capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {} },
    instructions: INSTRUCTIONS,
  });
  for (const t of TOOLS) registerTool(server, ctx, t);
  server.server.onclose = registerResources(server, ctx);
  registerPrompts(server);
  return server;
}
