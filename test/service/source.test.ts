import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../../src/api/server.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { CaptureSource } from '../../src/service/capture.js';
import { SourceError } from '../../src/service/errors.js';
import { FlowFeed } from '../../src/service/feed.js';
import type { FlowQuery } from '../../src/service/query.js';
import { RemoteSource } from '../../src/service/remote.js';
import type { FlowEvent, FlowSource } from '../../src/service/source.js';
import { StoreSource } from '../../src/service/store.js';
import { FlowStore } from '../../src/store/index.js';

/**
 * The one port, three ways: the demo capture decoded in memory, the same flows in a flow store,
 * and that store served by the API and read over HTTP. Each must answer every query the same way:
 * the same flows in the same order, pages that join up, the same errors.
 */
const DEMO = 'pcaps/demo/demo.pcap';
let capture: CaptureSource, local: StoreSource, remote: RemoteSource, store: FlowStore, feed: FlowFeed, server: Server;
let sources: [string, FlowSource][] = [];

beforeAll(async () => {
  capture = await CaptureSource.open(DEMO);
  store = await FlowStore.open({ dir: mkdtempSync(join(tmpdir(), 'tapwire-service-')), maxBytes: 64 << 20, maxAgeSec: 1e9 });
  for (const f of capture.flows) store.add(f);
  await store.sync();
  feed = new FlowFeed();
  local = new StoreSource(store, feed);
  server = createApi({ source: local, registry: new Registry() });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  remote = RemoteSource.open(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  sources = [['capture', capture], ['store', local], ['agent', remote]];
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await store.close();
});

/** Every flow a query matches, page by page through the source's own cursors. */
async function all(s: FlowSource, q: FlowQuery): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const p = await s.query({ ...q, cursor });
    expect(p.flows.length).toBeLessThanOrEqual(q.limit ?? 100);
    ids.push(...p.flows.map((f) => f.id));
    cursor = p.next;
  } while (cursor);
  return ids;
}

