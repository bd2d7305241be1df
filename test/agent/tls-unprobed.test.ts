import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONN_OBJECT_PATH, tlsProbesUnavailable } from '../../src/capture/index.js';
import type { FlowRecord, TlsFlow } from '../../src/flows/record.js';
import type { TlsCoverage } from '../../src/verify/index.js';
import { flowsNow, flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';

/**
 * Issue 17, "Coverage", the test "Not decrypted: a TLS peer whose library is not probed (e.g. a
 * rustls or Java client). It shows in coverage as not decrypted, with the reason, and is not
 * missing silently" (kubeshark#1741, #1885). `tapwire agent --tls uprobe --interface lo` started as
 * a user would; a Java HTTPS client (java.net.http, JSSE) calls a Java HTTPS server
 * (com.sun.net.httpserver, JSSE), both single-file source launches of test/agent/pods/java-tls,
 * with a keystore keytool makes here and SNI from a host name resolved to 127.0.0.1. Java's TLS is
 * Java code, which no uprobe reads: the wire tls record must name both ends as Java JSSE, not
 * probed, and /api/coverage must list the connection as not decrypted (unsupported-library, Java
 * named) with the Java server's process. In the same run curl → a Node https server is decrypted,
 * so the probes were at work: it is the library, not "no uprobes". With cargo, a rustls client
 * (test/agent/pods/rustls-client, built here) calls the Java server too: its end is named rustls.
 */
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const why = process.getuid?.() !== 0 ? 'needs root (eBPF uprobes and tracepoints)'
  : !has('java') || !has('keytool') ? 'needs a JDK (java, keytool)'
  : !has('openssl') || !has('curl') ? 'needs openssl and curl'
  : tlsProbesUnavailable().concat(existsSync(CONN_OBJECT_PATH) ? [] : [`no ${CONN_OBJECT_PATH} (npm run build:native)`]).join('; ');
if (why) console.warn(`test/agent/tls-unprobed.test.ts skipped: ${why}`);

const PODS = join(process.cwd(), 'test/agent/pods/java-tls');
const PASS = 'tapwire-test';
const RUSTLS = join(process.cwd(), 'test/agent/pods/rustls-client');

/** Builds the rustls client (crates from the registry, or its cache): its path, or why not. */
function buildRustls(dir: string): { bin?: string; why?: string } {
  if (!has('cargo')) return { why: 'no cargo' };
  const target = join(dir, 'cargo-target');
  const r = spawnSync('cargo', ['build', '--release', '--locked', '--manifest-path', join(RUSTLS, 'Cargo.toml')],
    { encoding: 'utf8', env: { ...process.env, CARGO_TARGET_DIR: target }, timeout: 240_000 });
  if (r.status !== 0) return { why: `cargo build failed: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' ') || r.error?.message}` };
  return { bin: join(target, 'release', 'rustls-client') };
}

/** Waits for a line matching `re` on a child's stdout. */
function line(c: ChildProcess, re: RegExp, what: string, ms = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what}: nothing matching ${re} after ${ms} ms: ${out}`)), ms);
    c.stdout!.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    c.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited ${code}: ${out}`)); });
  });
}

