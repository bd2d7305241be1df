import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../src/api/server.js';
import { readCapture } from '../../src/capture/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import type { ClusterEvent } from '../../src/enrich/index.js';
import { CaptureSource } from '../../src/service/capture.js';
import { FlowFeed } from '../../src/service/feed.js';
import { HubSource, type HubSnapshot } from '../../src/service/hub.js';
import { compareKeys, FlowStore } from '../../src/store/index.js';
import { RemoteSource } from '../../src/service/remote.js';
import { StoreSource } from '../../src/service/store.js';
import { exchangeKey } from '../../src/service/hub-merge.js';
import type { FlowSource } from '../../src/service/source.js';

/**
 * The hub's merge over two real agents' APIs (flow stores served by createApi, read over HTTP):
 * agent A holds the demo capture's flows; agent B holds its own flows (another capture) and a
 * second tap's copies of half of A's — other ids (a connection id hashes the tap's own frame
 * numbers), starts a fraction of a millisecond later, and some copies more complete than A's.
 * The hub must return every exchange once, the better copy of each, in order, under cursors that
 * join up whatever the page size.
 */
const DEMO = 'pcaps/demo/demo.pcap';
const OTHER = 'pcaps/http1/keepalive.pcap';

interface FakeAgent { store: FlowStore; server: Server; url: string; source: StoreSource; feed?: FlowFeed }
const agents: FakeAgent[] = [];
let a: FlowRecord[] = [], bOwn: FlowRecord[] = [], copies: FlowRecord[] = [];
let hub: HubSource;

async function agent(flows: FlowRecord[], packets?: string, events: ClusterEvent[] = []): Promise<FakeAgent> {
  const store = await FlowStore.open({ dir: mkdtempSync(join(tmpdir(), 'tapwire-hub-')), maxBytes: 64 << 20, maxAgeSec: 1e9 });
  for (const f of flows) store.add(f);
  if (packets) await readCapture(packets, (p) => store.addPacket(p.time, p.linkType, Buffer.from(p.data), p.wireLen));
  for (const e of events) store.addEvent(e);
  await store.sync();
  const feed = new FlowFeed();
  const source = new StoreSource(store, feed, { kubernetes: events.length > 0 });
  const server = createApi({ source, registry: new Registry() });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const x = { store, server, url, source, feed };
  agents.push(x);
  return x;
}

const remote = (x: FakeAgent) => ({ name: x.url, source: RemoteSource.open(x.url) as FlowSource });

async function all(s: FlowSource, limit: number, q: { snapshot?: string } = {}): Promise<FlowRecord[]> {
  const out: FlowRecord[] = [];
  let cursor: string | undefined;
  do {
    const p = await s.query({ ...q, since: '0', limit, cursor });
    out.push(...p.flows);
    cursor = p.next;
  } while (cursor);
  return out;
}

beforeAll(async () => {
  a = (await CaptureSource.open(DEMO)).flows.slice();
  bOwn = (await CaptureSource.open(OTHER)).flows.slice();
  // B's tap saw every other exchange of A's too; where A's copy is complete, B's says it missed the response.
  copies = a.filter((_, i) => i % 2 === 0).map((f, i) => {
    const c = structuredClone(f) as FlowRecord & { response?: unknown };
    c.id = `b${f.id}`;
    c.connectionId = `b${f.connectionId}`;
    c.start = f.start + 0.0004;
    if (i % 3 === 0) {
      delete c.response;
      c.incomplete = true;
      c.incompleteReason = 'no-response';
    }
    return c;
  });
  const [ax, bx] = [await agent(a, DEMO), await agent([...bOwn, ...copies], OTHER)];
  hub = new HubSource([remote(ax), remote(bx)], { timeoutMs: 2000 });
});

afterAll(async () => {
  for (const x of agents) {
    x.server.close();
    x.server.closeAllConnections();
    await x.store.close();
  }
});

