import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO, ROOT } from './helpers.js';

/** `tapwire mcp --http`: the built CLI serving Streamable HTTP, with and without a bearer token. */
const baseEnv = { ...process.env, TAPWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), 'tapwire-mcp-http-')), TAPWIRE_REDACT_KEY: 'http-test-key' } as Record<string, string>;
delete baseEnv.TAPWIRE_TOKEN;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGTERM');
});

/** Starts `tapwire mcp --http …`; resolves with its endpoint URL, or with its exit status and log when it refuses to start. */
function serve(args: string[], env: Record<string, string> = {}): Promise<{ url?: string; code?: number | null; log: string }> {
  const child = spawn(process.execPath, ['dist/cli/main.js', 'mcp', ...args], { cwd: ROOT, env: { ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  return new Promise((resolve) => {
    child.stderr!.on('data', (d) => {
      log += d;
      const m = /Streamable HTTP on (http:\/\/\S+\/mcp)/.exec(log);
      if (m) resolve({ url: m[1], log });
    });
    child.on('exit', (code) => resolve({ code, log }));
  });
}

async function client(url: string, token?: string): Promise<Client> {
  const c = new Client({ name: 'http-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { authorization: `Bearer ${token}` } } } : undefined));
  return c;
}

/** A raw POST of an initialize request with chosen headers: status and body. */
function rawInit(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('tapwire mcp --http (Streamable HTTP)', () => {
  it('on loopback: initialize, list tools, verify the demo; sessions are separate', async () => {
    const s = await serve(['--http', '127.0.0.1:0']);
    expect(s.url, s.log).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    const a = await client(s.url!), b = await client(s.url!);
    try {
      expect((await a.listTools()).tools.length).toBe(15);
      const r = (await a.callTool({ name: 'verify', arguments: { capture: DEMO } })) as CallToolResult;
      expect((r.structuredContent as { verdict: string }).verdict).toBe('fail');
      const flows = (await b.callTool({ name: 'list_flows', arguments: { capture: DEMO, limit: 3 } })) as CallToolResult;
      expect((flows.structuredContent as { flows: unknown[] }).flows).toHaveLength(3);
      // Without a token any local user could reach it: the command runner is refused, and says why.
      const run = (await a.callTool({ name: 'run_and_verify', arguments: { command: 'true' } })) as CallToolResult;
      expect(run.isError).toBe(true);
      expect((run.content[0] as { text: string }).text).toMatch(/^command: this server is on Streamable HTTP without a token.*--token/);
      expect(s.log).toMatch(/no token, so run_and_verify is refused/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('on loopback, refuses a request whose Host is not loopback (DNS rebinding), and one without a session', async () => {
    const s = await serve(['--http', '127.0.0.1:0']);
    const port = new URL(s.url!).port;
    expect((await rawInit(s.url!, { host: `attacker.example:${port}` })).status).toBe(403);
    expect((await rawInit(s.url!, { origin: 'https://attacker.example' })).status).toBe(403);
    expect((await rawInit(s.url!, {})).status).toBe(200);
    const noSession = await fetch(s.url!, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });
    expect(noSession.status).toBe(400);
    expect(await noSession.text()).toMatch(/initialize/);
  });

  it('with a token: refused without it or with a wrong one, accepted with it', async () => {
    const s = await serve(['--http', '127.0.0.1:0', '--token', 's3cret']);
    expect(s.log).toMatch(/bearer token required/);
    await expect(client(s.url!)).rejects.toThrow(/401|bearer/i);
    await expect(client(s.url!, 'wrong')).rejects.toThrow(/401|bearer/i);
    const c = await client(s.url!, 's3cret');
    try {
      expect((await c.listTools()).tools.length).toBe(15);
    } finally {
      await c.close();
    }
  });

  it('off loopback: refuses to start without a token; starts with TAPWIRE_TOKEN and requires it', async () => {
    const refused = await serve(['--http', '0.0.0.0:0']);
    expect(refused.code).toBe(2);
    expect(refused.log).toMatch(/--http 0\.0\.0\.0:0 is not loopback: give a token with --token or TAPWIRE_TOKEN/);
    const s = await serve(['--http', '0.0.0.0:0'], { TAPWIRE_TOKEN: 'from-env' });
    const url = s.url!.replace('0.0.0.0', '127.0.0.1');
    await expect(client(url)).rejects.toThrow(/401|bearer/i);
    const c = await client(url, 'from-env');
    try {
      const r = (await c.callTool({ name: 'analyze_capture', arguments: { capture: DEMO, limit: 1 } })) as CallToolResult;
      expect((r.structuredContent as { summary: { flows: number } }).summary.flows).toBe(29);
    } finally {
      await c.close();
    }
  });
});
