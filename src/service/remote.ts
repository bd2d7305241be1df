import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AgentClient, AgentClientError, type SseEvent } from '../client/index.js';
import type { EventQuery } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { Snapshot } from '../store/index.js';
import { SourceError } from './errors.js';
import { mapOf, resolve } from './window.js';
import type { FlowPage, FlowQuery } from './query.js';
import type { EventPage, FlowEvent, FlowSource, FlowSubscription, ServiceMapAnswer, SnapshotWriter } from './source.js';

/**
 * A running agent over its HTTP API (client/agent.ts): every call is a request, answered from the
 * agent's store. The agent's 400 and 404 answers become the SourceErrors a local store throws, with
 * the agent's words, so a front door cannot tell the two apart by their errors.
 */
export class RemoteSource implements FlowSource {
  readonly kind = 'agent' as const;
  readonly snapshotWriter: SnapshotWriter;

  constructor(readonly client: AgentClient) {
    this.snapshotWriter = {
      create: (r) => this.ask(() => client.createSnapshot({
        name: r.name, filter: r.filter, since: r.since === undefined ? undefined : String(r.since), until: r.until === undefined ? undefined : String(r.until),
      })),
      stop: async (id) => {
        try {
          return await client.stopSnapshot(id);
        } catch (e) {
          if (e instanceof AgentClientError && e.status === 404) return undefined;
          throw e;
        }
      },
      pcap: async (id, out) => {
        const path = `/api/snapshots/${encodeURIComponent(id)}/pcap`;
        const res = await client.fetch('GET', path);
        if (!res.ok || !res.body) {
          const reason = (await res.text()).slice(0, 200);
          throw res.status === 404 ? new SourceError('missing', `no snapshot "${id}"`) : new AgentClientError(`${client.base.origin}${path} answered ${res.status}: ${reason}`, res.status);
        }
        await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), out, { end: false });
        return { lost: res.headers.get('x-tapwire-loss') };
      },
    };
  }

  static open(url: string, token?: string): RemoteSource {
    return new RemoteSource(new AgentClient(url, token));
  }

  describe(): string {
    return `agent at ${this.client.base.origin}`;
  }

  query(q: FlowQuery): Promise<FlowPage> {
    return this.ask(() => this.client.page(q));
  }

  flow(id: string): Promise<FlowRecord | undefined> {
    return this.client.flow(id);
  }

  snapshots(): Promise<Snapshot[]> {
    return this.client.listSnapshots();
  }

  async snapshot(id: string): Promise<Snapshot | undefined> {
    try {
      return await this.client.getSnapshot(id);
    } catch (e) {
      if (e instanceof AgentClientError && e.status === 404) return undefined;
      throw e;
    }
  }

  async serviceMap(q: { since?: string; until?: string; snapshot?: string } = {}): Promise<ServiceMapAnswer> {
    if (q.snapshot !== undefined) {
      // The API's /api/stats takes a window, not a snapshot: the map is drawn here from the
      // snapshot's pages (its window and filter applied by the agent), as a store draws it.
      const s = await this.snapshot(q.snapshot);
      if (!s) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
      const { since, until } = resolve(q, s);
      return mapOf({ since, until }, (cursor) => this.query({ ...q, limit: 1000, cursor }));
    }
    return this.ask(() => this.client.stats({ since: q.since, until: q.until }) as Promise<unknown> as Promise<ServiceMapAnswer>);
  }

  /** The agent's `GET /api/events` (its 400 and 404 as SourceErrors). */
  events(q: EventQuery & { snapshot?: string }): Promise<EventPage> {
    return this.ask(() => this.client.clusterEvents(q));
  }

  async subscribe(on: (e: FlowEvent) => void, o: { filter?: string } = {}): Promise<FlowSubscription> {
    const abort = new AbortController();
    const path = `/api/flows/stream${o.filter !== undefined ? `?filter=${encodeURIComponent(o.filter)}` : ''}`;
    const events = await this.client.events(path, { signal: abort.signal });
    const ended = (async () => {
      try {
        for await (const e of events) {
          const v = eventOf(e);
          if (v) on(v);
        }
      } catch (e) {
        if (!abort.signal.aborted) throw e;
      }
    })();
    // A subscriber that never awaits `ended` is not told of an unhandled rejection.
    ended.catch(() => undefined);
    return { ended, close: () => abort.abort() };
  }

  async close(): Promise<void> {
    // Nothing held: every call is its own HTTP request.
  }

  /** The agent's 400 and 404 answers as the SourceErrors a local source throws. */
  private async ask<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (e instanceof AgentClientError && e.reason !== undefined && (e.status === 400 || e.status === 404)) {
        throw new SourceError(e.status === 400 ? 'bad' : 'missing', e.reason, { cause: e });
      }
      throw e;
    }
  }
}

/** One event of `/api/flows/stream`: a flow, or how many the agent dropped; undefined for anything else. */
export function eventOf(e: SseEvent): FlowEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(e.data);
  } catch {
    return undefined;
  }
  if (e.event === 'flow' && isFlow(v)) return { flow: v };
  const dropped = (v as { dropped?: unknown } | undefined)?.dropped;
  if (e.event === 'dropped' && typeof dropped === 'number') return { dropped };
  return undefined;
}

export function isFlow(v: unknown): v is FlowRecord {
  const r = v as Partial<FlowRecord> | null;
  return typeof r === 'object' && r !== null && typeof r.id === 'string' && typeof r.start === 'number' && typeof r.protocol === 'string';
}
