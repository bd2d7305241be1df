import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goArm64Build, goBuilds } from './tls/go-build.js';
import {
  classifyExecutable, classifyProcess, ConnectionOwners, OWNER_EVENT_SIZE, OwnerWatch, ownersUnavailable, parseOwnerBatch, type OwnerEvent, type ProcessTls,
} from '../../src/capture/index.js';

/**
 * Issue 17, "Coverage": which process holds each end of a TCP connection (native/conn.bpf.c) and
 * which TLS library it uses, so that TLS the uprobes cannot read is named, not lost. The parser and
 * the owner map run everywhere; classification looks at real processes this test starts; the
 * kernel part needs root and the addon.
 */

/** One conn_event (native/conn_event.h). */
function record(kind: number, pid: number, comm: string, family: number, l: [number[], number], r: [number[], number], ts = 1_000_000_000n): Buffer {
  const b = Buffer.alloc(OWNER_EVENT_SIZE);
  b.writeBigUInt64LE(ts, 0);
  b.writeBigUInt64LE(77n, 8);
  b.writeUInt32LE(pid, 16);
  b.writeUInt32LE(pid, 20);
  b[24] = kind;
  b.writeUInt16LE(family, 26);
  b.writeUInt16LE(l[1], 28);
  b.writeUInt16LE(r[1], 30);
  Buffer.from(l[0]).copy(b, 32);
  Buffer.from(r[0]).copy(b, 48);
  b.write(comm, 64, 'utf8');
  return b;
}

function batch(...records: Buffer[]): Buffer {
  const head = Buffer.alloc(8);
  const body = Buffer.concat(records);
  head.writeBigUInt64LE(BigInt(8 + body.length));
  return Buffer.concat([head, body]);
}

const mapped = (a: number, b: number, c: number, d: number) => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d];

describe('conn events: parse', () => {
  it('reads connect, accept (IPv4, IPv4-mapped, IPv6) and exec events, skipping an unknown kind', () => {
    const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const events: OwnerEvent[] = [];
    const n = parseOwnerBatch(batch(
      record(1, 10, 'curl', 2, [[127, 0, 0, 1], 40000], [[127, 0, 0, 2], 443]),
      record(2, 11, 'java', 10, [mapped(10, 0, 0, 2), 8443], [mapped(10, 0, 0, 1), 50000]),
      record(9, 12, 'bad', 2, [[1, 2, 3, 4], 1], [[1, 2, 3, 4], 2]),
      record(1, 13, 'node', 10, [v6, 5000], [v6, 443]),
      record(3, 14, 'sh', 0, [[], 0], [[], 0]),
      record(1, 15, 'unix', 1, [[], 0], [[], 0]),
    ), (e) => events.push(e));
    expect(n).toBe(4);
    expect(events.map((e) => [e.kind, e.pid, e.comm])).toEqual([['connect', 10, 'curl'], ['accept', 11, 'java'], ['connect', 13, 'node'], ['exec', 14, 'sh']]);
    expect(events[0]).toMatchObject({ local: { ip: '127.0.0.1', port: 40000 }, remote: { ip: '127.0.0.2', port: 443 }, cgroupId: 77n, tsNs: 1_000_000_000n });
    expect(events[1]).toMatchObject({ local: { ip: '10.0.0.2', port: 8443 }, remote: { ip: '10.0.0.1', port: 50000 } });
    expect(events[2]!.local).toEqual({ ip: '2001:db8::1', port: 5000 });
    expect(events[3]!.local).toBeUndefined();
  });

  it('a short or empty batch gives nothing', () => {
    expect(parseOwnerBatch(Buffer.alloc(4), () => {})).toBe(0);
    expect(parseOwnerBatch(batch(record(1, 1, 'x', 2, [[1, 1, 1, 1], 1], [[1, 1, 1, 1], 2]).subarray(0, 40)), () => {})).toBe(0);
  });
});

