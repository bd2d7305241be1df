import type { FlowRecord } from '../flows/record.js';

/** An outbound call attributed to the inbound request the service was handling when it made it. */
export interface Attribution {
  parent: FlowRecord;
  /** 0–1: same address and time containment is strong; containment alone is weak. */
  confidence: number;
}

/**
 * Causal grouping without tracing: a call made by a service while one of its inbound requests was
 * in flight belongs to that request. In a pod, inbound and outbound traffic share the pod's address,
 * so "same address" identifies the service; the call must start and end inside the inbound exchange
 * and go to another endpoint. The tightest such request wins. Calls with no parent are the traffic
 * under test itself (a test driver, a load generator).
 */
export function attribute(flows: readonly FlowRecord[]): Map<FlowRecord, Attribution> {
  const byServerIp = new Map<string, FlowRecord[]>();
  for (const f of flows) {
    if (!f.request) continue;
    (byServerIp.get(f.dst.ip) ?? byServerIp.set(f.dst.ip, []).get(f.dst.ip)!).push(f);
  }
  const out = new Map<FlowRecord, Attribution>();
  for (const call of flows) {
    const candidates = byServerIp.get(call.src.ip);
    if (!candidates) continue;
    let best: FlowRecord | undefined;
    for (const inb of candidates) {
      if (inb === call || (inb.dst.port === call.dst.port && inb.dst.ip === call.dst.ip)) continue;
      if (inb.start <= call.start && call.end <= inb.end && (!best || inb.end - inb.start < best.end - best.start)) best = inb;
    }
    if (best) out.set(call, { parent: best, confidence: best.connectionId === call.connectionId ? 0.5 : 0.9 });
  }
  return out;
}
