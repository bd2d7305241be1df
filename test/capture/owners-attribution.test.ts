import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnerWatch, ownersUnavailable, type ConnectionEnds } from '../../src/capture/index.js';
import { cgroup2Mount } from '../../src/enrich/process/index.js';
import { firstLine } from '../helpers/child-lines.js';

/**
 * Issue 18, "Process attribution", the kernel half: a Node http client and a Node http server,
 * each its own process named by process.title (the task comm), on loopback. The owner watch
 * without TLS classification must give the client's pid and comm for the end that connected and
 * the server's for the end that accepted, and the kernel's cgroup id of a client moved into a
 * cgroup must be that cgroup directory's inode (what enrich/process relies on).
 */
const mount = (() => {
  try {
    return cgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
  } catch {
    return undefined;
  }
})();
const why = process.getuid?.() !== 0 ? 'needs root (tracepoints, cgroups)'
  : ownersUnavailable().join('; ') || (mount ? '' : 'no cgroup2 mount');
if (why) console.warn(`test/capture/owners-attribution.test.ts skipped: ${why}`);

const SERVER = `process.title = 'tw-attr-srv';
  require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
/** Connects once a line comes on stdin (so the test can move it into a cgroup first), then prints its local port. */
const CLIENT = `process.title = 'tw-attr-cli';
  process.stdin.once('data', () => {
    const q = require('node:http').get({ host: '127.0.0.1', port: Number(process.argv[1]), agent: false }, (r) => r.resume());
    q.on('socket', (s) => s.on('connect', () => { process.stdout.write(s.localPort + '\\n'); }));
  });`;

async function endsOf(w: OwnerWatch, local: number, port: number): Promise<ConnectionEnds | undefined> {
  let e: ConnectionEnds | undefined;
  for (let i = 0; i < 100 && !(e?.client && e.server); i++) {
    await new Promise((r) => setTimeout(r, 20));
    e = w.owners.ends({ ip: '127.0.0.1', port: local }, { ip: '127.0.0.1', port });
  }
  return e;
}

describe.skipIf(why !== '')('OwnerWatch for attribution: Node client → Node server on loopback', () => {
  const ID = 'c0ffee00'.repeat(8);
  const parent = join(mount ?? '/nonexistent', 'tapwire-test-owners');
  const cg = join(parent, `cri-containerd-${ID}.scope`);
  let w: OwnerWatch;
  let server: ChildProcess;
  const clients: ChildProcess[] = [];
  let port = 0;

  beforeAll(async () => {
    w = new OwnerWatch({ classifyTls: false });
    server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = Number(await firstLine(server));
  });

  afterAll(async () => {
    w?.close();
    server?.kill('SIGKILL');
    for (const c of clients) c.kill('SIGKILL');
    // A cgroup is removed once its processes are gone.
    for (let i = 0; i < 50 && existsSync(cg); i++) {
      try { rmdirSync(cg); } catch { await new Promise((r) => setTimeout(r, 20)); }
    }
    if (existsSync(parent)) rmdirSync(parent);
  });

  const client = () => {
    const c = spawn(process.execPath, ['-e', CLIENT, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    clients.push(c);
    return c;
  };

  it('the client connected, the server accepted: their pids and comms, and no TLS library looked at', async () => {
    const c = client();
    c.stdin!.write('go\n');
    const local = Number(await firstLine(c));
    const e = await endsOf(w, local, port);
    expect(e?.client).toMatchObject({ pid: c.pid, comm: 'tw-attr-cli' });
    expect(e?.server).toMatchObject({ pid: server.pid, comm: 'tw-attr-srv' });
    expect(w.owners.counters.classified).toBe(0);
    expect(e?.client?.tls.library).toBe('unknown');
  });

  it('a client in a cgroup: the kernel\'s cgroup id is the inode of that cgroup\'s directory', async () => {
    mkdirSync(cg, { recursive: true });
    const c = client();
    await new Promise((r) => c.once('spawn', r));
    writeFileSync(join(cg, 'cgroup.procs'), String(c.pid));
    c.stdin!.write('go\n');
    const local = Number(await firstLine(c));
    const e = await endsOf(w, local, port);
    expect(e?.client?.pid).toBe(c.pid);
    expect(e?.client?.cgroupId).toBe(statSync(cg).ino);
    expect(e?.server?.cgroupId).not.toBe(statSync(cg).ino);
  });
});
