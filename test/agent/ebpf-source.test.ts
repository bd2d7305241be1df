import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCapture, tcCaptureUnavailable } from '../../src/capture/index.js';
import { liveCaptureUnavailable } from '../../src/capture/live.js';
import type { HttpFlow } from '../../src/flows/record.js';
import { flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';
import { SimNode } from './netns.js';

/**
 * Issue 18, `tapwire agent --source ebpf`, started as a user starts it, on a simulated node
 * (network namespaces as pods on a bridge): the same records as libpcap for the same traffic,
 * kernel timestamps in order, processes named, a pod's veth that appears later followed, drops
 * forced with a one-page ring stated in /metrics and in a snapshot, nothing left behind after
 * SIGTERM or after SIGKILL and a restart, and the fallbacks when eBPF cannot run.
 */
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const why = process.getuid?.() !== 0 ? 'needs root (network namespaces, TC filters)'
  : tcCaptureUnavailable().join('; ') || liveCaptureUnavailable()
  || (has('tc') && has('setpriv') && has('setcap') ? '' : 'needs tc (iproute2), setpriv (util-linux) and setcap (libcap2-bin)');
if (why) console.warn(`test/agent/ebpf-source.test.ts skipped: ${why}`);

const PORT = 8080;
const SERVER = `process.title = 'tw-eb-server';
  require('node:http').createServer((q, s) => {
    let n = 0; q.on('data', (d) => (n += d.length));
    q.on('end', () => s.end(q.url.startsWith('/big') ? 'x'.repeat(Number(q.url.slice(5)) || 300000) : JSON.stringify({ path: q.url, got: n })));
  }).listen(${PORT}, '0.0.0.0', () => console.log('listening'));`;
/** argv: host, count, prefix. Keep-alive GETs, one POST, one large response, in order; prints "done". */
const CLIENT = `process.title = 'tw-eb-client';
  const http = require('node:http'); const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const [host, count, prefix] = process.argv.slice(1);
  const one = (method, path, body) => new Promise((res, rej) => {
    const q = http.request({ host, port: ${PORT}, method, path, agent }, (r) => { r.resume(); r.on('end', res); });
    q.on('error', rej); q.end(body);
  });
  (async () => {
    for (let i = 0; i < Number(count); i++) await one('GET', '/' + prefix + '/' + i);
    await one('POST', '/' + prefix + '/post', 'y'.repeat(5000));
    await one('GET', '/big/300000');
    agent.destroy(); console.log('done');
  })().catch((e) => { console.error(e); process.exit(1); });`;

/** A record as both sources must give it: what it says, not when or under which id. */
const line = (r: HttpFlow) => `${r.request?.method} ${r.request?.path} ${r.response?.status} ${r.response?.bodySize} ${r.src.ip}:${r.src.port}>${r.dst.ip}:${r.dst.port}`;

/** tapwire's TC filters (pref 29815) and a clsact qdisc on the device, as tc lists them. */
function tcLeft(dev: string): { filters: string[]; clsact: boolean } {
  const filters = ['ingress', 'egress'].flatMap((hook) => execFileSync('tc', ['filter', 'show', 'dev', dev, hook], { encoding: 'utf8' })
    .split('\n').filter((l) => / pref 29815 .*handle 0x7477 /.test(l)));
  const clsact = /qdisc clsact/.test(execFileSync('tc', ['qdisc', 'show', 'dev', dev], { encoding: 'utf8' }));
  return { filters, clsact };
}

async function metric(base: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe.skipIf(why !== '')('tapwire agent --source ebpf on a simulated node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-ebpf-source-'));
  chmodSync(dir, 0o755);
  let node: SimNode;
  let server: ChildProcess;
  const agents: AgentProcess[] = [];

  const start = async (name: string, args: string[]) => {
    const a = await startAgent(['--listen', '127.0.0.1:0', '--data-dir', join(dir, name), '--tls', 'off', ...args], { env: { TAPWIRE_REDACT_KEY: 'ebpf-source' } });
    agents.push(a);
    return a;
  };
  /** Runs the client in pod `i` against the server pod's address, to its end. */
  const client = async (i: number, host: string, count: number, prefix: string) => {
    const r = await node.exec(i, [process.execPath, '-e', CLIENT, host, String(count), prefix]);
    expect(r.code, r.output).toBe(0);
  };

  beforeAll(async () => {
    node = new SimNode(2);
    server = await node.run(0, [process.execPath, '-e', SERVER], /listening/);
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) await a.stop();
    server?.kill('SIGKILL');
    node?.down();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives the same records as libpcap for the same traffic, with kernel timestamps in order and processes named', async () => {
    const veth = node.pods[0]!.veth;
    const args = ['--interface', veth, '--filter', `tcp port ${PORT}`];
    const pcap = await start('pcap', ['--source', 'pcap', ...args]);
    const ebpf = await start('ebpf', ['--source', 'ebpf', ...args]);
    expect(ebpf.log()).toMatch(new RegExp(`capturing on ${veth} with eBPF \\(TC\\)`));
    const snap = (await (await fetch(`${ebpf.base}/api/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'same' }) })).json()) as { id: string };
    await client(1, node.pods[0]!.ip, 20, 'same');
    const want = 22;
    const filter = 'http && request.path.startsWith("/same") || request.path.startsWith("/big")';
    const [a, b] = await Promise.all([flowsWhere<HttpFlow>(pcap.base, filter, { want }), flowsWhere<HttpFlow>(ebpf.base, filter, { want })]);
    expect(b.map(line).sort()).toEqual(a.map(line).sort());
    expect(b).toHaveLength(want);
    expect(b.filter((r) => r.incomplete)).toEqual([]);
    // The two clocks differ (kernel stamp, libpcap's read time), by little: two agents and the client share two cores.
    const byLine = new Map(a.map((r) => [line(r), r]));
    for (const r of b) expect(Math.abs(r.request!.start - byLine.get(line(r))!.request!.start)).toBeLessThan(0.25);
    // One keep-alive connection, requests in order: kernel stamps follow it.
    const starts = b.filter((r) => r.request?.path.startsWith('/same')).sort((x, y) => Number(x.request!.path.split('/')[2]) - Number(y.request!.path.split('/')[2])).map((r) => r.request!.start);
    expect(starts).toEqual([...starts].sort((x, y) => x - y));
    for (const r of b) {
      expect(r.src.process?.comm).toBe('tw-eb-client');
      expect(r.dst.process?.comm).toBe('tw-eb-server');
      expect(r.dst.process?.pid).toBe(server.pid);
    }
    // The snapshot's packets: each direction of each connection in kernel-stamp order.
    expect((await fetch(`${ebpf.base}/api/snapshots/${snap.id}/stop`, { method: 'POST' })).status).toBe(200);
    const file = join(dir, 'same.pcap');
    execFileSync('curl', ['-s', '-o', file, `${ebpf.base}/api/snapshots/${snap.id}/pcap`]);
    const last = new Map<string, number>();
    let packets = 0, backwards = 0;
    await readCapture(file, (p) => {
      const d = p.data;
      if (d.length < 38 || d.readUInt16BE(12) !== 0x0800) return;
      const key = `${d.toString('hex', 26, 34)}:${d.readUInt16BE(34)}>${d.readUInt16BE(36)}`;
      if (p.time < (last.get(key) ?? 0)) backwards++;
      last.set(key, p.time);
      packets++;
    });
    expect(backwards).toBe(0);
    expect(packets).toBeGreaterThan(40);
    expect(await metric(ebpf.base, 'tapwire_capture_lost_packets_total', 'source="ebpf",reason="ring-full"')).toBe(0);
    expect(await metric(ebpf.base, 'tapwire_capture_source', 'source="ebpf"')).toBe(1);
  });

  it('captures a pod veth that appears after the agent started', async () => {
    const agent = await start('later', ['--source', 'ebpf', '--interface', `${node.vethPrefix}*`, '--filter', `tcp port ${PORT}`]);
    const pod = node.addPod();
    // The new pod talks only to the first pod: the new veth and the first's carry it; the first
    // was there at start, so the new one is proven by its own packet counter.
    await client(2, node.pods[0]!.ip, 3, 'later');
    const got = await flowsWhere<HttpFlow>(agent.base, 'http && request.path.startsWith("/later")', { want: 4 });
    expect(got.map((r) => r.src.ip)).toEqual([pod.ip, pod.ip, pod.ip, pod.ip]);
    const text = await (await fetch(`${agent.base}/metrics`)).text();
    expect(Number(new RegExp(`^tapwire_capture_packets\\{interface="${pod.veth}"\\} (\\d+)`, 'm').exec(text)?.[1])).toBeGreaterThan(0);
    await agent.stop();
    expect(tcLeft(pod.veth)).toEqual({ filters: [], clsact: false });
  });

  it('counts drops forced by a one-page ring, in /metrics and in a snapshot and its pcap', async () => {
    const agent = await start('drops', ['--source', 'ebpf', '--ring-size', '4KiB', '--interface', node.pods[0]!.veth, '--filter', `tcp port ${PORT}`]);
    const snap = (await (await fetch(`${agent.base}/api/snapshots`, { method: 'POST', body: JSON.stringify({ name: 'drops' }) })).json()) as { id: string };
    await client(1, node.pods[0]!.ip, 5, 'drops');
    await new Promise((r) => setTimeout(r, 300));
    const lost = await metric(agent.base, 'tapwire_capture_lost_packets_total', 'source="ebpf",reason="ring-full"');
    expect(lost).toBeGreaterThan(0);
    const stopped = (await (await fetch(`${agent.base}/api/snapshots/${snap.id}/stop`, { method: 'POST' })).json()) as { captureLoss?: string };
    expect(stopped.captureLoss).toMatch(/the capture dropped \d+ packets? \(--source ebpf: its kernel ring buffer was full, or frames could not be copied\)/);
    const listed = (await (await fetch(`${agent.base}/api/snapshots/${snap.id}`)).json()) as { captureLoss?: string };
    expect(listed.captureLoss).toBe(stopped.captureLoss);
    // The pcap states it in its trailer (undici's fetch does not expose trailers; node:http does).
    const trailer = await new Promise<string | undefined>((res, rej) => get(`${agent.base}/api/snapshots/${snap.id}/pcap`, (r) => {
      r.resume();
      r.on('end', () => res(r.trailers['x-tapwire-loss']));
    }).on('error', rej));
    expect(trailer).toMatch(/the capture dropped \d+ packets? \(--source ebpf/);
  });

  it('leaves no filter or qdisc behind after SIGTERM, nor after SIGKILL and a restart', async () => {
    const veth = node.pods[1]!.veth;
    expect(tcLeft(veth)).toEqual({ filters: [], clsact: false });
    const a = await start('term', ['--source', 'ebpf', '--interface', veth]);
    expect(tcLeft(veth).filters).toHaveLength(2);
    await a.stop();
    expect(tcLeft(veth)).toEqual({ filters: [], clsact: false });

    const b = await start('kill', ['--source', 'ebpf', '--interface', veth]);
    b.child.kill('SIGKILL');
    await b.stop();
    // A netlink TC filter holds its program: it outlives the process (docs/tc-capture.md).
    expect(tcLeft(veth).filters).toHaveLength(2);
    const c = await start('kill', ['--source', 'ebpf', '--interface', veth]);
    expect(tcLeft(veth).filters).toHaveLength(2);
    await c.stop();
    // The killed agent's qdisc too: the restarted one took it over with the stale filters.
    expect(tcLeft(veth)).toEqual({ filters: [], clsact: false });
  });

  it('--source both runs libpcap and eBPF side by side, delivering each packet once and counting each source', async () => {
    const agent = await start('both', ['--source', 'both', '--interface', node.pods[0]!.veth, '--filter', `tcp port ${PORT}`]);
    await client(1, node.pods[0]!.ip, 10, 'both');
    const got = await flowsWhere(agent.base, 'http && request.path.startsWith("/both")', { want: 11 });
    expect(got).toHaveLength(11);
    expect(got.filter((r) => r.incomplete)).toEqual([]);
    const first = (s: string) => metric(agent.base, 'tapwire_capture_compared_packets_total', `source="${s}",order="first"`);
    const second = (s: string) => metric(agent.base, 'tapwire_capture_compared_packets_total', `source="${s}",order="second"`);
    const [pf, ps, ef, es] = [await first('pcap'), await second('pcap'), await first('ebpf'), await second('ebpf')];
    // Neither source lost anything here: every packet came from both, first from one of them.
    expect(pf + ps).toBeGreaterThan(40);
    expect(pf + ps).toBe(ef + es);
    expect(pf + ef).toBe(ps + es);
  });

  it('as a non-root pod with NET_RAW and NET_ADMIN only: --source ebpf exits 2 naming what is missing, auto falls back to libpcap and says so', async () => {
    for (const d of ['nobody-ebpf', 'nobody-auto']) {
      mkdirSync(join(dir, d));
      chownSync(join(dir, d), 65534, 65534);
    }
    const nodeCopy = join(dir, 'node-caps');
    copyFileSync(process.execPath, nodeCopy);
    chmodSync(nodeCopy, 0o755);
    execFileSync('setcap', ['cap_net_raw,cap_net_admin+ep', nodeCopy]);
    const via = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all,+net_raw,+net_admin', nodeCopy];
    const args = ['--interface', node.pods[0]!.veth, '--filter', `tcp port ${PORT}`, '--listen', '127.0.0.1:0', '--tls', 'off'];
    const refused = spawnSync(via[0]!, [...via.slice(1), 'dist/cli/main.js', 'agent', '--source', 'ebpf', '--data-dir', join(dir, 'nobody-ebpf'), ...args], { encoding: 'utf8', timeout: 30_000 });
    expect(refused.status, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/--source ebpf: .*not privileged to load BPF programs: run as root or with CAP_BPF/);
    const auto = await startAgent(['--source', 'auto', '--data-dir', join(dir, 'nobody-auto'), ...args], { spawnVia: via });
    agents.push(auto);
    expect(auto.log()).toMatch(/--source auto: capturing with libpcap, since eBPF cannot run here: .*CAP_BPF/);
    expect(auto.log()).toMatch(/with libpcap; API on/);
    await client(1, node.pods[0]!.ip, 2, 'auto');
    expect(await flowsWhere(auto.base, 'http && request.path.startsWith("/auto")', { want: 3 })).toHaveLength(3);
  });
});
