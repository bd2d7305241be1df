import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownersUnavailable } from '../../src/capture/index.js';
import { cgroup2Mount, containerOfPath, unifiedPath } from '../../src/enrich/process/index.js';
import { flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { firstLine } from '../helpers/child-lines.js';

/**
 * Issue 18, "Process attribution": `tapwire agent --interface lo` started as a user would (no
 * --tls), a Node http server and Node http clients, each named by process.title (the task comm).
 * Every record's src.process must be the client's pid and comm, dst.process the server's; a client
 * moved into a cgroup named as containerd names a container's must carry that container id.
 */
const mount = (() => {
  try {
    return cgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined;
  }
})();
const why = process.getuid?.() !== 0 ? 'needs root (tracepoints, cgroups)'
  : ownersUnavailable().join('; ') || (mount ? '' : 'no cgroup2 mount')
  || (existsSync('dist/cli/main.js') ? '' : 'no dist/cli/main.js: run npm run build');
if (why) console.warn(`test/agent/process-attribution.test.ts skipped: ${why}`);

/** This test's own container, if it runs in one (CI in a container): the server and a plain client share it. */
const own = why ? {} : containerOfPath(unifiedPath(readFileSync('/proc/self/cgroup', 'utf8')) ?? '/');

const SERVER = `process.title = 'tw-pa-server';
  require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
/** Connects once a line comes on stdin (the test may move it into a cgroup first); prints its local port, exits after the answer. */
const CLIENT = `process.title = 'tw-pa-client';
  process.stdin.once('data', () => {
    const q = require('node:http').get({ host: '127.0.0.1', port: Number(process.argv[1]), path: process.argv[2], agent: false }, (r) => { r.resume(); r.on('end', () => process.exit(0)); });
    q.on('socket', (s) => s.on('connect', () => process.stdout.write(s.localPort + '\\n')));
  });`;

describe.skipIf(why !== '')('tapwire agent: src.process and dst.process on every record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-attribution-'));
  const ID = '5ca1ab1e'.repeat(8);
  const parent = join(mount ?? '/nonexistent', 'tapwire-test-agent');
  const cg = join(parent, `cri-containerd-${ID}.scope`);
  let server: ChildProcess;
  let agent: AgentProcess;
  let port = 0;

  beforeAll(async () => {
    server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = Number(await firstLine(server));
    agent = await startAgent(['--interface', 'lo', '--filter', `tcp port ${port}`, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      { env: { TAPWIRE_REDACT_KEY: 'attribution' } });
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    server?.kill('SIGKILL');
    for (let i = 0; i < 50 && existsSync(cg); i++) {
      try { rmdirSync(cg); } catch { await new Promise((r) => setTimeout(r, 20)); }
    }
    if (existsSync(parent)) rmdirSync(parent);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one client for `path`, first moved into `cgroup` if given; resolves with it once it has its answer. */
  async function request(path: string, cgroup?: string): Promise<ChildProcess> {
    const c = spawn(process.execPath, ['-e', CLIENT, String(port), path], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((r) => c.once('spawn', r));
    if (cgroup) writeFileSync(join(cgroup, 'cgroup.procs'), String(c.pid));
    const exited = new Promise((r) => c.once('exit', r));
    c.stdin!.write('go\n');
    await firstLine(c);
    await exited;
    return c;
  }

  it('says nothing about attribution being off', () => {
    expect(agent.log()).not.toMatch(/process attribution off/);
  });

  it('the client\'s pid and comm on src, the server\'s on dst', async () => {
    const c = await request('/plain');
    const flows = await flowsWhere(agent.base, `http && request.path == "/plain"`);
    expect(flows).toHaveLength(1);
    const f = flows[0]!;
    expect(f.src.process).toEqual({ pid: c.pid, comm: 'tw-pa-client', ...own });
    expect(f.dst.process).toEqual({ pid: server.pid, comm: 'tw-pa-server', ...own });
    // Queryable as a field of the record.
    expect(await flowsWhere(agent.base, `src.process.comm == "tw-pa-client" && dst.process.pid == ${server.pid}`)).toHaveLength(1);
    // /metrics: ends named, owner events read, none lost.
    const text = await (await fetch(`${agent.base}/metrics`)).text();
    const m = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(m(/^tapwire_process_attribution_ends_total (\S+)/m)).toBeGreaterThanOrEqual(2);
    expect(m(/^tapwire_process_attribution_records_total\{state="given"\} (\S+)/m)).toBeGreaterThanOrEqual(1);
    expect(m(/^tapwire_tls_owner_events_total (\S+)/m)).toBeGreaterThanOrEqual(2);
    expect(m(/^tapwire_tls_owner_lost_events_total (\S+)/m)).toBe(0);
  });

  it('a client in a container\'s cgroup carries its container id', async () => {
    mkdirSync(cg, { recursive: true });
    const c = await request('/contained', cg);
    const flows = await flowsWhere(agent.base, `http && request.path == "/contained"`);
    expect(flows).toHaveLength(1);
    expect(flows[0]!.src.process).toEqual({ pid: c.pid, comm: 'tw-pa-client', containerId: ID });
    expect(flows[0]!.dst.process).toEqual({ pid: server.pid, comm: 'tw-pa-server', ...own });
  });
});

describe.skipIf(why !== '')('tapwire agent --no-processes', () => {
  it('names no process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-attribution-off-'));
    const server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = Number(await firstLine(server));
    const agent = await startAgent(['--no-processes', '--tls', 'off', '--interface', 'lo', '--filter', `tcp port ${port}`, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      { env: { TAPWIRE_REDACT_KEY: 'attribution-off' } });
    try {
      const c = spawn(process.execPath, ['-e', CLIENT, String(port), '/off'], { stdio: ['pipe', 'pipe', 'inherit'] });
      c.stdin!.write('go\n');
      await firstLine(c);
      const flows = await flowsWhere(agent.base, `http && request.path == "/off"`);
      expect(flows).toHaveLength(1);
      expect(flows[0]!.src.process).toBeUndefined();
      expect(flows[0]!.dst.process).toBeUndefined();
      expect(/^tapwire_process_attribution_ends_total (\S+)/m.exec(await (await fetch(`${agent.base}/metrics`)).text())?.[1]).toBe('0');
    } finally {
      await agent.stop();
      server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
