/**
 * The TC packet source (issue 18) on a real veth between the root namespace and a pod namespace:
 * HTTP between them gives the same records through TC as through libpcap capturing the same
 * interface at the same time; kernel stamps stay in order per direction; the in-kernel filter keeps
 * only the chosen port; a tiny ring loses frames and counts them; nothing of ours stays on the
 * interface after close(), nor after a SIGKILL once a new source has opened.
 * Root, the addon and `cap` are needed; otherwise the suite skips, saying why.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { firstLine } from '../../helpers/child-lines.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveCapture, liveCaptureUnavailable } from '../../../src/capture/live.js';
import { TcCapture, tcCaptureUnavailable, type TcCounters, type TcOptions } from '../../../src/capture/tc/index.js';
import type { Packet } from '../../../src/capture/types.js';
import { Pipeline } from '../../../src/pipeline/pipeline.js';
import type { HttpFlowRecord } from '../../../src/flows/record.js';
import { httpRecord } from '../../helpers/records.js';

const why = [
  ...tcCaptureUnavailable(),
  ...(liveCaptureUnavailable() ? [liveCaptureUnavailable()] : []),
  ...(spawnSync('tc', ['-V']).status === 0 ? [] : ['no tc (iproute2)']),
].join('; ');
if (why) console.log(`test/capture/tc/source.test.ts skipped: ${why}`);

const SERVER = `
import http from 'node:http';
for (const port of process.argv.slice(3).map(Number)) {
  http.createServer((req, res) => {
    let got = 0;
    req.on('data', (c) => { got += c.length; });
    req.on('end', () => {
      const size = req.url.endsWith('/big') ? 300_000 : 0;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url, got, pad: 'x'.repeat(size) }));
    });
  }).listen(port, process.argv[2]);
}
setTimeout(() => console.log('listening'), 200);
`;

/** Requests to host:port with one keep-alive connection; prints [{ path, status, port, bytes }]. */
const CLIENT = `
import http from 'node:http';
const [host, port, tag, count] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const done = [];
const call = (path, body) => new Promise((resolve, reject) => {
  const r = http.request({ host, port: Number(port), method: body ? 'POST' : 'GET', path, agent, headers: body ? { 'content-length': body.length } : {} }, (res) => {
    let n = 0;
    res.on('data', (c) => { n += c.length; });
    res.on('end', () => { done.push({ path, status: res.statusCode, port: r.socket.localPort, bytes: n }); resolve(); });
  });
  r.on('error', reject);
  r.end(body);
});
for (let i = 1; i <= Number(count); i++) await call('/' + tag + '/' + i);
await call('/' + tag + '/post', 'y'.repeat(5000));
await call('/' + tag + '/big');
console.log(JSON.stringify(done));
agent.destroy();
`;

const CHILD = `
import { TcCapture } from ${JSON.stringify(resolve('dist/capture/tc/index.js'))};
new TcCapture({ interfaces: [process.argv[2]] }, () => {});
console.log('attached');
setInterval(() => {}, 1000);
`;

interface Done { path: string; status: number; port: number; bytes: number }

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TAPWIRE_PREF = 29815; // 0x7477, native/addon.c TW_TC_PRIORITY

/** `n` TCP connects to a closed port of `ip`, one after the other: a SYN and a RST each. */
function knock(ip: string, n: number): void {
  const code = `const net = require('node:net'); let left = ${n};
const next = () => { if (left-- === 0) return; const s = net.connect(9, ${JSON.stringify(ip)}); s.on('error', next); s.on('connect', () => { s.destroy(); next(); }); };
next();`;
  execFileSync(process.execPath, ['-e', code], { timeout: 10_000 });
}

/** tapwire's filters on the device, as `tc` lists them. */
function ourFilters(dev: string): string[] {
  return ['ingress', 'egress'].flatMap((hook) => sh('tc', ['filter', 'show', 'dev', dev, hook]).split('\n')
    .filter((l) => l.startsWith('filter ') && l.includes(` pref ${TAPWIRE_PREF} `) && l.includes(' handle 0x7477 ')).map((l) => `${hook}: ${l}`));
}

