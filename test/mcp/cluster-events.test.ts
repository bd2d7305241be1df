import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveApi } from '../helpers/serve.js';
import type { ClusterEvent } from '../../src/enrich/index.js';
import { FlowFeed } from '../../src/service/feed.js';
import { StoreSource } from '../../src/service/store.js';
import { FlowStore } from '../../src/store/index.js';
import { connect, text } from './helpers.js';

/**
 * cluster_events through the SDK's in-memory client, over a real agent API and store: the lines of
 * its text, its structured copy (checked against the output schema by the SDK client), the notes
 * of an empty answer, refusals naming the argument, and the bound.
 */
const DAY = '2026-12-07';
const T = (hms: string) => Date.parse(`${DAY}T${hms}Z`) / 1000;
const EVENTS: ClusterEvent[] = [
  { id: 'pod/u1/app/restart/1', time: T('12:03:04.512'), kind: 'restart', namespace: 'payments', pod: 'payment-7f9c', reason: 'OOMKilled', exitCode: 137, source: 'pod-status' },
  { id: 'event/e1/3', time: T('12:03:30'), kind: 'probe-failed', namespace: 'payments', pod: 'payment-7f9c', container: 'app', reason: 'Unhealthy', probe: 'liveness', count: 3, message: 'Liveness probe failed: Get "http://10.1.0.7:8080/healthz": dial tcp 10.1.0.7:8080: connect: connection refused', source: 'event' },
  { id: 'event/e2/1', time: T('12:04:00'), kind: 'rollout', namespace: 'shop', object: 'Deployment/checkout', workload: 'checkout', reason: 'ScalingReplicaSet', message: 'Scaled up replica set checkout-5d8f to 3', source: 'event' },
];

const servers: { close(): Promise<void> }[] = [];
const dirs: string[] = [];
let store: FlowStore, watching = '', notWatching = '', snapshot = '';

async function serve(source: StoreSource): Promise<string> {
  const api = await serveApi(source);
  servers.push(api);
  return api.url;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-mcp-events-'));
  dirs.push(dir);
  // maxAgeSec large: the events are of a fixed day, and the store keeps nothing older than its age limit.
  store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 1e9 });
  for (const e of EVENTS) store.addEvent(e);
  // Shop's rollout is outside the snapshot; payments' two events are inside.
  snapshot = store.snapshots.create({ name: 'run', since: T('12:03:00'), until: T('12:03:45') }).id;
  watching = await serve(new StoreSource(store, new FlowFeed(), { kubernetes: true }));
  notWatching = await serve(new StoreSource(store, new FlowFeed()));
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await store.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Structured = { events: ClusterEvent[]; note?: string; truncated?: { note: string; rowsOmitted?: number } };

async function call(api: string | undefined, args: Record<string, unknown>, o: { maxTokens?: number } = {}) {
  const c = await connect({ ...(api ? { api } : {}), ...o });
  try {
    const r = (await c.client.callTool({ name: 'cluster_events', arguments: args })) as CallToolResult;
    expect(JSON.stringify(r).length / 4).toBeLessThanOrEqual(c.ctx.maxTokens);
    return { r, text: text(r), structured: r.structuredContent as Structured | undefined };
  } finally {
    await c.close();
  }
}

describe('cluster_events', () => {
  it('lists events one per line, oldest first, and all of them in its structured copy', async () => {
    const { r, text, structured } = await call(watching, {});
    expect(r.isError).toBeFalsy();
    expect(structured).toEqual({ events: EVENTS });
    const lines = text.split('\n');
    expect(lines[0]).toBe(`3 cluster events in this window (${DAY}T12:03:04.512Z to ${DAY}T12:04:00.000Z; times UTC), oldest first:`);
    expect(lines[1]).toBe('12:03:04.512 payments/payment-7f9c restart (OOMKilled, exit 137)');
    expect(lines[2]).toBe('12:03:30.000 payments/payment-7f9c probe-failed (Unhealthy, liveness probe, container app, seen 3 times): '
      + 'Liveness probe failed: Get "http://10.1.0.7:8080/healthz": dial tcp 10.1.0.7:8080: connect: connection refused');
    expect(lines[3]).toBe('12:04:00.000 shop/Deployment/checkout rollout (ScalingReplicaSet): Scaled up replica set checkout-5d8f to 3');
    expect(lines).toHaveLength(4);
  });

  it('narrows by window, namespace, pod and snapshot', async () => {
    expect((await call(watching, { since: `${DAY}T12:03:10Z`, until: String(T('12:05:00')) })).structured!.events.map((e) => e.id)).toEqual(['event/e1/3', 'event/e2/1']);
    expect((await call(watching, { namespace: 'shop' })).structured!.events.map((e) => e.id)).toEqual(['event/e2/1']);
    const snap = await call(watching, { snapshot, pod: 'payment-7f9c' });
    expect(snap.structured!.events.map((e) => e.id)).toEqual(['pod/u1/app/restart/1', 'event/e1/3']);
    expect(snap.text).toMatch(new RegExp(`^2 cluster events in snapshot ${snapshot}'s window for pod payment-7f9c `));
  });

  it('an empty answer says why: nothing for that pod in the window, or the agent does not watch Kubernetes, or there is no agent', async () => {
    const none = await call(watching, { pod: 'payment-7f9c', since: `${DAY}T12:03:31Z` });
    expect(none.structured).toEqual({ events: [] });
    expect(none.text).toBe(`no events in this window from ${DAY}T12:03:31Z for pod payment-7f9c`);
    const off = await call(notWatching, { pod: 'payment-7f9c' });
    expect(off.structured).toEqual({ events: [], note: 'this agent does not watch Kubernetes: start it with --kubernetes' });
    expect(off.text).toBe('this agent does not watch Kubernetes: start it with --kubernetes');
    const local = await call(undefined, {});
    expect(local.structured!.events).toEqual([]);
    expect(local.text).toMatch(/^local capture on lo .* keeps no cluster events: .*tapwire agent --kubernetes.*--api/);
  });

  it('refuses a bad time, until before since, and an unknown snapshot, naming the argument', async () => {
    const since = await call(watching, { since: 'last tuesday' });
    expect(since.r.isError).toBe(true);
    expect(since.text).toMatch(/^since: /);
    const until = await call(watching, { since: String(T('12:04:00')), until: String(T('12:03:00')) });
    expect(until.r.isError).toBe(true);
    expect(until.text).toMatch(/^until: /);
    const snap = await call(watching, { snapshot: 'nope' });
    expect(snap.r.isError).toBe(true);
    expect(snap.text).toBe('snapshot: no snapshot "nope" on the agent (list_snapshots lists them)');
    const extra = await call(watching, { podname: 'x' });
    expect(extra.r.isError).toBe(true);
    expect(extra.text).toContain('podname');
  });

  it('stays within the result bound, saying what it left out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-mcp-events-'));
    dirs.push(dir);
    const many = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 1e9 });
    for (let i = 0; i < 400; i++) many.addEvent({ ...EVENTS[1]!, id: `event/e${i}/1`, time: T('12:00:00') + i });
    const api = await serve(new StoreSource(many, new FlowFeed(), { kubernetes: true }));
    const { structured, text } = await call(api, {}, { maxTokens: 4000 });
    expect(structured!.events.length).toBeGreaterThan(0);
    expect(structured!.events.length).toBeLessThan(400);
    expect(structured!.truncated!.rowsOmitted).toBe(400 - structured!.events.length);
    expect(text).toContain(`400 cluster events in this window, the oldest ${structured!.events.length} shown`);
    expect(text).toContain('narrow with since/until, namespace or pod');
    await many.close();
  });
});
