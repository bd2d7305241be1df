import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { DEMO, ROOT } from './helpers.js';

/**
 * `tapwire mcp` as an agent runs it: the built CLI as a subprocess speaking MCP on stdio. Needs
 * `npm run build` first (npm test builds when needed).
 */
const env = { ...process.env, TAPWIRE_DATA_DIR: mkdtempSync(join(tmpdir(), 'tapwire-mcp-stdio-')), TAPWIRE_REDACT_KEY: 'stdio-test-key' } as Record<string, string>;

describe('tapwire mcp on stdio (subprocess)', () => {
  it('initializes, lists its tools, and verifies the demo capture: fail, with its three error findings', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: ['dist/cli/main.js', 'mcp'], cwd: ROOT, env, stderr: 'pipe' });
    let log = '';
    transport.stderr!.on('data', (d) => { log += d; });
    const client = new Client({ name: 'stdio-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      expect(client.getServerVersion()).toMatchObject({ name: 'tapwire' });
      expect(client.getServerCapabilities()).toMatchObject({ tools: {}, resources: { subscribe: true }, prompts: {} });
      const tools = (await client.listTools()).tools.map((t) => t.name);
      expect(tools).toEqual(expect.arrayContaining(['verify', 'list_flows', 'get_flow', 'run_and_verify', 'analyze_capture']));
      const r = (await client.callTool({ name: 'verify', arguments: { capture: DEMO } })) as CallToolResult;
      expect(r.isError).toBeFalsy();
      const v = r.structuredContent as { verdict: string; findings: { kind: string; severity: string }[] };
      expect(v.verdict).toBe('fail');
      expect(v.findings.filter((f) => f.severity === 'error').map((f) => f.kind).sort()).toEqual(['redundant-call', 'retry', 'secret-forwarded']);
    } finally {
      await client.close();
    }
    expect(log).toMatch(/tapwire mcp: serving on stdio/);
  });

  it('writes nothing but protocol messages to stdout; logs go to stderr', async () => {
    const child = spawn(process.execPath, ['dist/cli/main.js', 'mcp'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const send = (m: object) => child.stdin.write(`${JSON.stringify(m)}\n`);
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'verify', arguments: { capture: DEMO } } });
    send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'analyze_capture', arguments: { capture: 'pcaps/demo/missing.pcap' } } });
    for (let i = 0; i < 200 && out.split('\n').filter(Boolean).length < 3; i++) await new Promise((r) => setTimeout(r, 50));
    child.stdin.end();
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(0);
    const lines = out.split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    // Answers come as calls finish: the failing one may overtake the verify.
    const messages = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id: number; result: { isError?: boolean; content: { text: string }[] } }).sort((a, b) => a.id - b.id);
    for (const m of messages) expect(m.jsonrpc).toBe('2.0');
    expect(messages.map((m) => m.id)).toEqual([1, 2, 3]);
    expect(messages[2]!.result).toMatchObject({ isError: true, content: [{ text: expect.stringMatching(/^capture: .*no such file/) }] });
    expect(err).toMatch(/serving on stdio/);
  });
});
