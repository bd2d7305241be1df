import { AgentClientError } from '../client/index.js';
import { makeContext, serveHttp, serveStdio } from '../mcp/index.js';
import { parseListen } from './agent.js';

export interface McpCliOptions {
  api?: string;
  token?: string;
  http?: string;
  dataDir?: string;
  interface: string;
  maxTokens: number;
}

/**
 * `tapwire mcp`: the MCP server for AI agents, on stdio (default) or Streamable HTTP (`--http`).
 * On stdio, stdout carries only the protocol: everything else goes to stderr.
 */
export async function runMcp(o: McpCliOptions): Promise<number> {
  const err = (line: string) => process.stderr.write(`${line}\n`);
  // A stray console.log from any module would corrupt the stdio protocol stream.
  console.log = console.info = console.debug = (...args: unknown[]) => err(args.map(String).join(' '));
  let listen: { host: string; port: number } | undefined;
  if (o.http !== undefined) {
    try {
      listen = parseListen(o.http);
    } catch {
      err(`tapwire mcp: --http "${o.http}": expected host:port, e.g. 127.0.0.1:8765`);
      return 2;
    }
  }
  let ctx;
  try {
    ctx = makeContext({
      api: o.api, token: o.token, dataDir: o.dataDir, iface: o.interface, maxTokens: o.maxTokens, log: err,
      // Over HTTP without a token, any local user (or process) could make this server run
      // commands as its own user, often root for capture: run_and_verify then needs a token.
      commandsRefused: listen && !o.token
        ? 'this server is on Streamable HTTP without a token, where any local user could make it run commands as its own user: restart it with --token (or TAPWIRE_TOKEN) to use run_and_verify, or use stdio'
        : undefined,
    });
  } catch (e) {
    if (!(e instanceof AgentClientError)) throw e;
    err(`tapwire mcp: ${e.message}`);
    return 2;
  }
  const source = o.api !== undefined ? `agent at ${o.api}` : `local capture on ${o.interface} (data in ${ctx.dataDir})`;
  try {
    if (!listen) {
      err(`tapwire mcp: serving on stdio; live flows from ${source}`);
      // Returns on stdin's end or SIGINT/SIGTERM, once the calls in flight are cancelled and done.
      await serveStdio(ctx);
      return 0;
    }
    let http;
    try {
      http = await serveHttp(ctx, { ...listen, token: o.token });
    } catch (e) {
      err(`tapwire mcp: ${(e as Error).message}`);
      return 2;
    }
    err(`tapwire mcp: Streamable HTTP on ${http.url}${o.token ? ' (bearer token required)' : '; no token, so run_and_verify is refused'}; live flows from ${source}`);
    // Kept installed while closing: a second signal must not cut short the wait for runs in flight.
    const signalled = new Promise<void>((resolve) => {
      process.on('SIGINT', () => resolve());
      process.on('SIGTERM', () => resolve());
    });
    await signalled;
    await http.close();
    return 0;
  } finally {
    await ctx.close();
  }
}
