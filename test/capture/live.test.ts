/**
 * Live capture against real traffic: network namespaces as pods on a bridge, a node:http server in
 * one pod, node:http clients in two others, LiveCapture on the bridge and on `any` feeding a real
 * Pipeline. The records must be exactly the requests the clients made, each emitted within 1 s of
 * its last byte while the connections sit idle, and the capture's counters must agree with the
 * kernel's.
 *
 * The pure parts (option checks, duplicate keys, Pipeline.tick) run everywhere; the rest needs
 * root and libpcap and skips with the reason otherwise.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureOpenError, LiveCapture, liveCaptureUnavailable, type LiveCounters, type LiveOptions } from '../../src/capture/live.js';
import { DuplicateWindow, findL3, l3Key, wireLength, type L3 } from '../../src/capture/live/dedup.js';
import { IdentityMap } from '../../src/enrich/index.js';
import type { Packet } from '../../src/capture/types.js';
import type { FlowRecord, HttpFlowRecord } from '../../src/flows/record.js';
import { httpRecord } from '../helpers/records.js';
import { Pipeline, type PipelineOptions } from '../../src/pipeline/pipeline.js';
import { Conversation, ethernet, segmentIp, sll, sll2, toPackets } from '../helpers/bytes.js';
import { firstLine } from '../helpers/child-lines.js';

const why = process.platform !== 'linux' ? 'needs Linux (network namespaces, libpcap)'
  : process.getuid?.() !== 0 ? 'needs root (network namespaces, libpcap capture)'
  : liveCaptureUnavailable() || (spawnSync('ip', ['-V']).status !== 0 ? 'no ip command (apt-get install iproute2)' : '');
if (why) console.warn(`test/capture/live.test.ts skipped: ${why}`);

// ---- pure parts ----------------------------------------------------------------------------------

describe('LiveCapture options', () => {
  const startWith = (o: LiveOptions) => () => new LiveCapture(o, () => undefined).start();

  it('refuses no interface, a name that cannot be one, any beside others, and a name given twice', () => {
    for (const [o, reason, text] of [
      [{ interfaces: [] }, 'bad-option', 'no interface given'],
      [{ interfaces: ['../etc'] }, 'bad-option', '../etc: not an interface name'],
      [{ interfaces: ['a-name-longer-than-15'] }, 'bad-option', 'not an interface name'],
      [{ interfaces: ['any', 'lo'] }, 'bad-option', 'any: any already captures every interface'],
      [{ interfaces: ['lo', 'lo'] }, 'bad-option', 'lo: interface given twice'],
      [{ interfaces: ['lo'], bufferBytes: -1 }, 'bad-option', 'buffer size -1'],
    ] as [LiveOptions, string, string][]) {
      expect(startWith(o)).toThrow(CaptureOpenError);
      expect(startWith(o)).toThrow(text);
      try { startWith(o)(); } catch (e) { expect((e as CaptureOpenError).reason).toBe(reason); }
    }
  });
});

describe('duplicate packets across interfaces', () => {
  const seg = new Conversation({ client: '10.1.0.2', server: '10.1.0.3' }).handshake().send(0, 'GET / HTTP/1.1\r\n\r\n')[0]!;
  const ip = segmentIp(seg);
  const l3 = (linkType: number, frame: Buffer): L3 => findL3(linkType, frame, { offset: 0, version: 0 })!;

  it('keys the L3 packet, not its link header: Ethernet, SLL, SLL2 and raw IP copies match', () => {
    const frames: [number, Buffer][] = [[1, ethernet(ip)], [113, sll(ip)], [276, sll2(ip)], [101, ip], [1, ethernet(ip, { vlans: [{ vid: 7 }] })]];
    const keys = frames.map(([lt, f]) => l3Key(f, l3(lt, f)));
    expect(new Set(keys).size).toBe(1);
    expect(l3(113, sll(ip))).toEqual({ offset: 16, version: 4 });
  });

  it('ignores a rewritten TTL and header checksum, but not any other byte', () => {
    const routed = Buffer.from(ip);
    routed[8] = routed[8]! - 1;
    routed.writeUInt16BE(0x1234, 10);
    expect(l3Key(routed, l3(101, routed))).toBe(l3Key(ip, l3(101, ip)));
    for (const at of [4, 5, 12, 19, 24, 36, ip.length - 1]) {
      const other = Buffer.from(ip);
      other[at] = other[at]! ^ 1;
      expect(l3Key(other, l3(101, other)), `byte ${at}`).not.toBe(l3Key(ip, l3(101, ip)));
    }
  });

  it('remembers a packet for the window only, and does not extend it with copies', () => {
    const w = new DuplicateWindow(0.05);
    expect(w.duplicate(42, 10.0)).toBe(false);
    expect(w.duplicate(42, 10.03)).toBe(true);
    expect(w.duplicate(42, 10.049)).toBe(true);
    expect(w.duplicate(42, 10.06)).toBe(false); // a retransmission of identical bytes, later: TCP judges it
    for (let i = 0; i < 10_000; i++) w.duplicate(1000 + i, 11 + i * 1e-4);
    w.duplicate(7, 20);
    expect(w.size).toBe(1);
  });

  it('takes the wire length from the IP header when the snap length cut the frame', () => {
    const big = Buffer.from(ip);
    big.writeUInt16BE(65535, 2); // a 64 KiB loopback frame, of which the capture kept this much
    const f = ethernet(big);
    expect(wireLength(f, l3(1, f))).toBe(14 + 65535);
    const tso = Buffer.from(ip);
    tso.writeUInt16BE(0, 2); // TSO: total length 0, take what was captured
    expect(wireLength(tso, l3(101, tso))).toBe(tso.length);
  });
});

describe('Pipeline.tick: a live source with gaps in traffic', () => {
  const t0 = 1_700_000_000;
  const exchange = () => {
    const c = new Conversation({ start: t0, step: 0.001 }).handshake();
    c.send(0, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    c.send(1, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    c.ack(0);
    return toPackets(c.segments);
  };

  /** A pipeline as a live source runs it, and its records as [path, incompleteReason]. */
  const live = (opts: Partial<PipelineOptions> = {}) => {
    const records: HttpFlowRecord[] = [];
    const p = new Pipeline({ frames: false, onRecord: (r) => records.push(httpRecord(r)), ...opts });
    return { p, records, outcome: () => records.map((r) => [r.request!.path, r.incompleteReason]) };
  };

  it('releases held packets once the clock passes the window, so the exchange becomes a record without a next packet', () => {
    const { p, records, outcome } = live();
    const pkts = exchange();
    for (const k of pkts) p.packet(k);
    const last = pkts.at(-1)!.time;
    p.tick(last + 0.2);
    expect(records).toHaveLength(0); // still inside the 0.5 s window
    p.tick(last + 0.51);
    expect(outcome()).toEqual([['/a', undefined]]);
    expect(p.timeOrder.late).toBe(0);
  });

  it('lets reassembly close idle connections, emitting what waited for the close', () => {
    const { p, records, outcome } = live({ reassembly: { idleTimeoutSec: 5 } });
    const c = new Conversation({ start: t0 }).handshake();
    c.send(0, 'GET /never-answered HTTP/1.1\r\nHost: x\r\n\r\n');
    for (const k of toPackets(c.segments)) p.packet(k);
    p.tick(t0 + 3);
    expect(p.reassembler.stats.openConnections).toBe(1);
    expect(records).toHaveLength(0);
    p.tick(t0 + 7);
    expect(p.reassembler.stats.openConnections).toBe(0);
    expect(outcome()).toEqual([['/never-answered', 'no-response']]);
  });

  it('makes a hole a gap after the gap timeout, without a later packet', () => {
    const { p, records, outcome } = live();
    const c = new Conversation({ start: t0 }).handshake();
    c.send(0, 'GET /one HTTP/1.1\r\nHost: x\r\n\r\n');
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n';
    const lost = c.send(1, head + 'x'.repeat(3000), [head.length + 1000, head.length + 2000])[1]!;
    for (const k of toPackets(c.segments.filter((s) => s !== lost))) p.packet(k);
    p.tick(t0 + 1);
    expect(p.reassembler.stats.gaps).toBe(0);
    expect(records).toHaveLength(0);
    p.tick(t0 + 3.6);
    expect(p.reassembler.stats.gaps).toBe(1);
    expect(outcome()).toEqual([['/one', 'gap-in-body']]);
  });

  it('changes nothing for a file source, which never ticks', () => {
    const a: FlowRecord[] = [], b: FlowRecord[] = [];
    const pa = new Pipeline({ onRecord: (r) => a.push(r) }), pb = new Pipeline({ onRecord: (r) => b.push(r) });
    const pkts = exchange();
    for (const k of pkts) { pa.packet(k); pb.packet(k); pb.tick(k.time); }
    pa.finish();
    pb.finish();
    expect(b).toEqual(a);
  });
});

