import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsProbesUnavailable } from '../../src/capture/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { flowsNow, flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { startHttpsFiles } from '../helpers/https-files.js';

/**
 * Issue 17, snapshots keep decrypted plaintext (kubeshark/kubeshark#1882), as a user would meet it:
 * `tapwire agent --tls uprobe --interface lo`, curl → a Node https server, a snapshot taken through
 * the API around the call, its pcap exported through the API. tshark must find the decrypted HTTP
 * request in it with the comment that marks it, and `tapwire analyze` on the export must give the
 * same HTTP record the agent served, marked tls, beside the tls record of the wire's handshake.
 */
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const why = process.getuid?.() !== 0 ? 'needs root (eBPF uprobes)'
  : !has('openssl') || !has('curl') ? 'needs openssl and curl'
  : !has('tshark') ? 'needs tshark (apt-get install tshark)'
  : tlsProbesUnavailable().join('; ');
if (why) console.warn(`test/agent/tls-snapshot.test.ts skipped: ${why}`);

const BIN = 'dist/cli/main.js';
type Http = FlowRecord & { request: { method: string; path: string }; response: { status: number; body?: string } };

describe.skipIf(why !== '')('tapwire agent --tls uprobe: a snapshot keeps the decrypted plaintext, its pcap holds it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-snapshot-'));
  let server: ChildProcess;
  let agent: AgentProcess;
  let base = '', port = 0;

  beforeAll(async () => {
    // Apart from tls.test.ts's ports, so both can run at once.
    port = 40000 + (process.pid % 20000);
    server = await startHttpsFiles(dir, port);
    // The filter keeps the call's wire packets (the ciphertext, and so the handshake's server name).
    agent = await startAgent(['--tls', 'uprobe', '--interface', 'lo', '--filter', `tcp portrange ${port}-${port + 2}`, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')],
      { env: { TAPWIRE_REDACT_KEY: 'tls-snapshot-e2e' } });
    base = agent.base;
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    server?.kill('SIGKILL');
  });

  it('snapshot → pcap through the API: tshark shows the decrypted request with its mark, and analyze gives the agent\'s record again, marked tls', async () => {
    const snap = (await (await fetch(`${base}/api/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'tls call' }) })).json()) as { id: string };
    // A name, so the ClientHello carries SNI (curl sends none for an address).
    const r = spawnSync('curl', ['-sk', '--resolve', `shop.example:${port}:127.0.0.1`, `https://shop.example:${port}/orders.json`], { encoding: 'utf8' });
    expect(r.stdout).toBe('{"id":42}\n');
    const flows = await flowsWhere<Http>(base, `http && dst.port == ${port}`);
    expect(flows, agent.log()).toHaveLength(1);
    const live = flows[0]!;
    expect(live.tls).toMatchObject({ via: 'uprobe', library: 'openssl', sni: 'shop.example' });
    expect((await fetch(`${base}/api/snapshots/${snap.id}/stop`, { method: 'POST' })).status).toBe(200);

    const res = await fetch(`${base}/api/snapshots/${snap.id}/pcap`);
    expect(res.status).toBe(200);
    const file = join(dir, 'snapshot.pcapng');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    expect(readFileSync(file).readUInt32LE(0)).toBe(0x0a0d0d0a); // pcapng: it holds plaintext

    // tshark: the request on tapwire's plaintext interface, with the mark as its comment. Sequence
    // analysis off: tshark 4.0 keys TCP by 4-tuple alone and would take it for a retransmission of
    // the ciphertext (docs/ebpf.md).
    const t = spawnSync('tshark', ['-n', '-r', file, '-o', 'tcp.analyze_sequence_numbers:FALSE', '-d', `tcp.port==${port},http`, '-Y', 'http.request',
      '-T', 'fields', '-e', 'http.request.uri', '-e', 'frame.interface_name', '-e', 'frame.comment'], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    const [uri, iface, comment] = t.stdout.trim().split('\t');
    expect([uri, iface]).toEqual(['/orders.json', 'tapwire-tls-plaintext']);
    expect(comment).toMatch(/^tapwire: decrypted TLS plaintext, synthesized TCP \(not wire bytes\) \{/);
    const mark = JSON.parse(comment!.slice(comment!.indexOf('{'))) as Record<string, unknown>;
    expect(mark).toMatchObject({ via: 'uprobe', library: live.tls!.library, pid: live.tls!.pid, comm: live.tls!.comm });
    // The wire's ClientHello is in the same file.
    const hello = spawnSync('tshark', ['-n', '-r', file, '-Y', 'tls.handshake.type == 1', '-T', 'fields', '-e', 'tls.handshake.extensions_server_name'], { encoding: 'utf8' });
    expect(hello.stdout.trim()).toBe('shop.example');

    // Decoded again as a user would: the same HTTP record, marked tls; the handshake's tls record apart.
    const a = spawnSync(process.execPath, [BIN, 'analyze', file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(a.status, a.stderr).toBe(0);
    const again = a.stdout.trim().split('\n').map((l) => JSON.parse(l) as Http);
    const http = again.filter((f) => f.protocol === 'http' && f.dst.port === port);
    expect(http).toHaveLength(1);
    const f = http[0]!;
    expect([f.request.method, f.request.path, f.response.status, f.response.body]).toEqual([live.request.method, live.request.path, live.response.status, live.response.body]);
    // Less the ends' processes, which only the live agent sees (issue 18: Peer.process).
    expect([f.src, f.dst]).toEqual([live.src, live.dst].map(({ process: _live, ...peer }) => peer));
    expect(f.tls).toEqual(live.tls);
    expect(Math.abs(f.start - live.start)).toBeLessThan(0.001);
    const tls = again.filter((x) => x.protocol === 'tls' && x.dst.port === port);
    expect(tls).toHaveLength(1);
    expect(tls[0]!.connectionId).not.toBe(f.connectionId);
    expect(a.stderr).toMatch(/0 decode problems/);
  });

  it('HTTP/2 (ALPN h2) and gRPC with TLS credentials in a snapshot: decoded again from its pcap as the same http2 and grpc records, marked tls', async () => {
    const [h2, rpc] = [port + 1, port + 2];
    const snap = (await (await fetch(`${base}/api/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'h2 and grpc' }) })).json()) as { id: string };
    const r = spawnSync(process.execPath, [join(process.cwd(), 'test/agent/pods/tls-h2.mjs'), 'c.pem', 'k.pem', String(h2), String(rpc)], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const ask = (filter: string) => flowsNow(base, filter);
    let live: FlowRecord[] = [];
    for (let i = 0; i < 50 && live.length < 2; i++) {
      await new Promise((res) => setTimeout(res, 200));
      live = [...await ask(`http2 && dst.port == ${h2}`), ...await ask(`grpc && dst.port == ${rpc}`)];
    }
    expect(live.map((f) => f.protocol), agent.log()).toEqual(['http2', 'grpc']);
    expect((await fetch(`${base}/api/snapshots/${snap.id}/stop`, { method: 'POST' })).status).toBe(200);
    const file = join(dir, 'h2.pcapng');
    writeFileSync(file, Buffer.from(await (await fetch(`${base}/api/snapshots/${snap.id}/pcap`)).arrayBuffer()));
    const a = spawnSync(process.execPath, [BIN, 'analyze', file, '--format', 'jsonl'], { encoding: 'utf8' });
    expect(a.status, a.stderr).toBe(0);
    const again = a.stdout.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord & Record<string, unknown>);
    // The same record but for what a capture file adds or rounds: frame numbers, times to the µs the pcap keeps;
    // and the ends' processes, which only the live agent sees (issue 18: Peer.process).
    const bare = (v: unknown): unknown => (Array.isArray(v) ? v.map(bare) : v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).filter(([k]) => !['frames', 'start', 'end', 'time', 'process'].includes(k)).map(([k, x]) => [k, bare(x)])) : v);
    const pick = (f: FlowRecord & Record<string, unknown>) => bare({ protocol: f.protocol, src: f.src, dst: f.dst, tls: f.tls, request: f.request, response: f.response, grpc: f.grpc });
    for (const l of live as (FlowRecord & Record<string, unknown>)[]) {
      const same = again.filter((f) => f.protocol === l.protocol && f.dst.port === l.dst.port);
      expect(same, a.stdout).toHaveLength(1);
      expect(pick(same[0]!)).toEqual(pick(l));
      expect(Math.abs(same[0]!.start - l.start)).toBeLessThan(1e-5);
      expect(same[0]!.tls).toMatchObject({ via: 'uprobe', library: 'openssl' });
    }
  });
});
