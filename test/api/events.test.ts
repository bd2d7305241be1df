import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveApi } from '../helpers/serve.js';
import { AgentClient } from '../../src/client/agent.js';
import type { ClusterEvent } from '../../src/enrich/index.js';
import { CaptureSource } from '../../src/service/capture.js';
import { FlowFeed } from '../../src/service/feed.js';
import { RemoteSource } from '../../src/service/remote.js';
import { SourceError } from '../../src/service/errors.js';
import { StoreSource } from '../../src/service/store.js';
import type { FlowSource } from '../../src/service/source.js';
import { FlowStore } from '../../src/store/index.js';

/**
 * `GET /api/events` over a real store: windows as the flow API takes them, namespace and pod,
 * a snapshot's window, refusals naming the parameter, and the notes of an agent without
 * --kubernetes and of a capture file; then the same through RemoteSource, as the hub and MCP read it.
 */
const T0 = Math.floor(Date.now() / 1000) - 600;
const iso = (t: number) => new Date(t * 1000).toISOString();
const EVENTS: ClusterEvent[] = [
  { id: 'pod/u1/app/restart/1', time: T0 + 4.512, kind: 'oom-killed', namespace: 'payments', pod: 'payment-7f9c', container: 'app', reason: 'OOMKilled', exitCode: 137, source: 'pod-status' },
  { id: 'event/e1/1', time: T0 + 30, kind: 'probe-failed', namespace: 'payments', pod: 'payment-7f9c', reason: 'Unhealthy', probe: 'readiness', message: 'Readiness probe failed: HTTP probe failed with statuscode: 503', source: 'event' },
  { id: 'event/e2/1', time: T0 + 60, kind: 'rollout', namespace: 'shop', object: 'Deployment/checkout', workload: 'checkout', reason: 'ScalingReplicaSet', source: 'event' },
  { id: 'pod/u3/deleted', time: T0 + 300, kind: 'pod-deleted', namespace: 'payments', pod: 'payment-old', reason: 'Deleted', source: 'pod-status' },
];

const servers: { close(): Promise<void> }[] = [];
const dirs: string[] = [];
let store: FlowStore, watching = '', notWatching = '', capture = '', snapshotId = '';

async function serve(source: FlowSource): Promise<string> {
  const api = await serveApi(source);
  servers.push(api);
  return api.url;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-api-events-'));
  dirs.push(dir);
  store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 86_400 });
  for (const e of EVENTS) store.addEvent(e);
  snapshotId = store.snapshots.create({ name: 'run', since: T0 + 20, until: T0 + 100 }).id;
  watching = await serve(new StoreSource(store, new FlowFeed(), { kubernetes: true }));
  notWatching = await serve(new StoreSource(store, new FlowFeed()));
  capture = await serve(await CaptureSource.open('pcaps/demo/demo.pcap'));
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await store.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const get = async (base: string, query: string) => {
  const res = await fetch(`${base}/api/events${query}`);
  return { status: res.status, body: (await res.json()) as { events?: ClusterEvent[]; note?: string; error?: string } };
};
const ids = (b: { events?: ClusterEvent[] }) => b.events?.map((e) => e.id);

describe('GET /api/events', () => {
  it('answers every kept event oldest first, whole', async () => {
    const r = await get(watching, '');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ events: EVENTS });
  });

  it('takes since/until as RFC 3339 or epoch seconds, and narrows by namespace and pod', async () => {
    expect(ids((await get(watching, `?since=${T0 + 10}&until=${iso(T0 + 100)}`)).body)).toEqual(['event/e1/1', 'event/e2/1']);
    expect(ids((await get(watching, '?namespace=payments')).body)).toEqual(['pod/u1/app/restart/1', 'event/e1/1', 'pod/u3/deleted']);
    expect(ids((await get(watching, '?namespace=payments&pod=payment-7f9c')).body)).toEqual(['pod/u1/app/restart/1', 'event/e1/1']);
    expect((await get(watching, '?pod=nobody')).body).toEqual({ events: [] });
  });

  it('a snapshot answers its window, narrowed further by since/until', async () => {
    expect(ids((await get(watching, `?snapshot=${snapshotId}`)).body)).toEqual(['event/e1/1', 'event/e2/1']);
    expect(ids((await get(watching, `?snapshot=${snapshotId}&since=${T0 + 45}`)).body)).toEqual(['event/e2/1']);
  });

  it('refuses a bad time by name, until before since, and an unknown snapshot with 404', async () => {
    const since = await get(watching, '?since=yesterday');
    expect(since.status).toBe(400);
    expect(since.body.error).toMatch(/^since: /);
    expect(since.body.error).toContain('yesterday');
    const until = await get(watching, `?until=${iso(T0)}x`);
    expect(until.status).toBe(400);
    expect(until.body.error).toMatch(/^until: /);
    expect(await get(watching, `?since=${T0 + 10}&until=${T0}`)).toEqual({ status: 400, body: { error: 'until is before since' } });
    expect(await get(watching, '?snapshot=nope')).toEqual({ status: 404, body: { error: 'no snapshot "nope"' } });
    // Even where no events are kept, an unknown snapshot is unknown.
    expect((await get(notWatching, '?snapshot=nope')).status).toBe(404);
  });

  it('an agent without --kubernetes, and a capture file, answer with a note instead of a silent empty list', async () => {
    expect(await get(notWatching, '')).toEqual({ status: 200, body: { events: [], note: 'this agent does not watch Kubernetes: start it with --kubernetes' } });
    const c = await get(capture, '?since=0');
    expect(c.status).toBe(200);
    expect(c.body.events).toEqual([]);
    expect(c.body.note).toMatch(/^capture .*demo\.pcap keeps no cluster events: they are kept by an agent started with --kubernetes$/);
  });
});

describe('RemoteSource.events (the hub and MCP read agents through it)', () => {
  it('answers as the store does, with the agent\'s note, and its refusals as SourceErrors', async () => {
    const remote = new RemoteSource(new AgentClient(watching));
    expect(await remote.events({ since: T0 + 10, until: T0 + 100, namespace: 'shop' })).toEqual({ events: [EVENTS[2]] });
    expect(await remote.events({ snapshot: snapshotId })).toEqual({ events: [EVENTS[1], EVENTS[2]] });
    await expect(remote.events({ snapshot: 'nope' })).rejects.toEqual(new SourceError('missing', 'no snapshot "nope"'));
    await expect(remote.events({ since: T0 + 10, until: T0 })).rejects.toMatchObject({ kind: 'bad', message: 'until is before since' });
    expect(await new RemoteSource(new AgentClient(notWatching)).events({})).toEqual({ events: [], note: 'this agent does not watch Kubernetes: start it with --kubernetes' });
  });
});
