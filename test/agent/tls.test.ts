import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsProbesUnavailable } from '../../src/capture/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { flowsNow, flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startHttpsFiles } from '../helpers/https-files.js';

/**
 * Issue 17, TLS from curl: `tapwire agent --tls uprobe` started as a user would, curl (libssl.so.3)
 * calling a Node https server (OpenSSL linked into node) on loopback. The agent's packet capture
 * keeps none of it (its filter); the flow must come from the uprobes' plaintext, with the HTTP path,
 * status and body, once, although both ends are probed. Then curl → `openssl s_server -WWW`, which
 * answers HTTP/1.0 with a body delimited by the connection's close: the flow must come out within
 * seconds, because curl's SSL_free ends the session (not the 60 s idle timeout). s_server's own side
 * is not captured (BIO_f_ssl, docs/ebpf.md), so curl's side gives it. Then node:http2 with ALPN h2
 * and grpc-js with TLS credentials (test/agent/pods/tls-h2.mjs, both ends in one process started
 * after the agent): decoded as http2 and grpc from the plaintext.
 */
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const why = process.getuid?.() !== 0 ? 'needs root (eBPF uprobes)'
  : !has('openssl') || !has('curl') ? 'needs openssl and curl'
  : tlsProbesUnavailable().join('; ');
if (why) console.warn(`test/agent/tls.test.ts skipped: ${why}`);

const BIN = 'dist/cli/main.js';

