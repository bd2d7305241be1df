import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { hostPort, isLoopback, isLoopbackRequest } from '../common/index.js';
import type { McpContext } from './context.js';
import { SETTLE_MS } from './inflight.js';
import { createMcpServer } from './server.js';
import { BodyError, readJsonBody } from '../service/index.js';

/**
 * stdio: one session over this process's stdin and stdout. stdout then carries only the
 * protocol: the caller sends logs to stderr. Resolves when the client closes stdin or the process
 * is sent SIGINT or SIGTERM; either way the tool calls in flight are cancelled and waited for
 * first (bounded), so that a run stops its own snapshot and records itself as cancelled.
 */
export async function serveStdio(ctx: McpContext): Promise<void> {
  const server = createMcpServer(ctx);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    const before = server.server.onclose;
    server.server.onclose = () => {
      before?.();
      resolve();
    };
  });
  let stopping: Promise<void> | undefined;
  // A second signal (the SDK's client sends SIGTERM 2 s after closing stdin) must not cut the
  // wait short: the handler stays installed, and stopping happens once.
  const stop = (why: string) => {
    stopping ??= (async () => {
      if (ctx.calls.size > 0) ctx.log(`tapwire mcp: ${why}`);
      // Answers to the cancelled calls still go out: the transport is closed only after them.
      await ctx.calls.settle(SETTLE_MS, ctx.log);
      // The SDK sends a result a few promise turns after its handler returns.
      await new Promise((r) => setImmediate(r));
      await server.close();
    })();
  };
  const onSignal = (sig: NodeJS.Signals) => stop(`${sig}`);
  const onEnd = () => stop('stdin closed');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await server.connect(transport);
    // The transport does not watch for the end of its input: the client closing stdin ends the session.
    process.stdin.once('end', onEnd);
    await closed;
    await stopping;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdin.off('end', onEnd);
  }
}

export interface HttpOptions {
  host: string;
  port: number;
  /** Required as a Bearer token on every request when set; required to be set off loopback. */
  token?: string;
  /** A session idle this long (no request, none running, no open stream) is closed; default 30 min. */
  idleMs?: number;
}

/** The largest JSON-RPC request body read (tool arguments are small; specs are at most 1 MiB). */
const MAX_BODY = 4 << 20;
const MAX_SESSIONS = 64;
const IDLE_MS = 30 * 60_000;

interface Session {
  transport: StreamableHTTPServerTransport;
  /** When the last request or stream of the session ended (or began). */
  lastUsed: number;
  /**
   * Requests being answered and GET streams open: a session is never idle while one is, so a
   * run longer than the idle time is answered, and a subscriber keeps hearing of changes.
   */
  active: number;
}

/**
 * Streamable HTTP at `/mcp` (POST for requests, GET for the server's stream, DELETE to end a
 * session), one McpServer per session over the shared context. Off loopback a token is required;
 * on loopback, requests whose Host or Origin is not loopback are refused, so a web page cannot
 * reach the server through DNS rebinding.
 */
export async function serveHttp(ctx: McpContext, o: HttpOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const loopback = isLoopback(o.host);
  if (!loopback && !o.token) throw new Error(`--http ${hostPort(o.host, o.port)} is not loopback: give a token with --token or TAPWIRE_TOKEN`);
  const sessions = new Map<string, Session>();
  const idleMs = o.idleMs ?? IDLE_MS;
  const sweep = setInterval(() => {
    for (const s of sessions.values()) if (s.active === 0 && Date.now() - s.lastUsed > idleMs) void s.transport.close();
  }, Math.min(60_000, Math.max(50, idleMs / 4)));
  sweep.unref();

  const http = createServer((req, res) => {
    handle(req, res).catch((e) => {
      ctx.log(`tapwire mcp: http: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) reply(res, 500, -32603, 'internal error');
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/mcp') return reply(res, 404, -32601, `no such endpoint: ${url.pathname} (the MCP endpoint is /mcp)`);
    if (loopback && !isLoopbackRequest(req.headers)) return reply(res, 403, -32600, 'Host or Origin is not loopback: refused (DNS rebinding protection)');
    if (o.token !== undefined && !bearer(req, o.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      return reply(res, 401, -32600, 'missing or wrong bearer token (Authorization: Bearer <token>; see --token / TAPWIRE_TOKEN)');
    }
    const id = req.headers['mcp-session-id'];
    const session = typeof id === 'string' ? sessions.get(id) : undefined;
    if (typeof id === 'string' && !session) return reply(res, 404, -32001, 'session not found: initialize a new one');
    let body: unknown;
    if (req.method === 'POST') {
      const read = await readJson(req);
      if ('error' in read) return reply(res, read.status, -32700, read.error);
      body = read.value;
    }
    if (session) {
      // The response ends when the request is answered (POST) or the stream is closed (GET).
      busy(session, res);
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeRequest(body)) return reply(res, 400, -32000, 'no session: send an initialize request first (without Mcp-Session-Id)');
    if (sessions.size >= MAX_SESSIONS) return reply(res, 503, -32000, `too many open sessions (${MAX_SESSIONS}): close one (DELETE /mcp)`);
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => { sessions.set(sid, { transport, lastUsed: Date.now(), active: 0 }); },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await createMcpServer(ctx).connect(transport);
    await transport.handleRequest(req, res, body);
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.port, o.host, () => resolve());
  });
  const a = http.address() as AddressInfo;
  return {
    url: `http://${hostPort(a.address, a.port)}/mcp`,
    close: async () => {
      clearInterval(sweep);
      // Calls in flight are cancelled and answered before their sessions close (see inflight.ts).
      await ctx.calls.settle(SETTLE_MS, ctx.log);
      for (const s of [...sessions.values()]) await s.transport.close();
      await new Promise<void>((r) => {
        http.close(() => r());
        http.closeAllConnections();
      });
    },
  };
}

/** Counts the response as activity of the session until it ends. */
function busy(session: Session, res: ServerResponse): void {
  session.active++;
  session.lastUsed = Date.now();
  res.once('close', () => {
    session.active--;
    session.lastUsed = Date.now();
  });
}

function reply(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

function bearer(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!), b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readJson(req: IncomingMessage): Promise<{ value: unknown } | { status: number; error: string }> {
  try {
    const value = await readJsonBody(req, MAX_BODY);
    return value === undefined ? { status: 400, error: 'the request body is not JSON' } : { value };
  } catch (e) {
    if (!(e instanceof BodyError)) throw e;
    return { status: e.status, error: e.status === 413 ? e.message : 'the request body is not JSON' };
  }
}