describe('every FlowSource answers the same queries the same way', () => {
  it('the demo capture decodes to flows in start order, with a summary that says what it held', () => {
    expect(capture.flows.length).toBeGreaterThan(20);
    expect(capture.summary).toMatchObject({ file: DEMO, format: 'pcap', flows: capture.flows.length });
    expect(capture.summary.coverage).toMatchObject({ connections: expect.any(Number), udpFlows: expect.any(Number) });
    const starts = capture.flows.map((f) => f.start);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
  });

  it('pages: every flow once, in the same order, through each source\'s cursors', async () => {
    const want = capture.flows.map((f) => f.id);
    for (const [name, s] of sources) expect(await all(s, { limit: 7 }), name).toEqual(want);
  });

  it('a filter and a window select the same flows', async () => {
    const mid = capture.flows[10]!.start;
    const queries: FlowQuery[] = [
      { filter: 'http && response.status >= 500', limit: 3 },
      { since: String(mid), limit: 1000 },
      { until: new Date(Math.ceil(capture.flows.at(-1)!.start) * 1000).toISOString(), filter: '!http' },
    ];
    for (const q of queries) {
      const want = await all(capture, q);
      expect(want.length, JSON.stringify(q)).toBeGreaterThan(0);
      for (const [name, s] of sources) expect(await all(s, q), `${name} ${JSON.stringify(q)}`).toEqual(want);
    }
  });

  it('a flow by id, and undefined for an id none holds', async () => {
    const f = capture.flows[3]!;
    for (const [name, s] of sources) {
      expect(JSON.parse(JSON.stringify(await s.flow(f.id))), name).toEqual(JSON.parse(JSON.stringify(f)));
      expect(await s.flow('nope-1'), name).toBeUndefined();
    }
  });

  it('the same refusals: a time that is not one, a cursor none gave, a snapshot none keeps', async () => {
    for (const [name, s] of sources) {
      await expect(s.query({ since: 'yesterday' }), name).rejects.toThrow(/^since: "yesterday" is neither RFC 3339/);
      await expect(s.query({ cursor: 'garbage' }), name).rejects.toSatisfy((e) => e instanceof SourceError && e.kind === 'bad' && /^cursor/.test(e.message));
      await expect(s.query({ snapshot: 'none' }), name).rejects.toSatisfy((e) => e instanceof SourceError && e.kind === 'missing' && e.message === 'no snapshot "none"');
      await expect(s.query({ filter: 'http && response.stauts > 1' }), name).rejects.toThrow(/stauts.*at position/);
    }
  });

  it('the same service map over the same window', async () => {
    const q = { since: String(capture.flows[0]!.start - 1), until: String(capture.flows.at(-1)!.start + 1) };
    const want = await capture.serviceMap(q);
    expect(want.edges.length).toBeGreaterThan(0);
    expect(want.flows).toBe(capture.flows.length);
    for (const [name, s] of sources) expect(await s.serviceMap(q), name).toEqual(want);
  });

  it('snapshots: none in a capture file; a store\'s, read alike locally and over HTTP', async () => {
    expect(await capture.snapshots()).toEqual([]);
    // Through the port (CaptureSource does not declare the optional member at all): it has none.
    const port: FlowSource = capture;
    expect(port.snapshotWriter).toBeUndefined();
    const s = await local.snapshotWriter.create({ name: 'first ten', since: capture.flows[0]!.start, until: capture.flows[9]!.start, filter: 'http' });
    for (const src of [local, remote]) {
      expect((await src.snapshots()).map((x) => x.id)).toContain(s.id);
      expect((await src.snapshot(s.id))?.name).toBe('first ten');
      const ids = await all(src, { snapshot: s.id });
      expect(ids).toEqual(capture.flows.slice(0, 10).filter((f) => f.protocol === 'http').map((f) => f.id));
    }
    expect(await remote.snapshot('none')).toBeUndefined();
    const map = await local.serviceMap({ snapshot: s.id });
    expect(map.flows).toBe(capture.flows.slice(0, 10).filter((f) => f.protocol === 'http').length);
    expect(await remote.serviceMap({ snapshot: s.id })).toEqual(map);
  });

  it('the stream of new flows: a store\'s feed, locally and over HTTP; a capture file has none to send', async () => {
    const file = await capture.subscribe(() => undefined);
    await file.ended;
    const got: Record<string, FlowEvent[]> = { store: [], agent: [] };
    const subs = [await local.subscribe((e) => got.store!.push(e), { filter: 'http' }), await remote.subscribe((e) => got.agent!.push(e), { filter: 'http' })];
    const pg = capture.flows.find((f) => f.protocol === 'postgres')!;
    const http: FlowRecord = capture.flows.find((f) => f.protocol === 'http')!;
    feed.publish(pg);
    feed.publish(http);
    for (let i = 0; i < 50 && got.agent!.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    for (const s of subs) s.close();
    expect(got.store!.map((e) => 'flow' in e && e.flow.id)).toEqual([http.id]);
    expect(got.agent!.map((e) => 'flow' in e && e.flow.id)).toEqual([http.id]);
  });
});

describe('the API serves any FlowSource', () => {
  it('a capture file behind the API: the same pages, no snapshots to keep, a flow stream that ends at once', async () => {
    const api = createApi({ source: capture, registry: new Registry() });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    try {
      const over = RemoteSource.open(`http://127.0.0.1:${(api.address() as AddressInfo).port}`);
      expect(await all(over, { limit: 9 })).toEqual(capture.flows.map((f) => f.id));
      expect(await over.snapshots()).toEqual([]);
      await expect(over.snapshotWriter.create({ name: 'x' })).rejects.toSatisfy((e) => e instanceof SourceError && /keeps no snapshots/.test(e.message));
      const sub = await over.subscribe(() => undefined);
      await sub.ended;
    } finally {
      api.closeAllConnections();
      await new Promise<void>((r) => api.close(() => r()));
    }
  });
});
