import type { FlowRecord } from '../flows/index.js';

/** Live records for subscribers (the SSE stream, standing checks): publish once, deliver to each. */
export class FlowFeed {
  private readonly subscribers = new Set<(r: FlowRecord) => void>();

  publish(r: FlowRecord): void {
    for (const s of this.subscribers) s(r);
  }

  subscribe(fn: (r: FlowRecord) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  get size(): number {
    return this.subscribers.size;
  }
}
