import type { ClusterEvent, EventQuery } from '../enrich/index.js';

/** Events kept at most, and for how long: Kubernetes itself keeps Events one hour by default. */
const MAX_EVENTS = 100_000;
const MAX_AGE_SEC = 24 * 3600;

/**
 * The cluster's Events as the hub watches them (the one cluster-wide Events watch, issue 16), in
 * memory: bounded by count and age, one per id. The hub keeps no disk: after a restart its watch
 * lists again what the API server still keeps (an hour, by the kube-apiserver's --event-ttl), and
 * the agents' own pod events are in their stores.
 */
export class EventRing {
  private readonly byId = new Map<string, ClusterEvent>();

  constructor(private readonly now: () => number = () => Date.now() / 1000, private readonly max = MAX_EVENTS, private readonly maxAgeSec = MAX_AGE_SEC) {}

  get size(): number {
    return this.byId.size;
  }

  /** Keeps `e` unless one with its id is kept; drops the oldest kept past the bounds. */
  add(e: ClusterEvent): void {
    if (this.byId.has(e.id)) return;
    this.byId.set(e.id, e);
    const cutoff = this.now() - this.maxAgeSec;
    // Map order is arrival order, close to time order: trimming from the front drops the oldest.
    for (const [id, old] of this.byId) {
      if (this.byId.size <= this.max && old.time >= cutoff) break;
      this.byId.delete(id);
    }
  }

  /** A window's events, by namespace and pod, oldest first. */
  query(q: EventQuery): ClusterEvent[] {
    const out: ClusterEvent[] = [];
    for (const e of this.byId.values()) {
      if (q.since !== undefined && e.time < q.since) continue;
      if (q.until !== undefined && e.time > q.until) continue;
      if (q.namespace !== undefined && e.namespace !== q.namespace) continue;
      if (q.pod !== undefined && e.pod !== q.pod) continue;
      out.push(e);
    }
    return out.sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}
