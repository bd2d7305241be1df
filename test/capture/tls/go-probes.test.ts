/**
 * Go crypto/tls through uprobes (TlsProbes level; root and the addon built): the Go https peer
 * (test/agent/pods/go-tls) built with the current Go, Debian's Go 1.19 and stripped. For each:
 * the client's request and the server's response in both processes' chunks (library 'go', the fd
 * and 4-tuple read from the *tls.Conn), the session's end at (*tls.Conn).Close after all its
 * chunks, and a SIGKILLed client's sessions ended by the exit event. Skips with the reason.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTlsProbes, tlsProbesUnavailable, type TlsChunk, type TlsEnd, type TlsExit, type TlsProbes } from '../../../src/capture/index.js';
import { goArm64Build, goBuilds } from './go-build.js';

const { builds, missing } = goBuilds();
const why = process.platform !== 'linux' ? 'needs Linux'
  : process.getuid?.() !== 0 ? 'needs root (uprobes)'
  : tlsProbesUnavailable().join('; ') || (builds.length ? '' : missing.join('; '));
if (why) console.warn(`test/capture/tls/go-probes.test.ts skipped: ${why}`);
else if (missing.length) console.warn(`test/capture/tls/go-probes.test.ts: some builds missing: ${missing.join('; ')}`);

function lineOf(child: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      const m = re.exec(l);
      if (m) resolve(m);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before ${re}`)));
  });
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const text = (cs: TlsChunk[]) => Buffer.concat(cs.map((c) => c.data)).toString('latin1');

describe.skipIf(why !== '')('Go crypto/tls plaintext through uprobes', () => {
  let probes: TlsProbes;
  const chunks: TlsChunk[] = [];
  const ends: (TlsEnd & { seenAfter: number })[] = [];
  const exits: TlsExit[] = [];
  const children: ChildProcess[] = [];

  const arm64 = goArm64Build();

  beforeAll(() => {
    probes = openTlsProbes({ targets: [...builds.map((b) => b.path), ...(arm64 ? [arm64] : [])], handleSignals: false });
    probes.on('chunk', (c: TlsChunk) => chunks.push(c));
    probes.on('end', (e: TlsEnd) => ends.push({ ...e, seenAfter: chunks.length }));
    probes.on('exit', (e: TlsExit) => exits.push(e));
  });

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    probes?.close();
  });

  it('attaches to every build: Read, Close and writeRecordLocked of crypto/tls; an arm64 build is listed as unprobeable, with the reason', () => {
    expect(probes.unprobeable).toEqual(arm64 ? [{ path: arm64, pids: [], reason: expect.stringMatching(/^Go program \(go1\.\d+.*\): unsupported architecture/) }] : []);
    for (const b of builds) {
      const a = probes.attached.find((x) => x.path === b.path)!;
      expect(a.failed, b.name).toEqual([]);
      // Written plaintext comes from writeRecordLocked (wire order), so Write itself is not probed.
      expect(a.attached).toEqual(['crypto/tls.(*Conn).Read', 'crypto/tls.(*Conn).Close', 'crypto/tls.(*Conn).writeRecordLocked']);
    }
  });

  it.each(builds.map((b) => [b.name, b] as const))('%s: request and response on both ends, then Close ends the sessions', async (_n, b) => {
    const server = spawn(b.path, ['server'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    const port = Number((await lineOf(server, /^listening (\d+)/))[1]);
    const client = spawn(b.path, ['client', '-url', `https://127.0.0.1:${port}/hello-${b.name}`, '-close'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const status = await lineOf(client, /^status (\d+)/);
    expect(status[1]).toBe('200');
    const mine = (pid: number | undefined, dir: TlsChunk['direction']) => chunks.filter((c) => c.pid === pid && c.direction === dir);
    await until(() => text(mine(server.pid, 'egress')).includes('"path"') && ends.some((e) => e.pid === client.pid));
    const req = text(mine(client.pid, 'egress'));
    expect(req).toMatch(new RegExp(`^GET /hello-${b.name} HTTP/1\\.1\\r\\n`));
    expect(text(mine(server.pid, 'ingress'))).toBe(req);
    const resp = text(mine(server.pid, 'egress'));
    expect(resp).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(resp).toContain(`{"path":"/hello-${b.name}"}`);
    expect(text(mine(client.pid, 'ingress'))).toBe(resp);
    for (const c of chunks.filter((x) => x.pid === client.pid || x.pid === server.pid)) {
      expect(c.library).toBe('go');
      expect(c.side).toBe(c.pid === client.pid ? 'client' : 'server');
      expect(c.fd).toBeGreaterThanOrEqual(0);
      expect(['go-conn', 'cached']).toContain(c.fdSource);
      expect(c.connection).toBeDefined();
    }
    const cc = mine(client.pid, 'egress')[0]!;
    expect(cc.connection!.remote.port).toBe(port);
    expect(mine(server.pid, 'ingress')[0]!.connection!.local.port).toBe(port);
    // The client's Close: one end for its *tls.Conn, after every chunk of it.
    const end = ends.find((e) => e.pid === client.pid)!;
    expect(end.library).toBe('go');
    expect(end.ssl).toBe(cc.ssl);
    expect(end.connection?.remote.port).toBe(port);
    const lastChunk = chunks.map((c, i) => [c, i] as const).filter(([c]) => c.pid === client.pid).at(-1)![1];
    expect(end.seenAfter).toBeGreaterThan(lastChunk);
    // The server sees the close and closes its side.
    await until(() => ends.some((e) => e.pid === server.pid && e.ssl === mine(server.pid, 'ingress')[0]!.ssl));
    server.kill('SIGKILL');
  });

  it('HTTP/2 through ALPN h2: the preface and frames on both ends, the sides told apart although the server writes first', async () => {
    const b = builds[0]!;
    const server = spawn(b.path, ['server', '-h2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    const port = Number((await lineOf(server, /^listening (\d+)/))[1]);
    const client = spawn(b.path, ['client', '-h2', '-url', `https://127.0.0.1:${port}/h2/items/7`, '-close'], { stdio: ['ignore', 'pipe', 'inherit'] });
    expect((await lineOf(client, /^status (\d+)/))[1]).toBe('200');
    const mine = (pid: number | undefined, dir: TlsChunk['direction']) => chunks.filter((c) => c.pid === pid && c.direction === dir);
    await until(() => text(mine(client.pid, 'ingress')).includes('/h2/items/7') && ends.some((e) => e.pid === client.pid));
    await until(() => text(mine(server.pid, 'ingress')).length >= text(mine(client.pid, 'egress')).length);
    const req = text(mine(client.pid, 'egress'));
    expect(req.startsWith('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')).toBe(true);
    expect(text(mine(server.pid, 'ingress'))).toBe(req);
    expect(text(mine(client.pid, 'ingress'))).toBe(text(mine(server.pid, 'egress')).slice(0, text(mine(client.pid, 'ingress')).length));
    const said = (c: TlsChunk) => JSON.stringify({ dir: c.direction, fd: c.fd, fdSource: c.fdSource, length: c.length, time: c.time, connection: c.connection });
    for (const c of [...mine(client.pid, 'egress'), ...mine(client.pid, 'ingress')]) expect(c.side, said(c)).toBe('client');
    for (const c of [...mine(server.pid, 'egress'), ...mine(server.pid, 'ingress')]) expect(c.side, said(c)).toBe('server');
    server.kill('SIGKILL');
  });

  it('a SIGKILLed process: its sessions end through the exit event', async () => {
    const b = builds[0]!;
    const server = spawn(b.path, ['server'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    const port = Number((await lineOf(server, /^listening (\d+)/))[1]);
    const client = spawn(b.path, ['client', '-url', `https://127.0.0.1:${port}/held`, '-hold'], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(client);
    await lineOf(client, /^elapsed_ns/);
    await until(() => chunks.some((c) => c.pid === client.pid && c.direction === 'ingress'));
    expect(exits.some((e) => e.pid === client.pid)).toBe(false);
    client.kill('SIGKILL');
    await until(() => exits.some((e) => e.pid === client.pid));
    expect(ends.some((e) => e.pid === client.pid)).toBe(false); // no Close ran: only the exit says it is over
    const exit = exits.find((e) => e.pid === client.pid)!;
    expect(Math.abs(exit.time - Date.now() / 1000)).toBeLessThan(10);
    // A process that made no TLS call sends no exit event.
    const quiet = spawn('true');
    await new Promise((r) => quiet.once('exit', r));
    await new Promise((r) => setTimeout(r, 200));
    expect(exits.some((e) => e.pid === quiet.pid)).toBe(false);
    expect(probes.counters().exits).toBeGreaterThanOrEqual(1);
  });
});
