import type { ClusterEvent, EventQuery } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { Snapshot, SnapshotRequest } from '../store/index.js';
import type { Edge } from '../verify/index.js';
import type { FlowPage, FlowQuery } from './query.js';

/**
 * A source of flows: the one port between tapwire's core and its front doors (the HTTP API, the
 * MCP server, the CLI). Four things are one: a capture file decoded in memory (capture.ts), a
 * flow store with its live feed — the agent's own (store.ts), a running agent over HTTP
 * (remote.ts), and the hub (next). Each answers the same query the same way: the same flows in
 * the same order, the same cursors, the same errors (SourceError, FilterError).
 */
export interface FlowSource {
  readonly kind: 'capture' | 'store' | 'agent' | 'hub';
  /** One line for people: "capture pcaps/demo/demo.pcap", "agent at http://127.0.0.1:8899". */
  describe(): string;
  /**
   * A page of flows in start order (then id): of a snapshot (within its window and filter), or of
   * since/until; narrowed by the filter; `limit` clamped to 1..MAX_PAGE (DEFAULT_PAGE when absent);
   * from after `cursor`. SourceError for a bad time or cursor (bad) or an unknown snapshot (missing).
   */
  query(q: FlowQuery): Promise<FlowPage>;
  /** One flow by id; undefined when the source does not hold it. */
  flow(id: string): Promise<FlowRecord | undefined>;
  /** The snapshots the source keeps, oldest first (a capture file keeps none). */
  snapshots(): Promise<Snapshot[]>;
  /** Undefined when there is no such snapshot. */
  snapshot(id: string): Promise<Snapshot | undefined>;
  /**
   * Who calls whom over a window (or a snapshot): edges with calls, errors and latency. Without
   * since/until: a capture file, all of it; a store, its last 15 minutes.
   */
  serviceMap(q?: { since?: string; until?: string; snapshot?: string }): Promise<ServiceMapAnswer>;
  /**
   * New flows as they are decoded, each matching `filter`, until `close()`. `ended` settles when
   * the stream does: a capture file at once (it holds no new flows), a store never before close,
   * an agent when its stream ends (rejected with why). A receiver that falls behind loses flows,
   * counted in `dropped` events, rather than growing memory.
   */
  subscribe(on: (e: FlowEvent) => void, o?: { filter?: string }): Promise<FlowSubscription>;
  /** Snapshot writes, where the source keeps snapshots (a store, an agent; not a capture file). */
  snapshotWriter?: SnapshotWriter;
  /**
   * Cluster events (issue 16) of a window or a snapshot's window, oldest first. Absent where the
   * source cannot keep any (a capture file); a source that could but does not watch Kubernetes
   * answers with `note` saying so, never with a silent empty list.
   */
  events?(q: EventQuery & { snapshot?: string }): Promise<EventPage>;
  close(): Promise<void>;
}

export interface EventPage {
  events: ClusterEvent[];
  /** Why the list may be empty or incomplete: "this agent does not watch Kubernetes (--kubernetes)". */
  note?: string;
  /** As on flow pages: the hub answering without some agents. */
  partial?: FlowPage['partial'];
}

export type FlowEvent = { flow: FlowRecord } | { dropped: number };

export interface FlowSubscription {
  close(): void;
  readonly ended: Promise<void>;
}

export interface SnapshotWriter {
  /** Opens (or, with until, records) a snapshot; `filter` is checked first (FilterError). */
  create(r: SnapshotRequest): Promise<{ id: string }>;
  /** Drains the capture up to now, then closes the snapshot; undefined for an unknown id. */
  stop(id: string): Promise<(Snapshot & { drained?: 'proven' | 'unproven' }) | undefined>;
  /** Writes the snapshot's packets as pcap to `out`; `lost` says what the packet ring no longer held. */
  pcap(id: string, out: NodeJS.WritableStream): Promise<{ lost: string | null }>;
}

export interface ServiceMapAnswer {
  /** The window judged, epoch seconds (absent for a whole capture file). */
  since?: number;
  until?: number;
  /** Flows read. */
  flows: number;
  /** Set when the window held more flows than a map reads: what was read, and how to narrow it. */
  truncated?: string;
  edges: ServiceEdge[];
}

export type ServiceEdge = Edge & { latencyMs: { p50: number; p95: number; p99: number; max: number } };