describe.skipIf(why !== '')('TC packet source on a veth', () => {
  const id = Math.random().toString(16).slice(2, 7);
  const ns = `twtc-${id}`;
  const host = `twtc${id}h`;
  const net = `10.${150 + Math.floor(Math.random() * 40)}.${Math.floor(Math.random() * 256)}`;
  const hostIp = `${net}.1`, podIp = `${net}.2`;
  const children: ChildProcess[] = [];
  let dir = '';

  const down = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['link', 'del', host]);
  };

  beforeAll(async () => {
    process.on('exit', down);
    dir = mkdtempSync(join(tmpdir(), 'tapwire-tc-'));
    writeFileSync(join(dir, 'server.mjs'), SERVER);
    writeFileSync(join(dir, 'client.mjs'), CLIENT);
    writeFileSync(join(dir, 'child.mjs'), CHILD);
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh('sysctl', ['-qw', `net.ipv6.conf.${host}.disable_ipv6=1`]);
    sh('ip', ['addr', 'add', `${hostIp}/24`, 'dev', host]);
    sh('ip', ['link', 'set', host, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${podIp}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const server = spawn('ip', ['netns', 'exec', ns, process.execPath, join(dir, 'server.mjs'), podIp, '8080', '8081'], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    expect(await firstLine(server)).toBe('listening');
  });

  afterAll(() => {
    process.off('exit', down);
    down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the client from the root namespace against the pod and waits for its report. */
  async function client(port: number, tag: string, count = 5): Promise<Done[]> {
    const c = spawn(process.execPath, [join(dir, 'client.mjs'), podIp, String(port), tag, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    return JSON.parse(await firstLine(c)) as Done[];
  }

  function pipelineInto(records: HttpFlowRecord[]): Pipeline {
    return new Pipeline({ frames: false, onRecord: (r) => records.push(httpRecord(r)) });
  }

  const key = (r: HttpFlowRecord) => `${r.src.port} ${r.request?.method} ${r.request?.path} ${r.response?.status} ${r.response?.bodySize}`;

  it('gives the same HTTP records as libpcap on the same interface, stamps in order per direction', async () => {
    const fromTc: HttpFlowRecord[] = [], fromPcap: HttpFlowRecord[] = [];
    const pTc = pipelineInto(fromTc), pPcap = pipelineInto(fromPcap);
    const last = { ingress: 0, egress: 0 };
    let disorder = 0;
    const tc = new TcCapture({ interfaces: [host] }, (p: Packet) => {
      // Ingress of the host side is what the pod sent: the server's port is the source.
      const dir = p.data.length >= 36 && p.data.readUInt16BE(34) === 8080 ? 'ingress' : 'egress';
      if (p.time < last[dir]) disorder++;
      last[dir] = p.time;
      pTc.packet({ ...p, data: Buffer.from(p.data) });
    });
    const pcap = new LiveCapture({ interfaces: [host], bufferBytes: 16 << 20 }, (p) => pPcap.packet(p));
    pcap.start();
    let counters: TcCounters;
    try {
      const done = [...await client(8080, 'a', 8), ...await client(8080, 'b', 3)];
      await sleep(500);
      counters = tc.counters();
      pTc.finish();
      pPcap.finish();
      expect(fromTc.length).toBe(done.length);
      expect(fromTc.map(key).sort()).toEqual(fromPcap.map(key).sort());
      expect(fromTc.map((r) => `${r.request?.path} ${r.response?.bodySize}`).sort()).toEqual(done.map((d) => `${d.path} ${d.bytes}`).sort());
      expect(fromTc.every((r) => r.incomplete === undefined)).toBe(true);
      expect(pTc.violations.total).toBe(0);
      // Each packet's time is the kernel's, a little before libpcap's callback stamp.
      const byKey = new Map(fromPcap.map((r) => [key(r), r]));
      for (const r of fromTc) expect(Math.abs(r.start - byKey.get(key(r))!.start)).toBeLessThan(0.05);
    } finally {
      pcap.stop();
      tc.close();
    }
    expect(disorder).toBe(0);
    expect(counters.lost).toBe(0);
    expect(counters.readFail).toBe(0);
    expect(counters.filtered).toBe(0);
    expect(counters.sent).toBe(counters.seen);
    expect(counters.delivered).toBe(counters.sent);
    expect(counters.duplicates).toBe(0);
    expect(counters.interfaces[0]!.packets).toBe(counters.delivered);
    expect(ourFilters(host)).toEqual([]);
    // The veth had no clsact qdisc: the one the source added went with it.
    expect(sh('tc', ['qdisc', 'show', 'dev', host])).not.toMatch(/clsact/);
  });

  it('keeps only the chosen port with the in-kernel filter, and counts what it left out', async () => {
    const records: HttpFlowRecord[] = [];
    const p = pipelineInto(records);
    const ports = new Set<number>();
    const opts: TcOptions = { interfaces: [host], filter: { ports: [8081] } };
    const tc = new TcCapture(opts, (pkt) => {
      if (pkt.data.readUInt16BE(12) === 0x0800 && pkt.data[23] === 6) ports.add(pkt.data.readUInt16BE(34)).add(pkt.data.readUInt16BE(36));
      p.packet({ ...pkt, data: Buffer.from(pkt.data) });
    });
    let c: TcCounters;
    try {
      await client(8080, 'other', 3);
      const done = await client(8081, 'kept', 3);
      await sleep(300);
      c = tc.counters();
      p.finish();
      expect(records.map((r) => r.request?.path).sort()).toEqual(done.map((d) => d.path).sort());
    } finally {
      tc.close();
    }
    expect(ports.has(8081)).toBe(true);
    expect(ports.has(8080)).toBe(false);
    expect(c.filtered).toBeGreaterThan(20);
    expect(c.seen).toBe(c.sent + c.filtered);
  });

  it('counts the frames a tiny ring had no room for', async () => {
    let got = 0;
    // One page: a 64 KiB GSO frame of the 300 kB response never fits.
    const tc = new TcCapture({ interfaces: [host], ringBytes: 4096 }, () => { got++; });
    let c: TcCounters;
    try {
      await client(8080, 'lossy', 2);
      await sleep(300);
      c = tc.counters();
    } finally {
      tc.close();
    }
    expect(c.lost).toBeGreaterThan(0);
    expect(c.seen).toBe(c.sent + c.lost);
    expect(c.delivered).toBe(got);
    expect(got + c.duplicates).toBe(c.sent);
  });

  it('captures on an interface added after start (a new pod veth), and stops on remove', async () => {
    const ns2 = `${ns}b`, host2 = `twtc${id}g`, net2 = `10.${191 + Math.floor(Math.random() * 40)}.${Math.floor(Math.random() * 256)}`;
    const per = new Map<number, number>();
    const tc = new TcCapture({ interfaces: [host] }, (p) => per.set(p.iface, (per.get(p.iface) ?? 0) + 1));
    try {
      sh('ip', ['netns', 'add', ns2]);
      sh('ip', ['netns', 'exec', ns2, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      sh('ip', ['link', 'add', host2, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns2]);
      sh('sysctl', ['-qw', `net.ipv6.conf.${host2}.disable_ipv6=1`]);
      sh('ip', ['addr', 'add', `${net2}.1/24`, 'dev', host2]);
      sh('ip', ['link', 'set', host2, 'up']);
      sh('ip', ['-n', ns2, 'addr', 'add', `${net2}.2/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns2, 'link', 'set', 'eth0', 'up']);
      expect(tc.add(host2)).toBe(1);
      expect(tc.add(host2)).toBe(1); // already there
      expect(ourFilters(host2)).toHaveLength(2);
      knock(`${net2}.2`, 3);
      await sleep(300);
      // 3 SYNs and 3 RSTs (nothing listens), with the ARP exchange before them.
      expect(per.get(1)).toBeGreaterThanOrEqual(6);
      tc.remove(host2);
      expect(ourFilters(host2)).toEqual([]);
      expect(sh('tc', ['qdisc', 'show', 'dev', host2])).not.toMatch(/clsact/);
      const before = per.get(1);
      knock(`${net2}.2`, 2);
      await sleep(300);
      expect(per.get(1)).toBe(before);
      expect(tc.counters().interfaces.map((i) => i.name)).toEqual([host]);
      expect(() => tc.add(`${host}zz`)).toThrow(/no such interface/);
    } finally {
      tc.close();
      spawnSync('ip', ['netns', 'del', ns2]);
      spawnSync('ip', ['link', 'del', host2]);
    }
    expect(ourFilters(host)).toEqual([]);
  });

  it('delivers a packet bridged between two captured veths once', async () => {
    const br = `twtc${id}r`, pods = [`${ns}x`, `${ns}y`], veths = [`twtc${id}x`, `twtc${id}y`];
    const net3 = `10.${231 + Math.floor(Math.random() * 20)}.${Math.floor(Math.random() * 256)}`;
    try {
      sh('ip', ['link', 'add', br, 'type', 'bridge']);
      sh('sysctl', ['-qw', `net.ipv6.conf.${br}.disable_ipv6=1`]);
      sh('ip', ['link', 'set', br, 'up']);
      pods.forEach((pod, i) => {
        sh('ip', ['netns', 'add', pod]);
        sh('ip', ['netns', 'exec', pod, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
        sh('ip', ['link', 'add', veths[i]!, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
        sh('sysctl', ['-qw', `net.ipv6.conf.${veths[i]}.disable_ipv6=1`]);
        sh('ip', ['link', 'set', veths[i]!, 'master', br]);
        sh('ip', ['link', 'set', veths[i]!, 'up']);
        sh('ip', ['-n', pod, 'addr', 'add', `${net3}.${11 + i}/24`, 'dev', 'eth0']);
        sh('ip', ['-n', pod, 'link', 'set', 'eth0', 'up']);
      });
      let tcp = 0;
      const tc = new TcCapture({ interfaces: veths }, (p) => { if (p.data.readUInt16BE(12) === 0x0800 && p.data[23] === 6) tcp++; });
      let c: TcCounters;
      try {
        // From pod x to a closed port of pod y: each SYN and RST crosses both veths.
        execFileSync('ip', ['netns', 'exec', pods[0]!, process.execPath, '-e', `const net = require('node:net'); let left = 4;
const next = () => { if (left-- === 0) return; const s = net.connect(9, '${net3}.12'); s.on('error', next); s.on('connect', () => { s.destroy(); next(); }); };
next();`], { timeout: 10_000 });
        await sleep(300);
        c = tc.counters();
      } finally {
        tc.close();
      }
      expect(tcp).toBe(8);
      expect(c.duplicates).toBeGreaterThanOrEqual(8);
      expect(c.delivered + c.duplicates).toBe(c.sent);
      expect(c.interfaces[0]!.packets + c.interfaces[1]!.packets).toBe(c.sent);
    } finally {
      for (const pod of pods) spawnSync('ip', ['netns', 'del', pod]);
      spawnSync('ip', ['link', 'del', br]);
    }
  });

  it('removes the filters a SIGKILLed process left, at the next open', async () => {
    const child = spawn(process.execPath, [join(dir, 'child.mjs'), host], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    expect(await firstLine(child)).toBe('attached');
    expect(ourFilters(host)).toHaveLength(2);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // TC filters are not owned by an fd: both are still there, running.
    expect(ourFilters(host)).toHaveLength(2);
    const tc = new TcCapture({ interfaces: [host] }, () => {});
    expect(tc.counters().staleRemoved).toBe(2);
    expect(ourFilters(host)).toHaveLength(2);
    tc.close();
    expect(ourFilters(host)).toEqual([]);
  });
});

describe.skipIf(why !== '')('TC packet source on loopback, with the exact filter in the reader', () => {
  it('hooks lo on ingress only (each packet once), and lets through only what the libpcap expression keeps', async () => {
    const server = createServer((s) => s.end('hello')).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const got: Buffer[] = [];
    // The kernel keeps the port's frames; the reader keeps only the SYN-flagged ones of them.
    const tc = new TcCapture({ interfaces: ['lo'], filter: { ports: [port] }, expression: `tcp port ${port} and tcp[13] & 2 != 0` }, (p) => { got.push(Buffer.from(p.data)); });
    try {
      expect(ourFilters('lo').filter((l) => / handle 0x7477 /.test(l))).toHaveLength(1);
      expect(sh('tc', ['filter', 'show', 'dev', 'lo', 'egress'])).not.toMatch(new RegExp(` pref ${TAPWIRE_PREF} `));
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((res, rej) => {
          const c = connect(port, '127.0.0.1', () => c.write('x'));
          c.on('data', () => c.end());
          c.on('close', () => res());
          c.on('error', rej);
        });
      }
      await sleep(300);
      // SYN and SYN-ACK of each connection, nothing else, and each once.
      const flags = got.map((d) => d[14 + 20 + 13]!);
      expect(flags.every((f) => (f & 0x02) !== 0)).toBe(true);
      expect(got).toHaveLength(6);
      const c = tc.counters();
      expect(c.userFiltered).toBeGreaterThan(10);
      expect(c.duplicates).toBe(0);
      expect(c.delivered).toBe(6);
      expect(c.sent).toBe(c.delivered + c.userFiltered);
    } finally {
      tc.close();
      server.close();
    }
    expect(ourFilters('lo')).toEqual([]);
  });

  it('refuses a link without an Ethernet header, naming it', () => {
    const tun = `twtun${process.pid % 10000}`;
    spawnSync('ip', ['tuntap', 'add', 'dev', tun, 'mode', 'tun']);
    try {
      expect(() => new TcCapture({ interfaces: [tun] }, () => {})).toThrow(new RegExp(`${tun}: link type 65534 has no Ethernet header`));
      expect(ourFilters(tun)).toEqual([]);
    } finally {
      spawnSync('ip', ['link', 'del', tun]);
    }
  });
});