describe.skipIf(why !== '')('tapwire agent --tls uprobe: a Java (JSSE) client and server are named as not decrypted, with why', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-unprobed-'));
  const javaPort = 21000 + (process.pid % 9000);
  const nodePort = javaPort + 1;
  let javaServer: ChildProcess, nodeServer: ChildProcess;
  let agent: AgentProcess;
  let base = '', clientOut = '';
  let clientPid = 0;
  let rustls: { bin?: string; why?: string; pid?: number; out?: string } = {};

  const flows = (filter: string): Promise<FlowRecord[]> => flowsNow(base, filter);

  beforeAll(async () => {
    const kt = spawnSync('keytool', ['-genkeypair', '-alias', 'pricing', '-keyalg', 'RSA', '-keysize', '2048', '-dname', 'CN=pricing.test',
      '-ext', 'SAN=dns:pricing.test,ip:127.0.0.1', '-validity', '1', '-storetype', 'PKCS12', '-keystore', join(dir, 'ks.p12'),
      '-storepass', PASS, '-keypass', PASS], { encoding: 'utf8' });
    if (kt.status !== 0) throw new Error(`keytool failed: ${kt.stderr}`);
    // JSSE sends SNI only for a host name with a dot, never for an address: resolve one to loopback.
    writeFileSync(join(dir, 'hosts'), '127.0.0.1 pricing.test\n');
    spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    rustls = buildRustls(dir);
    if (rustls.why) console.warn(`test/agent/tls-unprobed.test.ts: the rustls part skipped: ${rustls.why}`);
    else {
      const pem = spawnSync('keytool', ['-exportcert', '-rfc', '-alias', 'pricing', '-keystore', join(dir, 'ks.p12'), '-storepass', PASS], { encoding: 'utf8' });
      writeFileSync(join(dir, 'ca.pem'), pem.stdout);
    }
    javaServer = spawn('java', [join(PODS, 'Server.java'), join(dir, 'ks.p12'), PASS, String(javaPort)], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    const serve = `const https = require('node:https'), fs = require('node:fs');
      https.createServer({ key: fs.readFileSync('k.pem'), cert: fs.readFileSync('c.pem') }, (q, s) => s.end('node ok\\n'))
        .listen(${nodePort}, '127.0.0.1', () => console.log('listening'));`;
    nodeServer = spawn(process.execPath, ['-e', serve], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    await Promise.all([line(javaServer, /listening/, 'the Java server'), line(nodeServer, /listening/, 'the Node server')]);
    agent = await startAgent(['--tls', 'uprobe', '--interface', 'lo', '--filter', `tcp port ${javaPort} or tcp port ${nodePort}`,
      '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')]);
    base = agent.base;
    const client = spawn('java', [`-Djdk.net.hosts.file=${join(dir, 'hosts')}`, join(PODS, 'Client.java'), join(dir, 'ks.p12'), PASS, `https://pricing.test:${javaPort}/price`],
      { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    clientPid = client.pid!;
    client.stdout!.on('data', (d) => (clientOut += d));
    await new Promise((r) => client.once('exit', r));
    if (rustls.bin) {
      const r = spawn(rustls.bin, [join(dir, 'ca.pem'), 'pricing.test', `127.0.0.1:${javaPort}`, '/rust'], { stdio: ['ignore', 'pipe', 'inherit'] });
      rustls.pid = r.pid;
      let out = '';
      r.stdout!.on('data', (d) => (out += d));
      await new Promise((res) => r.once('exit', res));
      rustls.out = out.trim();
    }
    const curl = spawnSync('curl', ['-sk', `https://127.0.0.1:${nodePort}/orders`], { encoding: 'utf8' });
    if (curl.stdout !== 'node ok\n') throw new Error(`curl → node: ${curl.stdout} ${curl.stderr}`);
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    javaServer?.kill('SIGKILL');
    nodeServer?.kill('SIGKILL');
  });

  it('the agent watches connection owners (it does not say it cannot)', () => {
    expect(clientOut.trim()).toBe('200 {"java":true}');
    expect(agent.log()).not.toMatch(/will not name the processes/);
  });

  it('the wire tls record names both ends: java, Java JSSE, not probed (unsupported-library), with the SNI', async () => {
    const wire = await flowsWhere<TlsFlow>(base, `tls && dst.port == ${javaPort}`, { until: (ws) => ws.some((w) => w.processes), tries: 100 });
    const w = wire.find((x) => x.processes)!;
    expect(w, `no wire tls record with processes for port ${javaPort}:\n${agent.log()}`).toBeDefined();
    expect(w.request?.sni).toBe('pricing.test');
    expect(w.processes!.server).toMatchObject({ pid: javaServer.pid, comm: 'java', library: 'java', probed: false, reason: 'unsupported-library' });
    expect(w.processes!.server!.detail).toMatch(/libjvm\.so mapped.*JSSE/);
    expect(w.processes!.client).toMatchObject({ pid: clientPid, comm: 'java', library: 'java', probed: false, reason: 'unsupported-library' });
    // Queryable as a record field.
    expect((await flows(`tls && dst.port == ${javaPort} && record.processes.server.library == "java"`)).length).toBeGreaterThan(0);
  });

  it('/api/coverage: the Java server\'s connection is not decrypted (unsupported-library, Java JSSE) with its process; curl → node is decrypted', async () => {
    let cov: TlsCoverage | undefined;
    const javaKey = `127.0.0.1:${javaPort}`, nodeKey = `127.0.0.1:${nodePort}`;
    for (let i = 0; i < 50; i++) {
      cov = ((await (await fetch(`${base}/api/coverage?since=0`)).json()) as { tls: TlsCoverage }).tls;
      if (cov.servers.find((s) => s.server === nodeKey)?.decrypted.connections && cov.servers.find((s) => s.server === javaKey)?.notDecrypted.connections) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(cov!.uprobes).toBe('seen');
    const java = cov!.servers.find((s) => s.server === javaKey)!;
    expect(java.decrypted.connections).toBe(0);
    expect(java.notDecrypted.connections).toBeGreaterThanOrEqual(1);
    expect(java.notDecrypted.byReason).toEqual({ 'unsupported-library': java.notDecrypted.connections });
    expect(java.notDecrypted.processes).toContainEqual(expect.objectContaining({ end: 'server', pid: javaServer.pid, comm: 'java', library: 'java', libraryName: 'Java JSSE', probed: false, reason: 'unsupported-library' }));
    expect(java.notDecrypted.processes).toContainEqual(expect.objectContaining({ end: 'client', pid: clientPid, library: 'java' }));
    expect(java.clients).toContainEqual(expect.objectContaining({ client: '127.0.0.1', libraries: expect.arrayContaining(['Java JSSE']) }));
    expect(cov!.notDecrypted.reasons).toContainEqual(expect.objectContaining({ code: 'unsupported-library', libraries: expect.arrayContaining(['Java JSSE']) }));
    const node = cov!.servers.find((s) => s.server === nodeKey)!;
    expect(node.decrypted.connections).toBeGreaterThanOrEqual(1);
    expect(node.notDecrypted.connections).toBe(0);
    // The decrypted connection's wire twin carries its ends too: curl and node, both OpenSSL, probed.
    const nodeWire = (await flows(`tls && dst.port == ${nodePort}`)) as TlsFlow[];
    expect(nodeWire.find((w) => w.processes)?.processes, JSON.stringify(nodeWire)).toMatchObject({
      client: { comm: 'curl', library: 'openssl', probed: true }, server: { pid: nodeServer.pid, library: 'openssl', probed: true },
    });
  });

  it('a rustls client (cargo-built) to the Java server: its end is named rustls, not probed, unsupported-library', async (ctx) => {
    if (!rustls.bin) ctx.skip();
    expect(rustls.out).toBe('HTTP/1.1 200 OK');
    const w = (await flowsWhere<TlsFlow>(base, `tls && dst.port == ${javaPort} && record.processes.client.library == "rustls"`))[0];
    expect(w, agent.log()).toBeDefined();
    expect(w!.request?.sni).toBe('pricing.test');
    expect(w!.processes!.client).toMatchObject({ pid: rustls.pid, library: 'rustls', probed: false, reason: 'unsupported-library' });
    expect(w!.processes!.server).toMatchObject({ pid: javaServer.pid, library: 'java' });
    const cov = ((await (await fetch(`${base}/api/coverage?since=0`)).json()) as { tls: TlsCoverage }).tls;
    expect(cov.notDecrypted.reasons).toContainEqual(expect.objectContaining({ code: 'unsupported-library', libraries: ['Java JSSE', 'rustls'] }));
  });
});
