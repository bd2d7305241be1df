import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Ajv from 'ajv';
import { expect } from 'vitest';
import { makeContext, type ContextOptions } from '../../src/mcp/context.js';
import { createMcpServer } from '../../src/mcp/server.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const DEMO = 'pcaps/demo/demo.pcap';
export const FIXED = 'pcaps/demo/demo-fixed.pcap';
export const DEMO_SPEC = 'examples/specs/demo.yaml';
export const PGBENCH = 'pcaps/postgres/pgbench-extended.pcap';

export const isRoot = process.getuid?.() === 0;

export type Call = (name: string, args?: Record<string, unknown>, opts?: Parameters<Client['callTool']>[2]) => Promise<CallToolResult & { structuredContent?: any }>;

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
  const ajv = new Ajv({ strict: false });
  const validators = new Map(tools.map((t) => [t.name, ajv.compile(t.outputSchema!)]));
  const call: Call = async (name, args = {}, opts) => {
    const r = (await client.callTool({ name, arguments: args }, undefined, opts)) as CallToolResult;
    if (!r.isError) {
      const valid = validators.get(name)!;
      expect(valid(r.structuredContent), `${name} structuredContent: ${JSON.stringify(valid.errors)}`).toBe(true);
      expect(r.content[0]?.type).toBe('text');
    }
    expect(JSON.stringify(r).length / 4, `${name} result size in tokens`).toBeLessThanOrEqual(ctx.maxTokens);
    return r;
  };
  return {
    client, ctx, tools, call,
    async close() {
      await client.close();
      await ctx.close();
    },
  };
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