// ---- real pods -----------------------------------------------------------------------------------

const SERVER = `
import http from 'node:http';
http.createServer((req, res) => {
  let got = 0;
  req.on('data', (c) => { got += c.length; });
  req.on('end', () => {
    if (req.url.endsWith('/missing')) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not here'); return; }
    const size = req.url.endsWith('/big') ? 200_000 : 0;
    const body = JSON.stringify({ method: req.method, path: req.url, got, pad: 'x'.repeat(size) });
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
    res.end(body);
  });
}).listen(Number(process.argv[2]), process.argv[3], () => console.log('listening'));
`;

/** Makes requests, prints what it did as one JSON line, then stays idle with a keep-alive connection open. */
const CLIENT = `
import http from 'node:http';
const [host, port, tag, idleMs] = process.argv.slice(2);
const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
const once = new http.Agent({ keepAlive: false });
const done = [];
const call = (method, path, body, agent) => new Promise((resolve, reject) => {
  const headers = body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {};
  const r = http.request({ host, port: Number(port), method, path, agent, headers }, (res) => {
    let n = 0;
    res.on('data', (c) => { n += c.length; });
    res.on('end', () => { done.push({ method, path, status: res.statusCode, port: r.socket.localPort, bytes: n }); resolve(); });
  });
  r.on('error', reject);
  r.end(body);
});
for (let i = 1; i <= 4; i++) await call('GET', '/' + tag + '/orders/' + i, undefined, keep);
await call('POST', '/' + tag + '/orders', JSON.stringify({ item: 'widget', qty: 2 }), keep);
await call('GET', '/' + tag + '/big', undefined, keep);
await Promise.all([1, 2, 3].map((i) => call('GET', '/' + tag + '/parallel/' + i, undefined, once)));
await call('GET', '/' + tag + '/missing', undefined, keep);
console.log(JSON.stringify(done));
setTimeout(() => process.exit(0), Number(idleMs));
`;