describe('ConnectionOwners', () => {
  const java: ProcessTls = { library: 'java', probed: false, reason: 'unsupported-library', detail: 'libjvm.so mapped' };
  const ev = (kind: 'connect' | 'accept' | 'exec', pid: number, local: [string, number], remote: [string, number]): OwnerEvent => ({
    kind, pid, tid: pid, comm: `p${pid}`, cgroupId: 5n, tsNs: 0n, local: { ip: local[0], port: local[1] }, remote: { ip: remote[0], port: remote[1] },
  });

  it('pairs both ends whichever comes first, and looks at each process once until its exec', () => {
    let asked = 0;
    const o = new ConnectionOwners({ classify: () => (asked++, java) });
    o.add(ev('accept', 2, ['10.0.0.2', 443], ['10.0.0.1', 50000]), 100);
    o.add(ev('connect', 1, ['10.0.0.1', 50000], ['10.0.0.2', 443]), 99.9);
    const e = o.ends({ ip: '10.0.0.1', port: 50000 }, { ip: '10.0.0.2', port: 443 }, 101)!;
    expect(e.client).toMatchObject({ pid: 1, comm: 'p1', cgroupId: 5, tls: java });
    expect(e.server).toMatchObject({ pid: 2, comm: 'p2' });
    // either order of the question
    expect(o.ends({ ip: '10.0.0.2', port: 443 }, { ip: '10.0.0.1', port: 50000 })!.server!.pid).toBe(2);
    o.add(ev('connect', 1, ['10.0.0.1', 50001], ['10.0.0.2', 443]), 102);
    expect(asked).toBe(2);
    o.add({ ...ev('exec', 1, ['', 0], ['', 0]), local: undefined, remote: undefined }, 103);
    o.add(ev('connect', 1, ['10.0.0.1', 50002], ['10.0.0.2', 443]), 104);
    expect(asked).toBe(3);
    expect(o.counters).toMatchObject({ connects: 3, accepts: 1, execs: 1, connections: 3 });
  });

  it('a later connection on the same 4-tuple does not answer for an earlier record, nor keep the earlier server', () => {
    const o = new ConnectionOwners({ classify: () => java });
    o.add(ev('connect', 1, ['10.0.0.1', 50000], ['10.0.0.2', 443]), 100);
    o.add(ev('accept', 2, ['10.0.0.2', 443], ['10.0.0.1', 50000]), 100.01);
    o.add(ev('connect', 3, ['10.0.0.1', 50000], ['10.0.0.2', 443]), 400);
    expect(o.ends({ ip: '10.0.0.1', port: 50000 }, { ip: '10.0.0.2', port: 443 }, 200)).toBeUndefined();
    expect(o.ends({ ip: '10.0.0.1', port: 50000 }, { ip: '10.0.0.2', port: 443 })).toEqual({ client: expect.objectContaining({ pid: 3 }) });
  });

  it('looks at a process soon after its exec (a short client may be gone by its connect), at most 256 waiting', async () => {
    const asked: number[] = [];
    const o = new ConnectionOwners({ lookAfterExecMs: 5, classify: (pid) => (asked.push(pid), java) });
    for (let pid = 1; pid <= 300; pid++) o.add({ ...ev('exec', pid, ['', 0], ['', 0]), local: undefined, remote: undefined }, 100);
    expect(asked).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(asked).toHaveLength(256);
    expect(o.counters.execLooksSkipped).toBe(44);
    // Its connect then finds it looked at: no second /proc read.
    o.add(ev('connect', 1, ['10.0.0.1', 50000], ['10.0.0.2', 443]), 100.1);
    expect(asked).toHaveLength(256);
  });

  it('stays under its bound, oldest connection first', () => {
    const o = new ConnectionOwners({ maxConnections: 100, classify: () => java });
    for (let i = 0; i < 250; i++) o.add(ev('connect', 1, ['10.0.0.1', 10000 + i], ['10.0.0.2', 443]), 100 + i);
    expect(o.counters.connections).toBe(100);
    expect(o.counters.evicted).toBe(150);
    expect(o.ends({ ip: '10.0.0.1', port: 10000 }, { ip: '10.0.0.2', port: 443 })).toBeUndefined();
    expect(o.ends({ ip: '10.0.0.1', port: 10249 }, { ip: '10.0.0.2', port: 443 })).toBeDefined();
  });
});

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

