import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Ajv from 'ajv';
import { expect } from 'vitest';
import type { z } from 'zod';
import type { FlowOf, FlowRecord, Protocol } from '../../src/flows/record.js';
import { makeContext, type ContextOptions } from '../../src/mcp/context.js';
import { createMcpServer } from '../../src/mcp/server.js';
import type { Tool } from '../../src/mcp/tool.js';
import type { analyzeCapture } from '../../src/mcp/tools/analyze-capture.js';
import type { clusterEventsTool } from '../../src/mcp/tools/cluster-events.js';
import type { listWorkloads } from '../../src/mcp/tools/list-workloads.js';
import type { diffTool } from '../../src/mcp/tools/diff.js';
import type { exportPcap } from '../../src/mcp/tools/export-pcap.js';
import type { getFlow } from '../../src/mcp/tools/get-flow.js';
import type { listFlows } from '../../src/mcp/tools/list-flows.js';
import type { listSnapshots } from '../../src/mcp/tools/list-snapshots.js';
import type { runAndVerifyTool } from '../../src/mcp/tools/run-and-verify.js';
import type { runHistoryTool } from '../../src/mcp/tools/run-history.js';
import type { runsTouchingTool } from '../../src/mcp/tools/runs-touching.js';
import type { serviceMap } from '../../src/mcp/tools/service-map.js';
import type { startSnapshot } from '../../src/mcp/tools/start-snapshot.js';
import type { stopSnapshot } from '../../src/mcp/tools/stop-snapshot.js';
import type { verifyTool } from '../../src/mcp/tools/verify.js';
import { only } from '../helpers/records.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const DEMO = 'pcaps/demo/demo.pcap';
export const FIXED = 'pcaps/demo/demo-fixed.pcap';
export const DEMO_SPEC = 'examples/specs/demo.yaml';
export const PGBENCH = 'pcaps/postgres/pgbench-extended.pcap';

export const isRoot = process.getuid?.() === 0;

/** What a tool's structuredContent holds: its output schema's type. */
type OutputOf<T> = T extends Tool<z.ZodObject, infer O> ? z.output<O> : never;

/** Each tool by name, with the structuredContent it answers (src/mcp/server.ts registers the same list). */
export interface ToolOutputs {
  list_flows: OutputOf<typeof listFlows>;
  /** The schema leaves a record's protocol fields open; the flow is a record.ts record (its payloads maybe cut). */
  get_flow: Omit<OutputOf<typeof getFlow>, 'flow'> & { flow: FlowRecord };
  service_map: OutputOf<typeof serviceMap>;
  start_snapshot: OutputOf<typeof startSnapshot>;
  stop_snapshot: OutputOf<typeof stopSnapshot>;
  list_snapshots: OutputOf<typeof listSnapshots>;
  export_pcap: OutputOf<typeof exportPcap>;
  verify: OutputOf<typeof verifyTool>;
  diff: OutputOf<typeof diffTool>;
  run_and_verify: OutputOf<typeof runAndVerifyTool>;
  analyze_capture: OutputOf<typeof analyzeCapture>;
  run_history: OutputOf<typeof runHistoryTool>;
  runs_touching: OutputOf<typeof runsTouchingTool>;
  cluster_events: OutputOf<typeof clusterEventsTool>;
  list_workloads: OutputOf<typeof listWorkloads>;
}
export type ToolName = keyof ToolOutputs;

/**
 * A tool's result with its structuredContent typed by the tool's output schema, which `call`
 * checks it against. An isError result has none (those tests read isError and the text).
 */
export type ToolCallResult<N extends ToolName> = CallToolResult & { structuredContent: ToolOutputs[N] };

export type Call = <N extends ToolName>(name: N, args?: Record<string, unknown>, opts?: Parameters<Client['callTool']>[2]) => Promise<ToolCallResult<N>>;

/**
 * An in-process client and server over the SDK's linked in-memory transports. Tools are listed
 * first, so the SDK client checks every structuredContent against its tool's output schema; the
 * helper checks it again with Ajv (so a test fails on a bad result even if the client did not),
 * and checks that every result is within the server's token bound.
 */
export async function connect(o: ContextOptions = {}) {
  const ctx = makeContext({ cwd: ROOT, dataDir: mkdtempSync(join(tmpdir(), 'tapwire-mcp-')), redactKey: Buffer.from('mcp-test-key'), log: () => {}, ...o });
  const server = createMcpServer(ctx);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name: 'tapwire-test', version: '1.0.0' });
  await client.connect(b);
  const tools = (await client.listTools()).tools;
  // The SDK publishes output schemas as draft-07 ($schema says so): ajv's default dialect.
  const ajv = new Ajv.default({ strict: false });
  const validators = new Map(tools.map((t) => [t.name, ajv.compile(t.outputSchema!)]));
  const call: Call = async (name, args = {}, opts) => {
    const r = (await client.callTool({ name, arguments: args }, undefined, opts)) as CallToolResult;
    if (!r.isError) {
      const valid = validators.get(name)!;
      expect(valid(r.structuredContent), `${name} structuredContent: ${JSON.stringify(valid.errors)}`).toBe(true);
      expect(r.content[0]?.type).toBe('text');
    }
    expect(JSON.stringify(r).length / 4, `${name} result size in tokens`).toBeLessThanOrEqual(ctx.maxTokens);
    // Checked above against the output schema its type is inferred from (ToolOutputs).
    return r as ToolCallResult<typeof name>;
  };
  return {
    client, ctx, tools, call,
    async close() {
      await client.close();
      await ctx.close();
    },
  };
}

/** A tool's flow as a record of `protocols`, which it must be (the same check as only()). */
export function flowOf<P extends Protocol>(r: FlowRecord, ...protocols: P[]): FlowOf<P> {
  return only([r], ...protocols)[0]!;
}

/** The text of a result (its first content item). */
export function text(r: CallToolResult): string {
  const c = r.content[0];
  return c?.type === 'text' ? c.text : '';
}

/** An isError result whose text names `argument` first, as `argument: why`. */
export function expectArgError(r: CallToolResult, argument: string | RegExp): void {
  expect(r.isError, text(r)).toBe(true);
  if (typeof argument === 'string') expect(text(r)).toMatch(new RegExp(`(^|at |\\b)${argument.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`));
  else expect(text(r)).toMatch(argument);
}
