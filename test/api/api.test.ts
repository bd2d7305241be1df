import { mkdtempSync } from 'node:fs';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlowFeed } from '../../src/service/feed.js';
import { StoreSource } from '../../src/service/store.js';
import { createApi } from '../../src/api/server.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { FlowStore, type Snapshot } from '../../src/store/index.js';
import type { ServiceMapAnswer } from '../../src/service/source.js';

/**
 * The flow API over a real store holding the real records of the demo capture: paging, filters,
 * time parameters, snapshots with pcap export, the SSE feed, and every refusal as a JSON 4xx.
 */
let server: Server, store: FlowStore, feed: FlowFeed, base = '', flows: FlowRecord[] = [];
const TOKEN = 'test-token';
/** The API's JSON answers, as far as these tests read them. */
interface FlowsBody { flows: FlowRecord[]; next: string | null }
interface ErrorBody { error: string }
interface SnapshotsBody { snapshots: Snapshot[] }
interface Created { id: string }
/** `T` is the answer the test expects at `path`: JSON as parsed, or the text of any other type. */
const get = async <T = unknown>(path: string, auth = true) => {
  const res = await fetch(`${base}${path}`, { headers: auth ? { authorization: `Bearer ${TOKEN}` } : {} });
  const body: unknown = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
  return { status: res.status, headers: res.headers, body: body as T };
};
const post = async <T = unknown>(path: string, body?: unknown) => {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
};

beforeAll(async () => {
  store = await FlowStore.open({ dir: mkdtempSync(join(tmpdir(), 'tapwire-api-')), maxBytes: 64 * 1024 * 1024, maxAgeSec: 1e9 });
  const { pipeline } = await analyzeFile('pcaps/demo/demo.pcap', {
    onRecord: (r) => { flows.push(r); store.add(r); },
  });
  void pipeline;
  await store.sync();
  flows = flows.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
  feed = new FlowFeed();
  server = createApi({ source: new StoreSource(store, feed), registry: new Registry(), token: TOKEN });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await store.close();
});