describe('classifyProcess: real processes', () => {
  const started: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-owners-'));
  /** Starts a program and waits until it says it is ready. */
  const start = async (cmd: string, args: string[]): Promise<ChildProcess> => {
    const c = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(c);
    await new Promise<void>((resolve, reject) => {
      c.stdout!.once('data', () => resolve());
      c.once('exit', (code) => reject(new Error(`${cmd} exited ${code}`)));
    });
    return c;
  };
  afterAll(() => { for (const c of started) c.kill('SIGKILL'); });

  it('node links OpenSSL in: probed', async () => {
    const c = await start(process.execPath, ['-e', 'console.log("up"); setTimeout(() => {}, 60000)']);
    expect(classifyProcess(c.pid!)).toMatchObject({ library: 'openssl', probed: true });
  });

  it.skipIf(!has('python3'))('python3 after import ssl maps libssl: probed', async () => {
    const c = await start('python3', ['-c', 'import ssl, sys, time; print("up"); sys.stdout.flush(); time.sleep(60)']);
    const t = classifyProcess(c.pid!);
    expect(t).toMatchObject({ library: 'openssl', probed: true });
    expect(t.detail).toMatch(/libssl\.so/);
  });

  it.skipIf(!has('java'))('a JVM maps libjvm.so: Java JSSE, not probed, unsupported-library', async () => {
    writeFileSync(join(dir, 'Idle.java'), 'public class Idle { public static void main(String[] a) throws Exception { System.out.println("up"); Thread.sleep(60000); } }\n');
    const c = await start('java', ['Idle.java']);
    const t = classifyProcess(c.pid!);
    expect(t).toMatchObject({ library: 'java', probed: false, reason: 'unsupported-library' });
    expect(t.detail).toMatch(/libjvm\.so mapped: .*JSSE/);
  }, 30_000);

  it.skipIf(!has('wget') || !/libgnutls/.test(spawnSync('sh', ['-c', 'ldd "$(command -v wget)"'], { encoding: 'utf8' }).stdout))('wget links GnuTLS (Debian): not probed, unsupported-library', async () => {
    // wget waits on a server that accepts and says nothing.
    const srv: Server = createServer(() => {});
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const c = spawn('wget', ['-q', '-O', '/dev/null', '--timeout=30', `https://127.0.0.1:${port}/`], { stdio: 'ignore' });
    started.push(c);
    await new Promise((r) => srv.once('connection', r));
    expect(classifyProcess(c.pid!)).toMatchObject({ library: 'gnutls', probed: false, reason: 'unsupported-library' });
    srv.close();
  });

  it.skipIf(!has('curl'))('curl maps libssl (and, on Debian, libgnutls through its other libraries): OpenSSL, probed', async () => {
    const srv: Server = createServer(() => {});
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const c = spawn('curl', ['-sk', '--max-time', '30', `https://127.0.0.1:${port}/`], { stdio: 'ignore' });
    started.push(c);
    await new Promise((r) => srv.once('connection', r));
    expect(classifyProcess(c.pid!)).toMatchObject({ library: 'openssl', probed: true });
    srv.close();
  });

  it.skipIf(!has('go'))('Go programs: crypto/tls found (by .symtab, or .gopclntab when stripped) is probed; an arm64 build is not (unsupported-library)', () => {
    const { builds, missing } = goBuilds();
    if (missing.length) console.warn(`owners.test.ts, Go: ${missing.join('; ')}`);
    expect(builds.length).toBeGreaterThan(0);
    for (const b of builds) {
      const t = classifyExecutable(b.path);
      expect(t, b.name).toMatchObject({ library: 'go', probed: true });
      expect(t.detail).toContain(b.goVersion);
    }
    const arm = goArm64Build();
    if (arm) expect(classifyExecutable(arm)).toMatchObject({ library: 'go', probed: false, reason: 'unsupported-library', detail: expect.stringMatching(/arm64/) });
  }, 180_000);

  it('a stripped C program with no TLS library: stripped-binary; a gone process: not-probed, said so', async () => {
    const c = spawn('sleep', ['60'], { stdio: 'ignore' });
    started.push(c);
    await new Promise((r) => setTimeout(r, 100));
    const t = classifyProcess(c.pid!);
    expect(t.library).toBe('unknown');
    // Debian's coreutils are stripped; a build with symbols says not-probed instead.
    expect(['stripped-binary', 'not-probed']).toContain(t.reason);
    expect(classifyProcess(2 ** 22 + 7)).toMatchObject({ library: 'unknown', reason: 'not-probed', detail: expect.stringMatching(/could not be looked at \(ENOENT\)/) });
  });
});

const why = process.getuid?.() !== 0 ? 'needs root (eBPF tracepoints)' : !has('curl') ? 'needs curl' : ownersUnavailable().join('; ');
if (why) console.warn(`test/capture/owners.test.ts (kernel part) skipped: ${why}`);

describe.skipIf(why !== '')('OwnerWatch: connect and accept from the kernel', () => {
  let w: OwnerWatch;
  let srv: Server;
  let port = 0;
  beforeAll(async () => {
    w = new OwnerWatch();
    srv = createServer((s) => s.end('HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n'));
    await new Promise<void>((r) => srv.listen(0, '::', () => r()));
    port = (srv.address() as { port: number }).port;
  });
  afterAll(() => { w?.close(); srv?.close(); });

  it('curl → this node over IPv4 and IPv6: curl connected, node accepted, with pids, comms and a cgroup', async () => {
    for (const host of ['127.0.0.1', '[::1]']) {
      // Not spawnSync: the server is this process's.
      const local = Number(await new Promise<string>((resolve) => execFile('curl', ['-s', '-o', '/dev/null', '-w', '%{local_port}', '-g', `http://${host}:${port}/`], (_e, out) => resolve(out))));
      expect(local).toBeGreaterThan(0);
      const ip = host === '127.0.0.1' ? '127.0.0.1' : '::1';
      let e;
      for (let i = 0; i < 50 && !(e?.client && e.server); i++) {
        await new Promise((res) => setTimeout(res, 20));
        e = w.owners.ends({ ip, port: local }, { ip, port });
      }
      expect(e?.client).toMatchObject({ comm: 'curl', tls: { library: expect.any(String) } });
      expect(e?.client?.pid).not.toBe(process.pid);
      expect(e?.server).toMatchObject({ pid: process.pid, tls: { library: 'openssl', probed: true } });
      expect(e!.server!.cgroupId).toBeGreaterThan(0);
      expect(Math.abs(e!.client!.time - Date.now() / 1000)).toBeLessThan(5);
    }
    expect(w.kernelCounters()!.lost).toBe(0);
  });
});
