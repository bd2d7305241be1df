/**
 * TLS plaintext through uprobes, end to end (root, the addon built by `npm run build:native`):
 * - curl → `openssl s_server -www` on loopback: curl's request and the response, with curl's pid,
 *   comm, direction and the connection's 4-tuple;
 *   and the session's end (SSL_free) after all of its chunks;
 * - a Node https client and server in one child process (node links OpenSSL statically): both
 *   ends, kept apart by fd;
 * - a program started after the probes opened (a copy of node at a new path): found on its exec,
 *   attached once, its plaintext seen;
 * - clean shutdown: after close(), after SIGTERM of a child that held the probes and after SIGKILL
 *   of another, no program of ours stays loaded and no uprobe stays registered.
 * Skips with the reason when it cannot run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, chmodSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  inspectElf, openTlsProbes, tlsProbesUnavailable, type LateAttach, type TlsChunk, type TlsEnd, type TlsProbes,
} from '../../../src/capture/index.js';

const has = (cmd: string, ...args: string[]) => spawnSync(cmd, args).status === 0;
const why = process.platform !== 'linux' ? 'needs Linux'
  : process.getuid?.() !== 0 ? 'needs root (uprobes)'
  : tlsProbesUnavailable().join('; ') || (!has('curl', '--version') ? 'no curl' : !has('openssl', 'version') ? 'no openssl' : '');
if (why) console.warn(`test/capture/tls/probes.test.ts skipped: ${why}`);

/**
 * Every program native/tls.bpf.c defines, read from its source so that a new one (the Go probes,
 * tp_exit) is checked too: the function after each SEC(...) line, whole (bpftool names a program
 * from its BTF) and cut to the 15 characters the kernel itself keeps.
 */
const PROG_NAMES = new Set([...readFileSync('native/tls.bpf.c', 'utf8').matchAll(/^SEC\([^)]*\)\s*\n(?:int BPF_K(?:RET)?PROBE\((\w+)|int (\w+)\()/gm)]
  .flatMap((m) => [(m[1] ?? m[2])!, (m[1] ?? m[2])!.slice(0, 15)]));

/** Our programs still loaded in the kernel (bpftool truncates names to 15 characters). */
function ourPrograms(): string[] {
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return (JSON.parse(r.stdout) as { name?: string }[]).map((p) => p.name ?? '').filter((n) => PROG_NAMES.has(n) || n.startsWith('ssl_'));
}

function uprobeEvents(): string {
  try {
    return readFileSync('/sys/kernel/tracing/uprobe_events', 'utf8');
  } catch {
    return '';
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function waitLine(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((res, rej) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      if (re.test(l)) res(l);
    });
    child.once('exit', (c) => rej(new Error(`child exited (${c}) before ${re}`)));
  });
}

const text = (cs: TlsChunk[]) => Buffer.concat(cs.map((c) => c.data)).toString('latin1');

