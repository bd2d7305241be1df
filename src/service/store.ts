import type { EventQuery } from '../enrich/index.js';
import { CursorError, type FlowStore, type Snapshot } from '../store/index.js';
import { SourceError } from './errors.js';
import type { FlowFeed } from './feed.js';
import { badCursor, predicateOf, timeOf, type FlowPage, type FlowQuery } from './query.js';
import type { EventPage, FlowEvent, FlowSource, FlowSubscription, ServiceMapAnswer, SnapshotWriter } from './source.js';
import { DEFAULT_MAP_WINDOW, mapOf, resolve } from './window.js';

export interface StoreSourceOptions {
  /**
   * Waits until every packet captured before the call is decoded and stored (the live agent's
   * Recorder.drain). Stopping a snapshot calls it first, so a snapshot stopped right after a test
   * command exits holds all of that command's traffic.
   */
  drain?: () => Promise<{ proven: boolean }>;
  /** The clock of "the last 15 minutes" (the capture clock of a live store). Default: the wall clock. */
  now?: () => number;
  /**
   * Whether the agent watches Kubernetes (--kubernetes), and so keeps cluster events in the store.
   * Without it, events() answers with a note saying so rather than a silent empty list.
   */
  kubernetes?: boolean;
}

/** events()' answer when the agent keeps no cluster events. */
export const NO_KUBERNETES = 'this agent does not watch Kubernetes: start it with --kubernetes';

/**
 * A flow store and its live feed: what the agent serves (its own capture), and what a local
 * snapshot holds. Queries read memory and disk together; the stream is the feed.
 */
export class StoreSource implements FlowSource {
  readonly kind = 'store' as const;
  readonly snapshotWriter: SnapshotWriter;

  constructor(readonly store: FlowStore, readonly feed: FlowFeed, private readonly o: StoreSourceOptions = {}) {
    const snapshots = store.snapshots;
    this.snapshotWriter = {
      create: async (r) => {
        // Checked before the snapshot is kept: a filter that does not compile is bad input.
        predicateOf(r.filter);
        return snapshots.create(r);
      },
      stop: async (id) => {
        if (!snapshots.get(id)) return undefined;
        const d = await this.o.drain?.();
        // Whether the drain was proven by a marker (see live/barrier.ts), so a client can tell.
        return { ...this.withLoss(snapshots.stop(id)!), ...(d ? { drained: d.proven ? 'proven' as const : 'unproven' as const } : {}) };
      },
      pcap: async (id, out) => {
        const s = snapshots.get(id);
        if (!s) throw new SourceError('missing', `no snapshot "${id}"`);
        const r = await store.exportPcap(s.since, s.until ?? Date.now() / 1000, out);
        return { lost: r.lost };
      },
    };
  }

  describe(): string {
    return 'flow store';
  }

  async query(q: FlowQuery): Promise<FlowPage> {
    const r = resolve(q, q.snapshot !== undefined ? this.store.snapshots.get(q.snapshot) : undefined);
    try {
      const page = await this.store.query({ filter: r.keep, since: r.since, until: r.until, limit: r.limit, cursor: r.cursor });
      return { flows: page.flows, ...(page.next ? { next: page.next } : {}), ...(page.lost ? { lost: page.lost } : {}) };
    } catch (e) {
      if (e instanceof CursorError) throw badCursor(r.cursor ?? '');
      throw e;
    }
  }

  flow(id: string) {
    return this.store.get(id);
  }

  async snapshots(): Promise<Snapshot[]> {
    return this.store.snapshots.list().map((s) => this.withLoss(s));
  }

  async snapshot(id: string): Promise<Snapshot | undefined> {
    const s = this.store.snapshots.get(id);
    return s && this.withLoss(s);
  }

  /** The snapshot with what the capture dropped in its window (an open one's reaches now), when it dropped anything. */
  private withLoss(s: Snapshot): Snapshot {
    const loss = this.store.captureLoss(s.since, s.until ?? this.o.now?.() ?? Date.now() / 1000);
    return loss ? { ...s, captureLoss: loss } : s;
  }

  async serviceMap(q: { since?: string; until?: string; snapshot?: string } = {}): Promise<ServiceMapAnswer> {
    let since: number | undefined, until: number | undefined;
    if (q.snapshot !== undefined) {
      const s = this.store.snapshots.get(q.snapshot);
      if (!s) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
      ({ since, until } = resolve(q, s));
    } else {
      until = timeOf('until', q.until) ?? this.o.now?.() ?? Date.now() / 1000;
      since = timeOf('since', q.since) ?? until - DEFAULT_MAP_WINDOW;
    }
    const base = { ...q, since: since === undefined ? undefined : String(since), until: until === undefined ? undefined : String(until) };
    return mapOf({ since, until }, (cursor) => this.query({ ...base, limit: 1000, cursor }));
  }

  /**
   * Cluster events of a window, or of a snapshot's window (an open snapshot's reaches now) narrowed
   * by since/until; a snapshot's flow filter does not apply to events. Damaged lines the store met
   * are said in `note`.
   */
  async events(q: EventQuery & { snapshot?: string }): Promise<EventPage> {
    let { since, until } = q;
    if (q.snapshot !== undefined) {
      const s = this.store.snapshots.get(q.snapshot);
      if (!s) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
      since = Math.max(s.since, since ?? -Infinity);
      until = Math.min(s.until ?? this.o.now?.() ?? Date.now() / 1000, until ?? Infinity);
    }
    if (!this.o.kubernetes) return { events: [], note: NO_KUBERNETES };
    if (q.since !== undefined && q.until !== undefined && q.until < q.since) throw new SourceError('bad', 'until is before since');
    const r = this.store.events({ since, until, namespace: q.namespace, pod: q.pod });
    return { events: r.events, ...(r.lost ? { note: r.lost } : {}) };
  }

  async subscribe(on: (e: FlowEvent) => void, o: { filter?: string } = {}): Promise<FlowSubscription> {
    const keep = predicateOf(o.filter);
    let end!: () => void;
    const ended = new Promise<void>((r) => { end = r; });
    const off = this.feed.subscribe((flow) => {
      if (!keep || keep(flow)) on({ flow });
    });
    return { ended, close: () => { off(); end(); } };
  }

  async close(): Promise<void> {
    // The store belongs to whoever opened it (the agent closes it after its API).
  }
}