describe('GET /api/flows', () => {
  it('pages through every flow in start order with the cursor, limit clamped to 1000', async () => {
    const seen: FlowRecord[] = [];
    let cursor: string | null = null;
    do {
      const page: string = `/api/flows?limit=7${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await get<FlowsBody>(page);
      expect(r.status).toBe(200);
      expect(r.body.flows.length).toBeLessThanOrEqual(7);
      seen.push(...r.body.flows);
      cursor = r.body.next;
    } while (cursor);
    expect(seen.map((f) => f.id)).toEqual(flows.map((f) => f.id));
    const big = await get<FlowsBody>('/api/flows?limit=100000');
    expect(big.body.flows).toHaveLength(flows.length);
    expect(big.body.next).toBeNull();
  });

  it('filters with CEL, and takes since/until as RFC 3339 or epoch seconds', async () => {
    const r = await get<FlowsBody>(`/api/flows?filter=${encodeURIComponent('http && response.status >= 500')}`);
    expect(r.body.flows.map((f: FlowRecord) => (f.response as { status: number }).status)).toEqual([503, 503, 503]);
    const mid = flows[10]!.start;
    const epoch = await get<FlowsBody>(`/api/flows?since=${mid}&limit=1000`);
    expect(epoch.body.flows.every((f: FlowRecord) => f.start >= mid)).toBe(true);
    const iso = new Date(Math.floor(mid) * 1000).toISOString().replace('.000Z', 'Z');
    const rfc = await get<FlowsBody>(`/api/flows?until=${iso}`);
    expect(rfc.body.flows.every((f: FlowRecord) => f.start <= Math.floor(mid))).toBe(true);
  });

  it('GET /api/flows/:id returns the full record; an unknown id is a JSON 404', async () => {
    const one = await get(`/api/flows/${flows[3]!.id}`);
    expect(one.body).toEqual(JSON.parse(JSON.stringify(flows[3])));
    const none = await get('/api/flows/nope-1');
    expect([none.status, none.body]).toEqual([404, { error: 'no flow "nope-1"' }]);
  });

  it('refuses bad requests with a 4xx JSON error naming the parameter', async () => {
    const cases: [string, number, RegExp][] = [
      ['/api/flows?filter=' + encodeURIComponent('http && response.stauts > 1'), 400, /stauts.*at position/],
      ['/api/flows?since=yesterday', 400, /^since: "yesterday" is neither RFC 3339/],
      ['/api/flows?limit=ten', 400, /^limit: "ten" is not a whole number/],
      ['/api/flows?cursor=garbage', 400, /cursor/],
      ['/api/nothing', 404, /no such endpoint/],
      ['/api/flows?filter=' + 'x'.repeat(9000), 414, /longer than/],
    ];
    for (const [path, status, msg] of cases) {
      const r = await get<ErrorBody>(path);
      expect(r.status, path).toBe(status);
      expect(r.body.error, path).toMatch(msg);
    }
    const wrong = await fetch(`${base}/api/flows`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    expect([wrong.status, wrong.headers.get('allow')]).toEqual([405, 'GET']);
  });

  it('a missing or wrong token is a 401', async () => {
    const r = await get<ErrorBody>('/api/flows', false);
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/bearer token/);
    expect((await fetch(`${base}/api/flows`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
  });
});

describe('snapshots', () => {
  it('brackets a window: open, stop, list, its flows, and its packets as pcap with the loss stated', async () => {
    const s = await post<Created>('/api/snapshots', { name: 'run-1', since: flows[0]!.start, until: flows[5]!.start, filter: 'http' });
    expect(s.status).toBe(201);
    const listed = await get<SnapshotsBody>('/api/snapshots');
    expect(listed.body.snapshots.map((x: { id: string }) => x.id)).toContain(s.body.id);
    const fs = await get<FlowsBody>(`/api/snapshots/${s.body.id}/flows`);
    expect(fs.body.flows.length).toBeGreaterThan(0);
    expect(fs.body.flows.every((f: FlowRecord) => f.protocol === 'http' && f.start <= flows[5]!.start)).toBe(true);
    const open = await post<Created>('/api/snapshots', { name: 'open' });
    expect((await get<Snapshot>(`/api/snapshots/${open.body.id}`)).body.open).toBe(true);
    const stopped = await post<Snapshot>(`/api/snapshots/${open.body.id}/stop`);
    expect(stopped.body.open).toBe(false);
    const pcap = await fetch(`${base}/api/snapshots/${s.body.id}/pcap`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(pcap.status).toBe(200);
    expect(pcap.headers.get('content-type')).toBe('application/vnd.tcpdump.pcap');
    await pcap.arrayBuffer();
  });

  it('refuses a bad snapshot request, an unknown snapshot and unknown fields', async () => {
    expect((await post<ErrorBody>('/api/snapshots', '{nope')).body.error).toMatch(/^body: not valid JSON/);
    expect((await post<ErrorBody>('/api/snapshots', { nmae: 'x' })).body.error).toBe('body: unknown field "nmae" (known: name, since, until, filter)');
    expect((await post<ErrorBody>('/api/snapshots', { filter: 'http &&' })).status).toBe(400);
    expect((await post<ErrorBody>('/api/snapshots', { since: 10, until: 5 })).body.error).toBe('until is before since');
    expect((await post<ErrorBody>('/api/snapshots', 'null')).body.error).toBe('body: expected a JSON object');
    expect((await post<ErrorBody>('/api/snapshots', [1])).body.error).toBe('body: expected a JSON object');
    expect((await post<ErrorBody>('/api/snapshots', { name: 5 })).body.error).toBe('name: expected a string, got number');
    expect((await post<ErrorBody>('/api/snapshots', { since: true })).body.error).toBe('since: expected a string, got boolean');
    const none = await get<ErrorBody>('/api/snapshots/none/flows');
    expect([none.status, none.body.error]).toEqual([404, 'no snapshot "none"']);
  });
});

describe('service map and the live feed', () => {
  it('GET /api/stats: edges with counts, errors and latency percentiles', async () => {
    const r = await get<ServiceMapAnswer>(`/api/stats?since=${flows[0]!.start - 1}&until=${flows.at(-1)!.start + 1}`);
    const edge = (dst: string) => r.body.edges.find((e: { dst: string }) => e.dst === dst);
    expect(edge('127.0.0.3:8081')).toMatchObject({ src: '127.0.0.2', protocol: 'http', count: 4, errors: 3 });
    expect(edge('127.0.0.4:5432')).toMatchObject({ src: '127.0.0.2', protocol: 'postgres', count: 12, errors: 0 });
    const front = edge('127.0.0.2:8080')!;
    expect(front.latencyMs.p99).toBeGreaterThanOrEqual(front.latencyMs.p50);
  });

  it('GET /api/flows/stream delivers matching records as Server-Sent Events', async () => {
    const ac = new AbortController();
    const res = await fetch(`${base}/api/flows/stream?filter=${encodeURIComponent('postgres')}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ac.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    await reader.read(); // the opening comment: subscribed
    for (const f of flows.slice(0, 16)) feed.publish(f);
    let text = '';
    const want = flows.slice(0, 16).filter((f) => f.protocol === 'postgres').length;
    while ((text.match(/^event: flow$/gm) ?? []).length < want) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    const ids = [...text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
    expect(ids).toEqual(flows.slice(0, 16).filter((f) => f.protocol === 'postgres').map((f) => f.id));
  });
});

describe('a loopback-only API refuses what a web page could send', () => {
  it('a foreign Host (DNS rebinding) or Origin (cross-site POST) is refused with 403; local clients pass', async () => {
    const s = createApi({ source: new StoreSource(store, feed), registry: new Registry(), loopbackOnly: true });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    // node's fetch sets Host itself: a raw request sends the headers a browser would.
    const raw = (method: string, path: string, headers: Record<string, string>) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        let b = '';
        res.on('data', (d) => (b += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      });
      req.on('error', reject);
      req.end(method === 'POST' ? '{}' : undefined);
    });
    try {
      const snapshots = store.snapshots.list().length;
      expect((await raw('GET', '/api/flows', { host: `attacker.example:${port}` })).status).toBe(403);
      const csrf = await raw('POST', '/api/snapshots', { host: `127.0.0.1:${port}`, origin: 'http://attacker.example', 'content-type': 'text/plain' });
      expect(csrf.status).toBe(403);
      expect(JSON.parse(csrf.body).error).toMatch(/Host or Origin is not loopback/);
      expect(store.snapshots.list()).toHaveLength(snapshots);
      expect((await raw('GET', '/healthz', { host: `localhost:${port}` })).status).toBe(200);
      expect((await raw('POST', '/api/snapshots', { host: `127.0.0.1:${port}`, origin: 'http://localhost:3000' })).status).toBe(201);
      expect((await fetch(`http://127.0.0.1:${port}/api/flows?limit=1`)).status).toBe(200);
    } finally {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