describe('HubSource over two agents', () => {
  it('returns every exchange once: A\'s flows and B\'s own, never B\'s copies of A\'s', async () => {
    const got = await all(hub, 1000);
    const want = [...a, ...bOwn].sort(compareKeys);
    expect(got.map((f) => f.id)).toEqual(want.map((f) => f.id));
    expect(new Set(got.map(exchangeKey)).size).toBeLessThanOrEqual(got.length);
    // What each agent answers alone, for comparison: the hub holds fewer than their sum by the copies.
    expect((await all(RemoteSource.open(agents[1]!.url), 1000)).length).toBe(bOwn.length + copies.length);
  });

  it('keeps the copy with more evidence: B\'s complete copy where A\'s lost the response', async () => {
    // A variant hub whose agent A holds incomplete copies and B complete ones.
    const poorA = a.map((f) => {
      const c = structuredClone(f) as FlowRecord & { response?: unknown };
      delete c.response;
      c.incomplete = true;
      return c;
    });
    const ax = await agent(poorA), bx = await agent(copies);
    const h = new HubSource([remote(ax), remote(bx)]);
    const got = await all(h, 1000);
    expect(got).toHaveLength(a.length);
    const byCopy = new Set(copies.filter((c) => !c.incomplete).map((c) => c.id));
    // Each exchange B holds complete comes from B; the rest from A.
    expect(got.filter((f) => byCopy.has(f.id))).toHaveLength(byCopy.size);
    expect(got.filter((f) => f.id.startsWith('b') && !byCopy.has(f.id))).toHaveLength(0);
  });

  for (const limit of [1, 2, 3, 7, 50]) {
    it(`pages of ${limit} join up: every flow exactly once, in order, duplicates straddling the page ends included`, async () => {
      const whole = await all(hub, 1000);
      const paged = await all(hub, limit);
      expect(paged.map((f) => f.id)).toEqual(whole.map((f) => f.id));
      for (let i = 1; i < paged.length; i++) expect(compareKeys(paged[i - 1]!, paged[i]!)).toBeLessThan(0);
    });
  }

  it('the same filter applies on every agent', async () => {
    const p = await hub.query({ since: '0', filter: 'http && request.method == "POST"', limit: 1000 });
    expect(p.flows.length).toBeGreaterThan(0);
    expect(p.flows.every((f) => f.protocol === 'http' && (f.request as { method: string }).method === 'POST')).toBe(true);
  });

  it('an agent that does not answer: the page comes back with the other\'s flows, flagged partial naming it', async () => {
    const h = new HubSource([remote(agents[0]!), { name: 'http://127.0.0.1:9', source: RemoteSource.open('http://127.0.0.1:9') }], { timeoutMs: 1000 });
    const p = await h.query({ since: '0', limit: 1000 });
    expect(p.flows.map((f) => f.id)).toEqual([...a].sort(compareKeys).map((f) => f.id));
    expect(p.partial?.missing).toEqual([{ agent: 'http://127.0.0.1:9', error: expect.stringMatching(/cannot reach the agent at http:\/\/127\.0\.0\.1:9/) }]);
  });

  it('an agent that hangs: the page comes back after the timeout, naming it', async () => {
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const silent = createServer((c) => { sockets.push(c); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const h = new HubSource([remote(agents[0]!), { name: url, source: RemoteSource.open(url) }], { timeoutMs: 300 });
      const t0 = Date.now();
      const p = await h.query({ since: '0', limit: 1000 });
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(p.flows).toHaveLength(a.length);
      expect(p.partial?.missing).toEqual([{ agent: url, error: 'no answer within 0.3 s' }]);
    } finally {
      for (const c of sockets) c.destroy();
      silent.close();
    }
  });

  it('a hub over a hub passes on the agents the inner one went without', async () => {
    const inner = new HubSource([remote(agents[0]!), { name: 'http://127.0.0.1:9', source: RemoteSource.open('http://127.0.0.1:9') }], { timeoutMs: 1000 });
    const outer = new HubSource([{ name: 'inner', source: inner }, remote(agents[1]!)]);
    const p = await outer.query({ since: '0', limit: 1000 });
    expect(p.partial?.missing.map((m) => m.agent)).toEqual(['http://127.0.0.1:9']);
    expect(p.flows.length).toBe(a.length + bOwn.length);
  });

  it('a bad query is refused as the agents would refuse it, not reported as missing agents', async () => {
    await expect(hub.query({ filter: 'http &&' })).rejects.toThrow(/filter/);
    await expect(hub.query({ cursor: 'nope' })).rejects.toThrow(/cursor/);
  });

  it('a hub snapshot is opened and stopped on both agents under one id; its pcap is theirs merged by time', async () => {
    const { id } = await hub.snapshotWriter.create({ name: 'run 1', since: 0 });
    expect(id).toMatch(/^hub-[0-9a-f]{12}$/);
    const listed = await hub.snapshots();
    expect(listed.find((s) => s.id === id)).toMatchObject({ id, name: 'run 1', open: true });
    const stopped = await hub.snapshotWriter.stop(id);
    expect(stopped).toMatchObject({ id, open: false });
    expect((stopped as HubSnapshot).partial).toBeUndefined();
    expect((await all(hub, 100, { snapshot: id })).map((f) => f.id)).toEqual((await all(hub, 1000)).map((f) => f.id));
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const r = await hub.snapshotWriter.pcap(id, out);
    expect(r.lost).toBeNull();
    const file = join(mkdtempSync(join(tmpdir(), 'tapwire-hub-pcap-')), 'merged.pcap');
    (await import('node:fs')).writeFileSync(file, Buffer.concat(chunks));
    const times: number[] = [];
    await readCapture(file, (p) => { times.push(p.time); });
    let want = 0;
    for (const f of [DEMO, OTHER]) await readCapture(f, () => { want++; });
    expect(times).toHaveLength(want);
    expect(times).toEqual([...times].sort((x, y) => x - y));
  });

  it('agents of different link types: the merged capture is pcapng, one interface per agent, still in time order', async () => {
    // An agent on `any` stores Linux cooked (SLL2, 276) frames: re-tagged here, the bytes do not matter to the merge.
    const store = await FlowStore.open({ dir: mkdtempSync(join(tmpdir(), 'tapwire-hub-')), maxBytes: 64 << 20, maxAgeSec: 1e9 });
    await readCapture(OTHER, (p) => store.addPacket(p.time, 276, Buffer.from(p.data), p.wireLen));
    await store.sync();
    const server = createApi({ source: new StoreSource(store, new FlowFeed()), registry: new Registry() });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    agents.push({ store, server, url, source: undefined as unknown as StoreSource });
    const h = new HubSource([remote(agents[0]!), { name: url, source: RemoteSource.open(url) }]);
    const { id } = await h.snapshotWriter.create({ since: 0 });
    await h.snapshotWriter.stop(id);
    const chunks: Buffer[] = [];
    const out = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
    expect((await h.snapshotWriter.pcap(id, out)).lost).toBeNull();
    const bytes = Buffer.concat(chunks);
    expect(bytes.readUInt32LE(0)).toBe(0x0a0d0d0a);
    const file = join(mkdtempSync(join(tmpdir(), 'tapwire-hub-pcap-')), 'merged.pcapng');
    (await import('node:fs')).writeFileSync(file, bytes);
    const got: { time: number; linkType: number; iface: number }[] = [];
    await readCapture(file, (p) => { got.push({ time: p.time, linkType: p.linkType, iface: p.iface }); });
    const count = async (f: string) => { let n = 0; await readCapture(f, () => { n++; }); return n; };
    expect(got.filter((p) => p.linkType === 1 && p.iface === 0)).toHaveLength(await count(DEMO));
    expect(got.filter((p) => p.linkType === 276 && p.iface === 1)).toHaveLength(await count(OTHER));
    expect(got.map((p) => p.time)).toEqual(got.map((p) => p.time).sort((x, y) => x - y));
    // The interfaces are named by the agents' URLs.
    expect(bytes.includes(Buffer.from(agents[0]!.url))).toBe(true);
    expect(bytes.includes(Buffer.from(url))).toBe(true);
  });

  it('an agent whose pcap stalls midway is cut off after the timeout: the others\' packets and its own before the stall, and the loss says so', async () => {
    const { createServer } = await import('node:http');
    let name = '';
    const header = Buffer.alloc(24);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(65535, 16);
    header.writeUInt32LE(1, 20);
    const record = Buffer.alloc(16 + 60);
    record.writeUInt32LE(1, 0);
    record.writeUInt32LE(60, 8);
    record.writeUInt32LE(60, 12);
    // A stand-in agent: it opens and lists one snapshot, then sends a pcap header and one packet and stops sending.
    const stalling = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/api/snapshots') {
          name = (JSON.parse(body) as { name: string }).name;
          res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 's1' }));
        } else if (req.url === '/api/snapshots') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ snapshots: [{ id: 's1', name, since: 0, createdAt: 0, open: true }] }));
        } else if (req.url === '/api/snapshots/s1/pcap') {
          res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap' });
          res.write(Buffer.concat([header, record]));
        } else res.writeHead(404).end('{"error":"no"}');
      });
    });
    await new Promise<void>((r) => stalling.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}`;
    try {
      const h = new HubSource([remote(agents[0]!), { name: url, source: RemoteSource.open(url) }], { timeoutMs: 500 });
      const { id } = await h.snapshotWriter.create({ since: 0 });
      const chunks: Buffer[] = [];
      const out = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
      const r = await h.snapshotWriter.pcap(id, out);
      expect(r.lost).toBe(`${url}: its pcap broke off (no data within 0.5 s); the packets before the break are in`);
      const file = join(mkdtempSync(join(tmpdir(), 'tapwire-hub-pcap-')), 'stalled.pcap');
      (await import('node:fs')).writeFileSync(file, Buffer.concat(chunks));
      let n = 0, demo = 0;
      await readCapture(file, () => { n++; });
      await readCapture(DEMO, () => { demo++; });
      expect(n).toBe(demo + 1);
    } finally {
      stalling.closeAllConnections();
      stalling.close();
    }
  });

  it('a snapshot one agent lacks is flagged on the snapshot and on its pages', async () => {
    const { id } = await hub.snapshotWriter.create({ since: 0 });
    const h = new HubSource([remote(agents[0]!), remote(agents[1]!), remote(agents[2]!)]);
    const s = await h.snapshot(id);
    expect(s?.partial?.missing).toEqual([{ agent: agents[2]!.url, error: `the agent has no snapshot "${id}"` }]);
    expect((await h.query({ snapshot: id, limit: 1 })).partial?.missing.map((m) => m.agent)).toEqual([agents[2]!.url]);
    await expect(h.query({ snapshot: 'hub-000000000000' })).rejects.toThrow(/no snapshot "hub-000000000000"/);
  });

  it('the service map counts an exchange two agents saw once', async () => {
    const m = await hub.serviceMap({ since: '0', until: String(Date.now() / 1000) });
    expect(m.flows).toBe(a.length + bOwn.length);
    expect(m.edges.reduce((n, e) => n + e.count, 0)).toBe(a.length + bOwn.length);
  });

  it('cluster events: both agents\' merged by id, oldest first; an agent without them says so in the note', async () => {
    const t0 = Math.floor(Date.now() / 1000) - 600;
    const ev = (id: string, time: number, pod: string): ClusterEvent => ({ id, time: t0 + time, kind: 'restart', namespace: 'shop', pod, reason: 'OOMKilled', exitCode: 137, source: 'pod-status' });
    // The same restart seen from both nodes (a hub-wide watch and a node's agent) has the same id.
    const x = await agent([], undefined, [ev('e1', 100, 'web-1'), ev('e2', 300, 'web-2')]);
    const y = await agent([], undefined, [ev('e2', 300, 'web-2'), ev('e3', 200, 'db-0')]);
    const h = new HubSource([remote(x), remote(y), remote(agents[0]!)]);
    const page = await h.events({ since: t0, until: t0 + 1000 });
    expect(page.events.map((e) => e.id)).toEqual(['e1', 'e3', 'e2']);
    expect(page.note).toBe(`${agents[0]!.url}: this agent does not watch Kubernetes: start it with --kubernetes`);
    expect(page.partial).toBeUndefined();
    await expect(h.events({ since: 10, until: 5 })).rejects.toThrow(/until is before since/);
  });

  it('the live stream: both agents\' flows as they come, a copy the other agent already sent dropped', async () => {
    const x = await agent([]), y = await agent([]);
    const h = new HubSource([remote(x), remote(y)]);
    const got: FlowRecord[] = [];
    const sub = await h.subscribe((e) => { if ('flow' in e) got.push(e.flow); }, { filter: 'http' });
    // The SSE streams are open once the agents count a subscriber.
    while (x.feed!.size === 0 || y.feed!.size === 0) await new Promise((r) => setTimeout(r, 10));
    const [one, two] = a.filter((f) => f.protocol === 'http');
    const copy = { ...one!, id: `b${one!.id}`, start: one!.start + 0.0004 };
    x.feed!.publish(one!);
    y.feed!.publish(copy);
    y.feed!.publish(two!);
    const t0 = Date.now();
    while (got.length < 2 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    sub.close();
    await sub.ended;
    // Two streams race: whichever copy of `one` came first is the one passed on.
    expect(got).toHaveLength(2);
    expect(got.filter((f) => f.id === one!.id || f.id === copy.id)).toHaveLength(1);
    expect(got.some((f) => f.id === two!.id)).toBe(true);
  });

  it('the live stream follows the agent set: an agent that joins streams at once, one that leaves is closed', async () => {
    const x = await agent([]), y = await agent([]);
    const h = new HubSource([remote(x)]);
    const got: string[] = [];
    const sub = await h.subscribe((e) => { if ('flow' in e) got.push(e.flow.id); });
    const wait = async (ok: () => boolean) => {
      const t0 = Date.now();
      while (!ok() && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
      expect(ok()).toBe(true);
    };
    await wait(() => x.feed!.size === 1);
    h.setAgents([remote(x), remote(y)]);
    await wait(() => y.feed!.size === 1);
    y.feed!.publish(a[0]!);
    await wait(() => got.length === 1);
    h.setAgents([remote(x)]);
    await wait(() => y.feed!.size === 0);
    expect(x.feed!.size).toBe(1);
    sub.close();
    await sub.ended;
    await wait(() => x.feed!.size === 0);
    expect(got).toEqual([a[0]!.id]);
  });

  it('describes itself by its agents', () => {
    expect(hub.describe()).toBe(`hub over 2 agents (${agents[0]!.url}, ${agents[1]!.url})`);
  });
});