describe.skipIf(why !== '')('TLS plaintext through uprobes (root)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  beforeAll(() => {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('curl → openssl s_server: the request and response plaintext with curl\'s pid, comm, direction and 4-tuple', async () => {
    const libssl = spawnSync('sh', ['-c', 'ldd "$(command -v curl)" | sed -n "s/.*libssl[^ ]* => \\([^ ]*\\).*/\\1/p"'], { encoding: 'utf8' }).stdout.trim();
    expect(libssl).toMatch(/libssl\.so/);
    const port = 20000 + (process.pid % 10000);
    const server = spawn('openssl', ['s_server', '-www', '-accept', String(port), '-cert', cert, '-key', key, '-quiet'], { stdio: 'ignore' });
    const probes = openTlsProbes({ targets: [libssl] });
    try {
      expect(probes.attached[0]!.attached).toEqual(expect.arrayContaining(['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex']));
      const chunks: TlsChunk[] = [];
      const order: (TlsChunk | TlsEnd)[] = [];
      const ends: TlsEnd[] = [];
      probes.on('chunk', (c) => { chunks.push(c); order.push(c); });
      probes.on('end', (e: TlsEnd) => { ends.push(e); order.push(e); });
      // s_server listens a moment after it starts
      await until(() => spawnSync(process.execPath, ['-e', `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`]).status === 0);
      const t0 = Date.now() / 1000;
      const curl = spawnSync('curl', ['-sk', '--http1.1', `https://127.0.0.1:${port}/tapwire-path?x=1`], { encoding: 'utf8' });
      expect(curl.status).toBe(0);
      await until(() => chunks.some((c) => c.direction === 'ingress' && c.comm === 'curl'));
      const mine = chunks.filter((c) => c.comm === 'curl');
      const out = mine.filter((c) => c.direction === 'egress');
      const inb = mine.filter((c) => c.direction === 'ingress');
      expect(text(out)).toMatch(/^GET \/tapwire-path\?x=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
      expect(text(inb)).toMatch(/^HTTP\/1\.0 200 ok\r\n/);
      const pid = mine[0]!.pid;
      for (const c of mine) {
        expect(c.pid).toBe(pid);
        expect(c.fd).toBeGreaterThanOrEqual(0);
        expect(c.time).toBeGreaterThan(t0 - 1);
        expect(c.time).toBeLessThan(Date.now() / 1000 + 1);
        expect(c.cgroupId).toBeGreaterThan(0);
        expect(c.data.length).toBe(c.length);
      }
      expect(pid).not.toBe(process.pid);
      expect(pid).not.toBe(server.pid);
      // The 4-tuple is read in the kernel: curl has exited (and closed the socket) long before JS sees it.
      const named = mine.filter((c) => c.connection);
      expect(named.length).toBe(mine.length);
      for (const c of named) expect(c.connection).toMatchObject({ local: { ip: '127.0.0.1' }, remote: { ip: '127.0.0.1', port } });
      expect(new Set(named.map((c) => c.connection!.local.port)).size).toBe(1);
      // curl frees its SSL* when it closes the connection: the session's end, after all its chunks.
      await until(() => ends.some((e) => e.pid === pid && e.ssl === mine[0]!.ssl));
      const end = ends.find((e) => e.pid === pid && e.ssl === mine[0]!.ssl)!;
      expect(end.comm).toBe('curl');
      expect(end.time).toBeGreaterThanOrEqual(Math.max(...mine.map((c) => c.time)));
      expect(end.connection).toEqual(mine[0]!.connection);
      expect(order.indexOf(end)).toBeGreaterThan(Math.max(...mine.map((c) => order.indexOf(c))));
      const cnt = probes.counters();
      console.log(`curl: ${mine.length} chunks, ${named.length} with a 4-tuple; connection counters ${JSON.stringify(cnt.connections)}; lost ${cnt.lost}; ends ${cnt.ends}`);
      expect(cnt.lost).toBe(0);
    } finally {
      probes.close();
      server.kill();
    }
  });

  // CPython's ssl module calls SSL_write_ex/SSL_read_ex (curl calls SSL_write/SSL_read).
  const python = has('python3', '-c', 'import ssl');
  if (!python) console.warn('test/capture/tls/probes.test.ts: the python3 test skipped: no python3 with ssl');
  it.skipIf(!python)('python3 → a Node https server: the _ex forms carry the byte count through the size pointer', async () => {
    const libssl = spawnSync('python3', ['-c', 'import _ssl; print(_ssl.__file__)'], { encoding: 'utf8' }).stdout.trim();
    const ldd = spawnSync('ldd', [libssl], { encoding: 'utf8' }).stdout;
    const path = /libssl\.so[^ ]* => (\S+)/.exec(ldd)?.[1];
    if (!path) return console.warn(`python3's _ssl does not link libssl dynamically (${libssl}): skipped`);
    const script = join(dir, 'server.mjs');
    writeFileSync(script, `
      import https from 'node:https';
      import { readFileSync } from 'node:fs';
      const s = https.createServer({ key: readFileSync(${JSON.stringify(key)}), cert: readFileSync(${JSON.stringify(cert)}) }, (req, res) => res.end('py-answer ' + 'z'.repeat(40000)));
      s.listen(0, '127.0.0.1', () => console.log('port ' + s.address().port));
    `);
    const server = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const probes = openTlsProbes({ targets: [path] });
    try {
      const port = Number((await waitLine(server, /^port /)).split(' ')[1]);
      const chunks: TlsChunk[] = [];
      probes.on('chunk', (c) => chunks.push(c));
      const py = spawn('python3', ['-c', `
import ssl, urllib.request
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
print(len(urllib.request.urlopen('https://127.0.0.1:${port}/py-path', context=ctx).read()))
`], { stdio: ['ignore', 'pipe', 'inherit'] });
      const out = await waitLine(py, /^\d+$/);
      expect(Number(out)).toBe(10 + 40000);
      await until(() => text(chunks.filter((c) => c.pid === py.pid && c.direction === 'ingress')).includes('py-answer'));
      await until(() => text(chunks.filter((c) => c.pid === py.pid && c.direction === 'ingress')).length >= 40010);
      const mine = chunks.filter((c) => c.pid === py.pid);
      expect(text(mine.filter((c) => c.direction === 'egress'))).toMatch(/^GET \/py-path HTTP\/1\.1\r\n/);
      const inText = text(mine.filter((c) => c.direction === 'ingress'));
      expect(inText).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(inText.endsWith('z'.repeat(100))).toBe(true);
      for (const c of mine) {
        expect(c.data.length).toBe(c.length);
        expect(c.connection?.remote).toEqual({ ip: '127.0.0.1', port });
      }
    } finally {
      probes.close();
      server.kill();
    }
  });

  const nodeSsl = inspectElf(process.execPath);
  if (!nodeSsl.functions.includes('SSL_write')) console.warn(`test/capture/tls/probes.test.ts: the Node test skipped: ${process.execPath}: ${nodeSsl.reason ?? 'no SSL_write'}`);
  it.skipIf(!nodeSsl.functions.includes('SSL_write'))('a Node https client and server: both ends, apart by fd, with their 4-tuples', async () => {
    const script = join(dir, 'node-tls.mjs');
    writeFileSync(script, `
      import https from 'node:https';
      import { readFileSync } from 'node:fs';
      const key = readFileSync(${JSON.stringify(key)}), cert = readFileSync(${JSON.stringify(cert)});
      await new Promise((r) => process.stdin.once('data', r));
      const server = https.createServer({ key, cert }, (req, res) => {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => { res.setHeader('x-got', String(body.length)); res.end('node-answer:' + req.url); });
      });
      server.listen(0, '127.0.0.1', () => {
        const port = server.address().port;
        const req = https.request({ host: '127.0.0.1', port, path: '/node-path', method: 'POST', rejectUnauthorized: false, agent: false }, (res) => {
          let b = '';
          res.on('data', (d) => (b += d));
          res.on('end', () => { console.log('done ' + port + ' ' + b); setTimeout(() => server.close(), 300); });
        });
        req.end('node-body');
      });
    `);
    const probes = openTlsProbes({ targets: [process.execPath] });
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      expect(probes.attached[0]!.attached).toEqual(expect.arrayContaining(['SSL_write', 'SSL_read']));
      const chunks: TlsChunk[] = [];
      const ends: TlsEnd[] = [];
      probes.on('chunk', (c) => c.pid === child.pid && chunks.push(c));
      probes.on('end', (e: TlsEnd) => e.pid === child.pid && ends.push(e));
      const done = waitLine(child, /^done /);
      child.stdin!.write('go\n');
      const line = await done;
      const port = Number(line.split(' ')[1]);
      expect(line).toContain('node-answer:/node-path');
      await until(() => text(chunks).includes('node-answer:/node-path') && chunks.filter((c) => c.direction === 'ingress').length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      const byFd = new Map<number, TlsChunk[]>();
      for (const c of chunks) byFd.set(c.fd, [...(byFd.get(c.fd) ?? []), c]);
      // Two ends of one connection in one process: two fds (the client's and the accepted one).
      expect([...byFd.keys()].filter((fd) => fd >= 0).length).toBe(2);
      const client = [...byFd.values()].find((cs) => cs.some((c) => c.direction === 'egress' && c.data.toString().startsWith('POST /node-path')))!;
      const serverSide = [...byFd.values()].find((cs) => cs.some((c) => c.direction === 'ingress' && c.data.toString().startsWith('POST /node-path')))!;
      expect(client).toBeDefined();
      expect(serverSide).toBeDefined();
      expect(client[0]!.fd).not.toBe(serverSide[0]!.fd);
      expect(text(client.filter((c) => c.direction === 'egress'))).toContain('node-body');
      expect(text(client.filter((c) => c.direction === 'ingress'))).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*node-answer:\/node-path/);
      expect(text(serverSide.filter((c) => c.direction === 'egress'))).toMatch(/^HTTP\/1\.1 200 OK/);
      for (const c of chunks) expect(c.comm).toBe('node');
      const cTuple = client.find((c) => c.connection)?.connection;
      const sTuple = serverSide.find((c) => c.connection)?.connection;
      expect(cTuple?.remote).toEqual({ ip: '127.0.0.1', port });
      expect(sTuple?.local).toEqual({ ip: '127.0.0.1', port });
      expect(sTuple?.remote).toEqual(cTuple?.local);
      // agent: false, so the connection closes after the response: Node frees both SSL*s (memory BIOs, no close(2) inside).
      await until(() => [client[0]!.ssl, serverSide[0]!.ssl].every((ssl) => ends.some((e) => e.ssl === ssl)));
      const lastData = Math.max(...chunks.map((c) => c.time));
      const endLag = Math.max(...ends.filter((e) => e.ssl === client[0]!.ssl || e.ssl === serverSide[0]!.ssl).map((e) => e.time - lastData));
      console.log(`node: fd sources ${JSON.stringify([...new Set(chunks.map((c) => `${c.direction}:${c.fdSource}`))])}; both sessions ended ${(endLag * 1000).toFixed(1)} ms after the last chunk`);
    } finally {
      child.kill();
      probes.close();
    }
  });

  it('a program started later: a copy of node at a new path is found on its exec, attached once, and its plaintext seen', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'tw-tls-exec-'));
    const copy = join(bin, 'node');
    copyFileSync(process.execPath, copy);
    chmodSync(copy, 0o755);
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (q, s) => {
      s.writeHead(200, { 'content-type': 'text/plain' });
      s.end(`late ${q.url}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // The client waits for a line on stdin, so that its calls come after the attach (the window is measured below).
    const client = (path: string) => spawn(copy, ['-e', `process.stdin.once('data', () => require('node:https').get({ host: '127.0.0.1', port: ${port}, path: '${path}', rejectUnauthorized: false },
      (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => { console.log('got ' + b); process.exit(0); }); }));`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const probes = openTlsProbes({ targets: 'auto', handleSignals: false });
    const late: LateAttach[] = [];
    const chunks: TlsChunk[] = [];
    let attachedAt = 0;
    probes.on('attach', (a: LateAttach) => { late.push(a); if (a.path === copy) attachedAt = Date.now(); });
    probes.on('chunk', (c) => chunks.push(c));
    try {
      expect(probes.attached.some((a) => a.path === copy)).toBe(false);
      const started = Date.now();
      const first = client('/first');
      await until(() => late.some((a) => a.path === copy));
      const mine = late.filter((a) => a.path === copy);
      expect(mine[0]!.trigger.pid).toBe(first.pid);
      expect(mine[0]!.attached).toEqual(expect.arrayContaining(['SSL_write', 'SSL_read', 'SSL_free']));
      first.stdin!.write('go\n');
      expect(await waitLine(first, /^got /)).toBe('got late /first');
      await until(() => text(chunks.filter((c) => c.pid === first.pid && c.direction === 'ingress')).includes('late /first'));
      expect(text(chunks.filter((c) => c.pid === first.pid && c.direction === 'egress'))).toMatch(/^GET \/first HTTP\/1\.1\r\n/);
      // The same file run again: already attached (by device and inode), not attached twice, and seen.
      const second = client('/second');
      await new Promise((r) => setTimeout(r, 300));
      second.stdin!.write('go\n');
      expect(await waitLine(second, /^got /)).toBe('got late /second');
      await until(() => text(chunks.filter((c) => c.pid === second.pid && c.direction === 'egress')).includes('GET /second'));
      await new Promise((r) => setTimeout(r, 1200)); // past the mappings' re-checks after the second exec
      expect(late.filter((a) => a.path === copy)).toHaveLength(1);
      expect(probes.attached.filter((a) => a.path === copy)).toHaveLength(1);
      const cnt = probes.counters();
      console.log(`exec → attached ${copy}: ${attachedAt - started} ms after spawn; execs seen ${cnt.execs}, files attached after an exec ${cnt.lateAttached}`);
    } finally {
      probes.close();
      server.close();
      rmSync(bin, { recursive: true, force: true });
    }
  }, 30_000);

  it('splits a call over 16 KiB into events by offset, and stops copying past 128 KiB with the true length kept', async () => {
    const gen = resolve('native/build/tls-gen');
    const probes = openTlsProbes({ targets: [gen] });
    try {
      const chunks: TlsChunk[] = [];
      probes.on('chunk', (c) => chunks.push(c));
      for (const size of [40000, 200000]) expect(spawnSync(gen, ['1', String(size), 'read']).status).toBe(0);
      await until(() => chunks.length >= 3 + 8);
      const a = chunks.filter((c) => c.length === 40000);
      expect(a.map((c) => [c.offset, c.data.length, c.truncated])).toEqual([[0, 16384, false], [16384, 16384, false], [32768, 7232, false]]);
      expect(Buffer.concat(a.map((c) => c.data)).equals(Buffer.alloc(40000, 'x'))).toBe(true);
      const b = chunks.filter((c) => c.length === 200000);
      expect(b.length).toBe(8);
      expect(b.map((c) => c.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => i * 16384));
      expect(b.map((c) => c.truncated)).toEqual([false, false, false, false, false, false, false, true]);
      expect(b.every((c) => c.direction === 'ingress' && c.comm === 'tls-gen')).toBe(true);
      expect(probes.counters().truncated).toBe(1);
    } finally {
      probes.close();
    }
  });

  it('leaves no program or uprobe behind after close(), SIGTERM and SIGKILL', async () => {
    await until(() => ourPrograms().length === 0);
    const before = uprobeEvents();
    const probes: TlsProbes = openTlsProbes({ targets: [process.execPath] });
    expect(ourPrograms().length).toBeGreaterThan(0);
    probes.close();
    await until(() => ourPrograms().length === 0);

    const distIndex = resolve('dist/capture/index.js');
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', `
        const { openTlsProbes } = await import(${JSON.stringify(distIndex)});
        const p = openTlsProbes({ targets: [process.execPath] });
        p.on('close', () => console.log('closed'));
        console.log('ready ' + p.counters().links);
        setInterval(() => {}, 1000);
      `], { stdio: ['ignore', 'pipe', 'inherit'] });
      const ready = await waitLine(child, /^ready \d+/);
      expect(Number(ready.split(' ')[1])).toBeGreaterThan(8);
      expect(ourPrograms().length).toBeGreaterThan(0);
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
      child.kill(sig);
      expect(await exited).toBe(sig);
      await until(() => ourPrograms().length === 0);
    }
    // process.exit() without close(): the addon's env cleanup hook detaches, and exit stays clean.
    const quitter = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { openTlsProbes } = await import(${JSON.stringify(distIndex)});
      const p = openTlsProbes({ targets: [process.execPath] });
      console.log('links ' + p.counters().links);
      process.exit(0);
    `], { encoding: 'utf8' });
    expect(quitter.status, quitter.stderr).toBe(0);
    expect(quitter.stdout).toMatch(/^links \d+/);
    await until(() => ourPrograms().length === 0);
    expect(uprobeEvents()).toBe(before);
    const links = spawnSync('bpftool', ['-j', 'link', 'show'], { encoding: 'utf8' });
    if (links.status === 0) {
      const ids = new Set(spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' }).stdout ? ourPrograms() : []);
      expect(ids.size).toBe(0);
    }
  });
});
