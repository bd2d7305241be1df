import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsProbesUnavailable } from '../../src/capture/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { goBuilds, type GoBuild } from '../capture/tls/go-build.js';
import { flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';

/**
 * Issue 17, Go's crypto/tls: `tapwire agent --tls uprobe` started as a user would, a Go https client
 * calling a Go https server on loopback (test/agent/pods/go-tls), built with the current Go, with
 * Debian's Go 1.19 and stripped (-ldflags='-s -w', found through .gopclntab). The flow must come
 * from the uprobes' plaintext: HTTP path and status, tls.library 'go', once although both ends are
 * probed. The servers of the first two run before the agent (found by its scan); the stripped one is
 * started after it (found on its exec). Then HTTP/2 through ALPN h2.
 */
const { builds, missing } = goBuilds();
const why = process.getuid?.() !== 0 ? 'needs root (eBPF uprobes)'
  : tlsProbesUnavailable().join('; ') || (builds.length ? '' : missing.join('; '));
if (why) console.warn(`test/agent/tls-go.test.ts skipped: ${why}`);
else if (missing.length) console.warn(`test/agent/tls-go.test.ts: some builds missing: ${missing.join('; ')}`);

type HttpFlow = FlowRecord & { request: { method: string; path: string }; response: { status: number; body?: string } };

function listening(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

describe.skipIf(why !== '')('tapwire agent --tls uprobe: Go client → Go server, decrypted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-go-'));
  const base0 = 30000 + (process.pid % 20000);
  const portOf = (i: number) => base0 + i;
  const servers: ChildProcess[] = [];
  let agent: AgentProcess;
  const early = builds.filter((b) => !b.stripped);
  const late = builds.filter((b) => b.stripped);
  const serve = (b: GoBuild, i: number, args: string[] = []) => {
    const s = spawn(b.path, ['server', '-listen', `127.0.0.1:${portOf(i)}`, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(s);
    return listening(s);
  };

  beforeAll(async () => {
    await Promise.all(early.map((b) => serve(b, builds.indexOf(b))));
    agent = await startAgent(['--tls', 'uprobe', '--interface', 'lo', '--filter', `tcp portrange ${base0}-${base0 + builds.length}`,
      '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], { env: { TAPWIRE_REDACT_KEY: 'tls-go-e2e' } });
    for (const b of late) {
      await serve(b, builds.indexOf(b));
      // Found on its exec: the agent says so once attached.
      for (let i = 0; i < 100 && !agent.log().includes(`also on ${b.path}`); i++) await new Promise((r) => setTimeout(r, 50));
    }
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    for (const s of servers) s.kill('SIGKILL');
  });

  const flowsAt = (filter: string, want = 1) => flowsWhere<HttpFlow>(agent.base, filter, { want });

  it('says where the probes went: the Go servers started before it', () => {
    for (const b of early) expect(agent.log()).toContain(b.path);
    for (const b of late) expect(agent.log()).toContain(`also on ${b.path}`);
  });

  it.each(builds.map((b) => [b.name, b] as const))('%s: the HTTPS call is a flow with path and status, marked go, once', async (_n, b) => {
    const port = portOf(builds.indexOf(b));
    const r = spawnSync(b.path, ['client', '-url', `https://127.0.0.1:${port}/orders/${b.name}`, '-close'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toContain(`status 200 {"path":"/orders/${b.name}"}`);
    const flows = await flowsAt(`http && dst.port == ${port}`);
    // Give a second copy (the other end's plaintext) the time to show up, if it were going to.
    await new Promise((res) => setTimeout(res, 500));
    const all = await flowsAt(`http && dst.port == ${port}`);
    // On failure, say which processes gave which copies.
    expect(all, JSON.stringify(all.map((f) => ({ id: f.connectionId, tls: f.tls, incomplete: f.incompleteReason })))).toHaveLength(1);
    const f = flows[0]!;
    expect([f.request.method, f.request.path, f.response.status]).toEqual(['GET', `/orders/${b.name}`, 200]);
    expect(f.response.body).toBe(`{"path":"/orders/${b.name}"}\n`);
    expect(f.dst).toMatchObject({ ip: '127.0.0.1', port });
    expect(f.tls).toMatchObject({ library: 'go', via: 'uprobe' });
  });

  // Go's HTTP/2 server writes its SETTINGS before the client's preface: the pipeline takes roles
  // from which end listens (TlsChunk.side), not from who writes first.
  it('HTTP/2 through ALPN h2 (current Go): decoded as http2, marked go, once', async () => {
    const b = early[0] ?? builds[0]!;
    const port = base0 + builds.length;
    await serve(b, builds.length, ['-h2']);
    const r = spawnSync(b.path, ['client', '-h2', '-url', `https://127.0.0.1:${port}/h2/items/7`, '-close'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout).toContain('status 200 {"path":"/h2/items/7"}');
    const flows = await flowsAt(`http2 && dst.port == ${port}`);
    await new Promise((res) => setTimeout(res, 500));
    const all = await flowsAt(`http2 && dst.port == ${port}`);
    expect(all, JSON.stringify(all.map((x) => ({ id: x.connectionId, s: x.src, stream: (x as { streamId?: number }).streamId, tls: x.tls, p: x.request?.path, st: x.response?.status, incomplete: x.incompleteReason })))).toHaveLength(1);
    const f = flows[0]!;
    expect([f.request.path, f.response.status]).toEqual(['/h2/items/7', 200]);
    expect(f.tls).toMatchObject({ library: 'go', via: 'uprobe' });
  });
});
