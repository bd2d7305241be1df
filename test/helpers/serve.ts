import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createApi } from '../../src/api/server.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { FlowFeed } from '../../src/service/feed.js';
import type { FlowSource } from '../../src/service/source.js';
import { StoreSource } from '../../src/service/store.js';
import { FlowStore } from '../../src/store/index.js';

/** The agent's HTTP API over `source`, on a free loopback port; `close()` stops it. */
export async function serveApi(source: FlowSource): Promise<{ url: string; close(): Promise<void> }> {
  const server = createApi({ source, registry: new Registry() });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The demo capture's peers named as a Kubernetes enricher would: order-service on node-a, the rest on node-b. */
export const DEMO_IDENTITIES: Record<string, { name: string; workload: string; node: string; service?: string }> = {
  '127.0.0.2': { name: 'order-5d8', workload: 'order-service', node: 'node-a', service: 'orders' },
  '127.0.0.3': { name: 'payment-7f9c', workload: 'payment-service', node: 'node-b' },
  '127.0.0.4': { name: 'postgres-0', workload: 'postgres', node: 'node-b' },
};

/**
 * A real store holding pcaps/demo/demo.pcap's flows, their peers named (namespace shop) from
 * DEMO_IDENTITIES, served by the API: the window of their starts, and `close()` for all of it.
 */
export async function demoAgent(): Promise<{ store: FlowStore; flows: FlowRecord[]; since: number; until: number; url: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-demo-agent-'));
  const store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 1e9 });
  const flows: FlowRecord[] = [];
  await analyzeFile('pcaps/demo/demo.pcap', {
    onRecord: (r) => {
      for (const p of [r.src, r.dst]) if (DEMO_IDENTITIES[p.ip]) Object.assign(p, { ...DEMO_IDENTITIES[p.ip], namespace: 'shop' });
      flows.push(r);
      store.add(r);
    },
  });
  await store.sync();
  const api = await serveApi(new StoreSource(store, new FlowFeed()));
  return {
    store, flows, url: api.url,
    since: Math.floor(Math.min(...flows.map((f) => f.start))),
    until: Math.ceil(Math.max(...flows.map((f) => f.start))),
    close: async () => {
      await api.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
