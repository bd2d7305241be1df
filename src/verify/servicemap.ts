import type { FlowRecord } from '../flows/index.js';
import { failed } from './calls.js';
import { endpoint } from '../common/index.js';

export interface Edge {
  src: string;
  dst: string;
  protocol: string;
  count: number;
  errors: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
}

/**
 * The service map: one edge per (caller, server, protocol), with calls, errors (5xx, gRPC non-OK,
 * SQL errors, resets) and latency percentiles. A side is named by its identity when known, else
 * by address — the caller by ip (its port is ephemeral), the server by ip:port.
 */
export class ServiceMap {
  private readonly edges = new Map<string, { e: Omit<Edge, 'latencyMs'>; ms: number[] }>();

  add(r: FlowRecord): void {
    const src = r.src.name ?? r.src.ip;
    const dst = r.dst.name ?? endpoint(r.dst);
    const k = `${src}\u0000${dst}\u0000${r.protocol}`;
    let x = this.edges.get(k);
    if (!x) this.edges.set(k, (x = { e: { src, dst, protocol: r.protocol, count: 0, errors: 0 }, ms: [] }));
    x.e.count++;
    if (failed(r)) x.e.errors++;
    if (!r.incomplete) x.ms.push(r.durationMs);
  }

  toJSON(): { edges: Edge[] } {
    const edges = [...this.edges.values()].map(({ e, ms }) => {
      ms.sort((a, b) => a - b);
      const q = (p: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)]! : 0);
      return { ...e, latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: ms.length ? ms[ms.length - 1]! : 0 } };
    });
    return { edges: edges.sort((a, b) => b.count - a.count) };
  }
}