interface Done { method: string; path: string; status: number; port: number; bytes: number }

const sh = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error}`);
};

/** A bridge with three pods, unique per run (names and subnet), torn down however the run ends. */
class Pods {
  readonly id = Math.random().toString(16).slice(2, 8);
  readonly bridge = `tw${this.id}b`;
  readonly subnet = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
  readonly ns = [1, 2, 3].map((i) => `tw-${this.id}-p${i}`);
  readonly veth = [1, 2, 3].map((i) => `tw${this.id}v${i}`);
  readonly ip = [1, 2, 3].map((i) => `${this.subnet}.1${i}`);
  private readonly children: ChildProcess[] = [];
  private readonly teardownOnExit = () => this.down();

  up(): void {
    process.on('exit', this.teardownOnExit);
    sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    // No IPv6 anywhere: router solicitations and MLD reports would be traffic nobody asked for.
    sh('sysctl', ['-qw', `net.ipv6.conf.${this.bridge}.disable_ipv6=1`]);
    sh('ip', ['link', 'set', this.bridge, 'up']);
    this.ns.forEach((ns, i) => {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      sh('ip', ['link', 'add', this.veth[i]!, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh('sysctl', ['-qw', `net.ipv6.conf.${this.veth[i]}.disable_ipv6=1`]);
      sh('ip', ['link', 'set', this.veth[i]!, 'master', this.bridge]);
      sh('ip', ['link', 'set', this.veth[i]!, 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${this.ip[i]}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    });
  }

  /** Starts `node script args…` in pod `i`. */
  node(i: number, script: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns[i]!, process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.children.push(child);
    return child;
  }

  down(): void {
    process.off('exit', this.teardownOnExit);
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const ns of this.ns) spawnSync('ip', ['netns', 'del', ns]);
    spawnSync('ip', ['link', 'del', this.bridge]);
  }

  /** rx + tx packets of the bridge and the pods' host-side veths. */
  hostSidePackets(): number {
    let n = 0;
    for (const dev of [this.bridge, ...this.veth]) {
      for (const f of ['rx_packets', 'tx_packets']) n += Number(readFileSync(`/sys/class/net/${dev}/statistics/${f}`, 'utf8'));
    }
    return n;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  expected: (Done & { client: number })[];
  records: { r: HttpFlowRecord; at: number }[];
  counters: LiveCounters;
  hostSide: number;
  violations: number;
}

describe.skipIf(why !== '')('live capture of pods on a bridge', () => {
  const pods = new Pods();
  const port = 8080;
  let dir = '';
  let identities: IdentityMap;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tapwire-live-'));
    writeFileSync(join(dir, 'server.mjs'), SERVER);
    writeFileSync(join(dir, 'client.mjs'), CLIENT);
    writeFileSync(join(dir, 'identities.json'), JSON.stringify({
      [pods.ip[0]!]: { name: 'checkout-5d8', namespace: 'shop', workload: 'checkout', node: 'node-1' },
      [pods.ip[1]!]: { name: 'orders-7c9', namespace: 'shop', workload: 'orders', node: 'node-1' },
      [pods.ip[2]!]: { name: 'cart-1f2', namespace: 'shop', workload: 'cart' },
    }));
    identities = IdentityMap.load(join(dir, 'identities.json'));
    pods.up();
    const server = pods.node(1, join(dir, 'server.mjs'), [String(port), pods.ip[1]!]);
    expect(await firstLine(server)).toBe('listening');
  });

  afterAll(() => {
    pods.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Two client pods call the server pod while LiveCapture feeds a Pipeline ticked every 100 ms. */
  async function traffic(opts: LiveOptions, tap?: (p: Packet) => void): Promise<Run> {
    const records: Run['records'] = [];
    const pipeline = new Pipeline({
      frames: false,
      // Records come only from packets, hence after `cap` below exists.
      onRecord: (r) => {
        identities.enrich(r);
        records.push({ r: httpRecord(r), at: cap.now() });
      },
    });
    // A 64 MiB ring (512 packets) is plenty for this traffic, and a quarter of the default to allocate.
    const cap = new LiveCapture({ bufferBytes: 64 << 20, ...opts }, (p) => {
      tap?.(p);
      pipeline.packet(p);
    });
    const hostBefore = pods.hostSidePackets();
    cap.start();
    const ticker = setInterval(() => pipeline.tick(cap.now()), 100);
    // Clients stay idle 4 s after their last request, keep-alive connections open: no packet
    // comes to push the last records out of any buffer.
    const clients = [0, 2].map((i) => pods.node(i, join(dir, 'client.mjs'), [pods.ip[1]!, String(port), `c${i}`, '4000']));
    try {
      const done = await Promise.all(clients.map(async (c) => JSON.parse(await firstLine(c)) as Done[]));
      const expected = done.flatMap((d, k) => d.map((x) => ({ ...x, client: k === 0 ? 0 : 2 })));
      const deadline = Date.now() + 1500;
      while (records.length < expected.length && Date.now() < deadline) await sleep(20);
      await sleep(300); // nothing more may come
      // A late frame (an ARP, a keep-alive) can be in the kernel's counters a moment before
      // libpcap hands it over: read the counters once what was counted has also been delivered
      // (up to 1 s; a real loss still shows as seen < rx + tx).
      let counters = cap.counters();
      const settled = (c: LiveCounters) => c.interfaces.every((i) => i.rxPackets === undefined || i.seen === i.rxPackets + i.txPackets!);
      for (const until = Date.now() + 1000; !settled(counters) && Date.now() < until; counters = cap.counters()) await sleep(50);
      const hostSide = pods.hostSidePackets() - hostBefore;
      return { expected, records, counters, hostSide, violations: pipeline.violations.total };
    } finally {
      clearInterval(ticker);
      cap.stop();
      // The clients' connections close as they die: let that traffic pass before the next capture counts.
      await Promise.all(clients.map((c) => new Promise((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) resolve(undefined);
        else { c.once('exit', resolve); c.kill('SIGKILL'); }
      })));
      await sleep(300);
    }
  }

  function checkRecords(run: Run): void {
    const key = (x: { method: string; path: string; status?: number; port: number }) => `${x.port} ${x.method} ${x.path} ${x.status}`;
    const got = run.records.map(({ r }) => {
      const req = r.request!, res = r.response;
      return { method: req.method, path: req.path, status: res?.status, port: r.src.port };
    });
    expect(got.map(key).sort()).toEqual(run.expected.map(key).sort());
    expect(new Set(run.records.map(({ r }) => r.id)).size).toBe(run.records.length);
    expect(run.violations).toBe(0);
    for (const { r, at } of run.records) {
      const d = run.expected.find((x) => x.port === r.src.port && x.path === r.request!.path)!;
      expect(r.incomplete, r.id).toBeUndefined();
      expect(r.response!.bodySize).toBe(d.bytes);
      expect(r.src.ip).toBe(pods.ip[d.client]);
      expect(r.dst).toMatchObject({ ip: pods.ip[1], port, name: 'orders-7c9', namespace: 'shop', workload: 'orders', node: 'node-1' });
      expect(r.src).toMatchObject(d.client === 0
        ? { name: 'checkout-5d8', namespace: 'shop', workload: 'checkout', node: 'node-1' }
        : { name: 'cart-1f2', namespace: 'shop', workload: 'cart' });
      if (d.client === 2) expect(r.src.node).toBeUndefined();
      // Queryable within 1 s of its last byte, measured on the clock packets are stamped with.
      expect(at - r.end, `${r.id} ${r.request!.path}`).toBeLessThan(1);
      expect(at).toBeGreaterThanOrEqual(r.end);
    }
  }

  it('on the bridge: exactly the requests made, each emitted within 1 s, seen = the bridge counters', async () => {
    const run = await traffic({ interfaces: [pods.bridge] });
    checkRecords(run);
    const [br] = run.counters.interfaces;
    expect(br).toMatchObject({ name: pods.bridge, linkType: 1 });
    expect(run.counters.duplicates).toBe(0);
    expect(run.counters.delivered).toBe(br!.seen);
    expect(run.counters.truncated).toBe(0);
    // In promiscuous mode (libpcap sets it) the bridge passes every frame it forwards up as rx.
    expect(br!.seen).toBeGreaterThan(run.expected.length * 4);
    expect(br!.seen).toBe(br!.rxPackets! + br!.txPackets!);
    expect(br!.rxDropped).toBe(0);
  });

  it('on any: the same records, each packet delivered once though seen on both veths', async () => {
    const run = await traffic({ interfaces: ['any'], filter: `net ${pods.subnet}.0/24` });
    checkRecords(run);
    const [any] = run.counters.interfaces;
    expect(any).toMatchObject({ name: 'any', linkType: 113 });
    // Pod to pod, each packet crosses two veths (the bridge device is not promiscuous here).
    expect(run.counters.duplicates).toBeGreaterThanOrEqual(run.counters.delivered - 10); // less a few ARP broadcasts
    expect(run.counters.delivered + run.counters.duplicates).toBe(any!.seen);
    // Every packet the capture saw is one the kernel counted on the pods' interfaces, and none was missed.
    expect(any!.seen).toBe(run.hostSide);
    expect(any!.rxPackets! + any!.txPackets!).toBeGreaterThanOrEqual(any!.seen);
  });

  it('merges several interfaces into one time-ordered stream, deduplicated', async () => {
    const times: number[] = [];
    const ifaces = new Set<number>();
    const run = await traffic({ interfaces: [pods.veth[0]!, pods.veth[1]!, pods.veth[2]!] }, (p) => { times.push(p.time); ifaces.add(p.iface); });
    checkRecords(run);
    expect([...ifaces].sort()).toEqual([0, 1, 2]);
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    // Every pod-to-pod packet leaves through one veth and enters through another.
    const seen = run.counters.interfaces.reduce((n, i) => n + i.seen, 0);
    expect(run.counters.delivered + run.counters.duplicates).toBe(seen);
    expect(run.counters.duplicates).toBeGreaterThanOrEqual(run.counters.delivered - 10);
  });

  it('names the interface and the filter when a capture cannot open', () => {
    const open = (o: LiveOptions) => {
      try {
        new LiveCapture(o, () => undefined).start();
      } catch (e) {
        return e as CaptureOpenError;
      }
      throw new Error('opened');
    };
    const noDev = open({ interfaces: [pods.bridge, `tw${pods.id}zz`] });
    expect(noDev).toBeInstanceOf(CaptureOpenError);
    expect(noDev.reason).toBe('no-such-device');
    expect(noDev.iface).toBe(`tw${pods.id}zz`);
    expect(noDev.message).toMatch(new RegExp(`^tw${pods.id}zz: no such device`));
    const badFilter = open({ interfaces: [pods.bridge], filter: 'tcp port and host' });
    expect(badFilter.reason).toBe('bad-filter');
    expect(badFilter.message).toContain(pods.bridge);
    expect(badFilter.message).toContain('bad BPF filter "tcp port and host"');
    const wrongLink = open({ interfaces: ['any'], filter: 'wlan host 00:11:22:33:44:55' });
    expect(wrongLink.reason).toBe('bad-filter');
    expect(wrongLink.message).toMatch(/^any: bad BPF filter/);
  });
});