describe.skipIf(why !== '')('tapwire agent --tls uprobe: curl → openssl s_server, decrypted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-agent-'));
  let server: ChildProcess, wwwServer: ChildProcess | undefined;
  let agent: AgentProcess;
  let base = '', port = 0;

  beforeAll(async () => {
    port = 20000 + (process.pid % 20000);
    server = await startHttpsFiles(dir, port);
    agent = await startAgent(['--tls', 'uprobe', '--interface', 'lo', '--filter', `tcp portrange ${port}-${port + 3}`, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      { env: { TAPWIRE_REDACT_KEY: 'tls-e2e' } });
    base = agent.base;
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    server?.kill('SIGKILL');
    wwwServer?.kill('SIGKILL');
  });

  it('says where the probes went', () => {
    expect(agent.log()).toMatch(/TLS plaintext through uprobes on .*libssl\.so/);
    expect(agent.log()).toContain(process.execPath);
  });

  it('the HTTP exchange inside TLS is a flow: path, status and body, once, between curl and the server', async () => {
    const r = spawnSync('curl', ['-sk', `https://127.0.0.1:${port}/orders.json`], { encoding: 'utf8' });
    expect(r.stdout).toBe('{"id":42}\n');
    // Host-wide: other processes' TLS (a test's API server calls) is recorded too; this one's path is ours.
    const flows = await flowsWhere(base, `http && dst.port == ${port}`);
    expect(flows).toHaveLength(1);
    const f = flows[0]! as FlowRecord & { request: { method: string; path: string }; response: { status: number; body?: string } };
    expect([f.request.method, f.request.path, f.response.status]).toEqual(['GET', '/orders.json', 200]);
    expect(f.response.body).toBe('{"id":42}\n');
    expect(f.dst).toMatchObject({ ip: '127.0.0.1', port });
    expect(f.src.ip).toBe('127.0.0.1');
    // Marked as decoded from plaintext, by the probed process that gave it (curl or the server).
    expect(f.tls).toMatchObject({ library: 'openssl', via: 'uprobe' });
    expect(['curl', 'node']).toContain(f.tls?.comm);
    // Coverage says the probes were at work and which process gave this connection.
    const cov = (await (await fetch(`${base}/api/coverage?since=0`)).json()) as { tls: { uprobes: string; decrypted: { connections: number } } };
    expect(cov.tls.uprobes).toBe('seen');
    expect(cov.tls.decrypted.connections).toBeGreaterThanOrEqual(1);
    // /metrics says what the probes delivered: nothing lost, and both ends' copies seen, one given.
    const text = await (await fetch(`${base}/metrics`)).text();
    const m = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(m(/^tapwire_tls_lost_events_total (\S+)/m)).toBe(0);
    expect(m(/^tapwire_tls_connections_total (\S+)/m)).toBeGreaterThanOrEqual(1);
    expect(m(/^tapwire_tls_events_total (\S+)/m)).toBeGreaterThanOrEqual(4);
    expect(m(/^tapwire_tls_chunks_total\{state="placed"\} (\S+)/m)).toBeGreaterThanOrEqual(2);
    expect(m(/^tapwire_tls_chunks_total\{state="other-side"\} (\S+)/m)).toBeGreaterThanOrEqual(2);
    // Kept in the store as synthesized TCP (handshake, request, response), for snapshots and pcap export.
    expect(m(/^tapwire_tls_plaintext_stored_packets_total (\S+)/m)).toBeGreaterThanOrEqual(5);
    expect(m(/^tapwire_tls_plaintext_store_failures_total (\S+)/m)).toBe(0);
    // The connection-owner tracepoints saw curl's connect and the server's accept, and lost none.
    expect(m(/^tapwire_tls_owner_events_total (\S+)/m)).toBeGreaterThanOrEqual(2);
    expect(m(/^tapwire_tls_owner_lost_events_total (\S+)/m)).toBe(0);
    expect(m(/^tapwire_tls_owner_connections (\S+)/m)).toBeGreaterThanOrEqual(1);
  });

  it('a decrypted record carries the server name its connection\'s ClientHello asked for (the capture saw the handshake)', async () => {
    // curl sends SNI for a name, not for an address: --resolve gives the name without DNS.
    const r = spawnSync('curl', ['-sk', '--resolve', `shop.example:${port}:127.0.0.1`, `https://shop.example:${port}/orders.json?sni=1`], { encoding: 'utf8' });
    expect(r.stdout).toBe('{"id":42}\n');
    const flows = await flowsWhere(base, `http && dst.port == ${port} && record.tls.sni == "shop.example"`);
    expect(flows).toHaveLength(1);
    expect((flows[0] as FlowRecord & { request: { path: string } }).request.path).toBe('/orders.json?sni=1');
    expect(flows[0]!.tls).toMatchObject({ via: 'uprobe', sni: 'shop.example' });
    // The call by address had no server name, and its record says none.
    const byIp = await flowsNow(base, `http && dst.port == ${port} && request.path == "/orders.json"`);
    expect(byIp.map((f) => f.tls?.sni)).toEqual([undefined]);
  });

  it('curl → openssl s_server -WWW (HTTP/1.0, body ended by the close): the flow comes out at once, whole', async () => {
    const wwwPort = port + 1;
    wwwServer = spawn('openssl', ['s_server', '-WWW', '-accept', String(wwwPort), '-cert', 'c.pem', '-key', 'k.pem', '-quiet'], { cwd: dir, stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      const up = spawnSync(process.execPath, ['-e', `require('net').connect(${wwwPort}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`]);
      if (up.status === 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const r = spawnSync('curl', ['-sk', `https://127.0.0.1:${wwwPort}/orders.json`], { encoding: 'utf8' });
    expect(r.stdout).toBe('{"id":42}\n');
    const asked = Date.now();
    let flows: FlowRecord[] = [];
    while (flows.length === 0 && Date.now() - asked < 10_000) {
      await new Promise((res) => setTimeout(res, 100));
      flows = await flowsNow(base, `http && dst.port == ${wwwPort}`);
    }
    const waited = Date.now() - asked;
    console.log(`s_server -WWW: the flow came out ${waited} ms after curl returned`);
    expect(flows).toHaveLength(1);
    expect(waited).toBeLessThan(5_000); // the idle timeout would take 60 s
    const f = flows[0]! as FlowRecord & { request: { method: string; path: string }; response: { status: number; body?: string } };
    expect([f.request.method, f.request.path, f.response.status]).toEqual(['GET', '/orders.json', 200]);
    expect(f.response.body).toBe('{"id":42}\n');
    expect(f.incomplete).toBeFalsy();
    expect(f.dst).toMatchObject({ ip: '127.0.0.1', port: wwwPort });
    expect(f.tls).toMatchObject({ library: 'openssl', via: 'uprobe', comm: 'curl' });
  });

  it('the capture filter applies to plaintext too: a TLS call to a port it leaves out is not recorded', async () => {
    const other = port + 10;
    const serve = `const https = require('node:https'), fs = require('node:fs');
      https.createServer({ key: fs.readFileSync('k.pem'), cert: fs.readFileSync('c.pem') }, (q, s) => s.end('outside'))
        .listen(${other}, '127.0.0.1', () => console.log('listening'));`;
    const outside = spawn(process.execPath, ['-e', serve], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => outside.stdout!.once('data', () => resolve()));
      expect(spawnSync('curl', ['-sk', `https://127.0.0.1:${other}/`], { encoding: 'utf8' }).stdout).toBe('outside');
      // A call inside the filter, made after it, shows the pipeline has moved past the outside one.
      expect(spawnSync('curl', ['-sk', `https://127.0.0.1:${port}/orders.json`], { encoding: 'utf8' }).stdout).toBe('{"id":42}\n');
      await flowsWhere(base, `dst.port == ${port}`, { want: 2 });
      expect((await flowsNow(base, `dst.port == ${port}`)).length).toBeGreaterThanOrEqual(2);
      expect(await flowsNow(base, `dst.port == ${other}`)).toEqual([]);
    } finally {
      outside.kill('SIGKILL');
    }
  });

  it('HTTP/2 with ALPN h2 and gRPC with TLS credentials: decoded as http2 and grpc, once each', async () => {
    const h2 = port + 2, rpc = port + 3;
    const r = spawnSync(process.execPath, [join(process.cwd(), 'test/agent/pods/tls-h2.mjs'), 'c.pem', 'k.pem', String(h2), String(rpc)], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ h2: '{"path":"/h2/items/7"}', grpc: 'ord-00042' });
    const ask = (filter: string) => flowsNow(base, filter);
    let h2Flows: FlowRecord[] = [], grpcFlows: FlowRecord[] = [];
    for (let i = 0; i < 50 && (h2Flows.length === 0 || grpcFlows.length === 0); i++) {
      await new Promise((res) => setTimeout(res, 200));
      h2Flows = await ask(`http2 && dst.port == ${h2}`);
      grpcFlows = await ask(`grpc && dst.port == ${rpc}`);
    }
    expect(h2Flows).toHaveLength(1);
    const h = h2Flows[0]! as FlowRecord & { request: { path: string }; response: { status: number } };
    expect([h.request.path, h.response.status]).toEqual(['/h2/items/7', 200]);
    expect(h.tls).toMatchObject({ via: 'uprobe' });
    expect(grpcFlows).toHaveLength(1);
    const g = grpcFlows[0]! as FlowRecord & { grpc?: { service: string; method: string }; response?: { grpcStatus?: number } };
    expect(g.grpc).toMatchObject({ service: 'tapwire.demo.Orders', method: 'GetOrder' });
    expect(g.response?.grpcStatus).toBe(0);
    expect(g.tls).toMatchObject({ via: 'uprobe' });
  });
});

describe('tapwire agent --tls uprobe where the probes cannot run', () => {
  // As root, the same command run as user nobody (no CAP_BPF, no CAP_PERFMON, no CAP_SYS_ADMIN).
  const asNobody = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v setpriv']).status === 0;
  it('exits 2 before opening anything, naming what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-no-'));
    chmodSync(dir, 0o777);
    const args = [process.execPath, BIN, 'agent', '--tls', 'uprobe', '--interface', 'lo', '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')];
    const cmd = asNobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...args] : args;
    const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', timeout: 20_000, env: { ...process.env, HOME: dir } });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^tapwire agent: --tls uprobe: \S/m);
    expect(r.stderr).not.toMatch(/capturing on/);
  });
});
