/**
 * The pure parts of the TLS probes, which run everywhere: ELF symbol lookup, /proc/net/tcp
 * parsing, the ring-buffer record parser and the "why not" report.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeTarget, findTlsTargets, inspectElf, parseBatch, parseProcNetTcp, tlsProbesUnavailable, TLS_EVENT_HDR_SIZE, type RawTlsEvent, type TcpTuple } from '../../../src/capture/index.js';

const spawnSyncOk = (cmd: string, ...args: string[]) => spawnSync(cmd, args).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'tw-tls-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const LIBSSL = ['/lib/x86_64-linux-gnu/libssl.so.3', '/usr/lib/x86_64-linux-gnu/libssl.so.3', '/lib/aarch64-linux-gnu/libssl.so.3'].find((p) => existsSync(p));
if (!LIBSSL) console.warn('test/capture/tls/parts.test.ts: the libssl.so.3 test skipped: no libssl.so.3 (apt-get install libssl3)');

describe('inspectElf', () => {
  it.skipIf(!LIBSSL)('finds the four I/O functions in libssl.so.3 by its dynamic symbols', () => {
    const info = inspectElf(LIBSSL!);
    expect(info.reason).toBeUndefined();
    expect(info.functions).toEqual(expect.arrayContaining(['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex', 'SSL_set_fd']));
    expect(describeTarget(LIBSSL!)).toMatchObject({ kind: 'libssl' });
  });

  it('finds OpenSSL linked statically in node, or says why not', () => {
    const info = inspectElf(process.execPath);
    if (info.reason) expect(info.reason).toMatch(/stripped|no SSL_write/);
    else expect(info.functions).toEqual(expect.arrayContaining(['SSL_write', 'SSL_read']));
  });

  it('says in words why a file cannot be probed', () => {
    expect(inspectElf(join(dir, 'missing')).reason).toBe('not readable (ENOENT)');
    writeFileSync(join(dir, 'text'), 'hello, not an ELF file at all, padded to more than sixty-four bytes....');
    expect(inspectElf(join(dir, 'text')).reason).toBe('not an ELF file');
    const sh = inspectElf('/bin/sh');
    expect(sh.reason).toMatch(/stripped|no SSL_write or SSL_read symbol/);
    expect(describeTarget('/bin/sh')).toHaveProperty('reason');
  });
});

describe('findTlsTargets', () => {
  const py = spawnSyncOk('python3', '-c', 'import ssl');
  if (!py) console.warn('test/capture/tls/parts.test.ts: the findTlsTargets test skipped: no python3 with ssl');
  it.skipIf(!py)('finds a running process that maps libssl.so, by /proc/<pid>/maps', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn('python3', ['-c', 'import ssl, sys; print("up", flush=True); sys.stdin.read()'], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => child.stdout!.once('data', r));
      const scan = findTlsTargets();
      const t = scan.targets.find((x) => x.pids.includes(child.pid!));
      expect(t).toMatchObject({ kind: 'libssl', path: expect.stringMatching(/libssl\.so/) });
      expect(t!.functions).toContain('SSL_write_ex');
      expect(scan.targets.some((x) => x.pids.includes(process.pid))).toBe(false);
    } finally {
      child.kill();
    }
  });
});

describe('parseProcNetTcp', () => {
  it('reads IPv4, IPv6 and v4-mapped addresses with their socket inodes', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1',
      '   1: 00000000000000000000000001000000:01BB 0000000000000000FFFF00000200000A:C350 01 00000000:00000000 00:00000000 00000000 0 0 4343 1',
      '   2: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4444 1',
    ].join('\n');
    const m = new Map<number, TcpTuple>();
    parseProcNetTcp(text, m);
    expect(m.get(4242)).toEqual({ local: { ip: '127.0.0.1', port: 8080 }, remote: { ip: '127.0.0.1', port: 54321 } });
    expect(m.get(4343)).toEqual({ local: { ip: '::1', port: 443 }, remote: { ip: '10.0.0.2', port: 50000 } });
    expect(m.get(4444)!.local).toEqual({ ip: '2001:db8::1', port: 80 });
  });
});

describe('parseBatch', () => {
  it('reads each 8-byte-aligned record of a batch, copying the data out', () => {
    const rec = (data: string, dir: number, fd: number) => {
      const d = Buffer.from(data);
      const b = Buffer.alloc((TLS_EVENT_HDR_SIZE + d.length + 7) & ~7);
      b.writeBigUInt64LE(123n, 0);
      b.writeBigUInt64LE(0xabcn, 8);
      b.writeBigUInt64LE(7n, 16);
      b.writeUInt32LE(100, 24);
      b.writeUInt32LE(101, 28);
      b.writeInt32LE(fd, 32);
      b.writeUInt32LE(d.length, 36);
      b.writeUInt32LE(0, 40);
      b.writeUInt32LE(d.length, 44);
      b[48] = 1;
      b[49] = dir;
      b[50] = 1;
      b.write('curl', 56);
      if (fd === 5) {
        b.writeUInt16LE(2, 72);
        b.writeUInt16LE(40000, 74);
        b.writeUInt16LE(443, 76);
        Buffer.from([127, 0, 0, 1]).copy(b, 80);
        Buffer.from([10, 1, 2, 3]).copy(b, 96);
      }
      d.copy(b, TLS_EVENT_HDR_SIZE);
      return b;
    };
    const body = Buffer.concat([rec('GET / HTTP/1.1\r\n\r\n', 0, 5), rec('HTTP/1.1 200 OK\r\n', 1, -1)]);
    const batch = Buffer.concat([Buffer.alloc(8), body]);
    batch.writeBigUInt64LE(BigInt(batch.length), 0);
    const got: RawTlsEvent[] = [];
    expect(parseBatch(batch, (e) => got.push(e))).toBe(2);
    expect(got[0]).toMatchObject({ pid: 100, tid: 101, fd: 5, direction: 'egress', fdSource: 'syscall', comm: 'curl', total: 18, ssl: 0xabcn, cgroupId: 7n });
    expect(got[0]!.data.toString()).toBe('GET / HTTP/1.1\r\n\r\n');
    expect(got[0]!.connection).toEqual({ local: { ip: '127.0.0.1', port: 40000 }, remote: { ip: '10.1.2.3', port: 443 } });
    expect(got[1]).toMatchObject({ fd: -1, direction: 'ingress' });
    expect(got[1]!.connection).toBeUndefined();
    batch.fill(0);
    expect(got[1]!.data.toString()).toBe('HTTP/1.1 200 OK\r\n');
  });
});

describe('tlsProbesUnavailable', () => {
  it('names each missing thing, or nothing', () => {
    const reasons = tlsProbesUnavailable();
    for (const r of reasons) expect(r).toMatch(/addon|BTF|tracefs|privileged|Linux/);
    if (process.getuid?.() !== 0) expect(reasons.join(' ')).toMatch(/not privileged/);
  });
});

describe('npm run build:native without a toolchain', () => {
  it('names what is missing and exits 0, or 1 with --require', async () => {
    const run = (...extra: string[]) => spawnSync(process.execPath, ['scripts/build-native.mjs', ...extra], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
    const soft = run();
    expect(soft.status).toBe(0);
    expect(soft.stderr).toMatch(/the eBPF addon is not built \(it is optional.*Missing: clang \(apt-get install clang llvm\)/);
    expect(run('--require').status).toBe(1);
  });
});
