import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { FlowFeed } from '../../src/service/feed.js';
import { StoreSource } from '../../src/service/store.js';
import { createApi } from '../../src/api/server.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { loadSpecFile } from '../../src/verify/spec/index.js';
import { FlowStore } from '../../src/store/index.js';
import type { StandingSpec, Watcher } from '../../src/watch/watcher.js';

/** The recorded stories the standing-spec tests replay as live traffic. */
export const DEMO = 'pcaps/demo/demo.pcap';
export const DEMO_FIXED = 'pcaps/demo/demo-fixed.pcap';
export const DEMO_SPEC = 'examples/specs/demo.yaml';

const cache = new Map<string, Promise<FlowRecord[]>>();

/** A capture's flows, decoded once per test file; callers get their own copies. */
export async function pcapFlows(file: string): Promise<FlowRecord[]> {
  let p = cache.get(file);
  if (!p) cache.set(file, (p = analyzeFile(file).then((r) => r.records!)));
  return structuredClone(await p);
}

export async function demoSpec(): Promise<StandingSpec> {
  return { file: DEMO_SPEC, spec: await loadSpecFile(DEMO_SPEC) };
}

const TIME_KEYS = new Set(['start', 'end', 'time']);

/**
 * The same traffic, as if it happened `dt` seconds later: every capture timestamp moves (the
 * record's, each half's, interim responses', gRPC messages'). `idSuffix` makes it a new set of
 * exchanges rather than the same records seen again.
 */
export function shifted(flows: readonly FlowRecord[], dt: number, idSuffix = ''): FlowRecord[] {
  const move = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(move);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = TIME_KEYS.has(k) && typeof x === 'number' && x > 1e9 ? x + dt : move(x);
    return out;
  };
  return flows.map((r) => {
    const s = move(r) as FlowRecord;
    if (idSuffix) {
      s.id += idSuffix;
      s.connectionId += idSuffix;
    }
    return s;
  });
}

/** Shifted so that the first flow starts at `at`. */
export function startingAt(flows: readonly FlowRecord[], at: number, idSuffix = ''): FlowRecord[] {
  return shifted(flows, at - Math.min(...flows.map((f) => f.start)), idSuffix);
}

export const lastStart = (flows: readonly FlowRecord[]) => Math.max(...flows.map((f) => f.start));

export async function listen(s: Server): Promise<string> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

export async function closeServer(s: Server): Promise<void> {
  s.closeAllConnections();
  await new Promise<void>((r) => s.close(() => r()));
}

/**
 * The agent's API in this process over a real store in a temp dir: every record published on the
 * feed is stored and, with a watcher, judged (as the agent wires them).
 */
export async function startAgentApi(o: { token?: string; watcher?: Watcher } = {}) {
  const store = await FlowStore.open({ dir: mkdtempSync(join(tmpdir(), 'tapwire-watch-api-')), maxBytes: 64 * 1024 * 1024, maxAgeSec: 1e9 });
  const feed = new FlowFeed();
  feed.subscribe((r) => {
    store.add(r);
    o.watcher?.add(r);
  });
  const server = createApi({ source: new StoreSource(store, feed), registry: new Registry(), token: o.token, watcher: o.watcher });
  const base = await listen(server);
  const close = async () => {
    await closeServer(server);
    await store.close();
  };
  return { store, feed, server, base, close };
}
