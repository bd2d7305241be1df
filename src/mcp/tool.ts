import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ContentBlock, ServerNotification, ServerRequest, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { McpContext } from './context.js';
import { errorText } from './errors.js';

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface ToolResult<T> {
  /** Conforms to the tool's output schema (the SDK checks it on both ends). */
  structured: T;
  /** The compact copy for clients that show text: a verdict line and findings, a few rows. */
  text: string;
  /** Content after the text copy, e.g. a resource link to a written file. */
  more?: ContentBlock[];
}

/**
 * One MCP tool: its schemas and a thin `run` over the query/verify core. Input schemas are strict
 * objects, so a misspelt argument is refused by name instead of ignored; the SDK answers a call
 * that fails them with an isError result naming the argument ("… at limit").
 */
export interface Tool<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations?: ToolAnnotations;
  run(args: z.output<I>, ctx: McpContext, extra: Extra): Promise<ToolResult<z.output<O>>>;
}

export function tool<I extends z.ZodObject, O extends z.ZodObject>(t: Tool<I, O>): Tool<I, O> {
  return t;
}

/** A tool of any schema, for the list the server registers. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = Tool<any, any>;

export function registerTool(server: McpServer, ctx: McpContext, t: AnyTool): void {
  const handler = async (args: unknown, extra: Extra): Promise<CallToolResult> => {
    try {
      // Tracked so that a shutdown cancels the call and waits for it (see inflight.ts).
      const r = await ctx.calls.track(extra.signal, (signal) => t.run(args, ctx, { ...extra, signal }));
      return { content: [{ type: 'text', text: r.text }, ...(r.more ?? [])], structuredContent: r.structured as Record<string, unknown> };
    } catch (e) {
      return errorResult(e, t.name, ctx);
    }
  };
  server.registerTool(t.name, {
    title: t.title, description: t.description, inputSchema: t.input, outputSchema: t.output, annotations: t.annotations,
  }, handler as never);
}

/**
 * An isError result: the argument and why for bad input. Anything else (a backend refusing, a
 * bug) still answers with its message, and its stack goes to the log.
 */
export function errorResult(e: unknown, where: string, ctx: McpContext): CallToolResult {
  let text = errorText(e);
  if (text === undefined) {
    ctx.log(`tapwire mcp: ${where}: ${(e as Error).stack ?? e}`);
    text = `${where} failed: ${(e as Error).message ?? e}`;
  }
  return { content: [{ type: 'text', text }], isError: true };
}
