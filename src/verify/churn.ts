import type { FlowRecord } from '../flows/index.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { operation } from './endpoint.js';
import { evidence, type Finding } from './types.js';
import { endpoint } from '../common/index.js';

/**
 * `connection-churn`: a service opening a new TCP connection for every call to the same upstream,
 * where a pool would reuse one (each new connection costs a handshake the call waits for — shown
 * as connectMs against the call's own time); and connections reset with a request unanswered.
 * Only calls a service made while handling a request are judged for churn: test drivers and load
 * generators open connections as they are told to.
 */
export function detectConnectionChurn(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['connection-churn']): Finding[] {
  const out: Finding[] = [];
  const calls = flows.filter((r) => ctx.parents.has(r));
  for (const group of groupBy(calls, (r) => `${r.src.ip} → ${endpoint(r.dst)} ${r.protocol}`).values()) {
    const conns = groupBy(group, (r) => r.connectionId);
    // Churn: most connections carried a single call.
    const single = [...conns.values()].filter((c) => c.length === 1).length;
    if (group.length < t.minRequests || single < 0.8 * conns.size || conns.size < 0.8 * group.length) continue;
    const first = group[0]!;
    const setup = group.map((r) => r.connectMs).filter((x): x is number => x !== undefined);
    const meanSetup = setup.length ? setup.reduce((a, b) => a + b, 0) / setup.length : undefined;
    const meanCall = group.reduce((a, r) => a + r.durationMs, 0) / group.length;
    out.push({
      kind: 'connection-churn', severity: 'warning',
      summary: `${group.length} calls from ${ctx.names.nameOfIp(first.src.ip) ?? first.src.ip} to ${ctx.names.name(first.dst)} used ${conns.size} TCP connections (${(group.length / conns.size).toFixed(1)} calls per connection)${meanSetup !== undefined ? `; connecting took ${meanSetup.toFixed(2)} ms on average against ${meanCall.toFixed(2)} ms per call` : ''}`,
      evidence: group.map((r) => evidence(r, `${operation(r) ?? r.protocol} on connection ${r.connectionId}${r.connectMs !== undefined ? `, connect ${r.connectMs} ms` : ''}`)),
      details: { cause: 'new-connection-per-call', count: group.length, connections: conns.size, meanConnectMs: meanSetup, meanCallMs: Math.round(meanCall * 1000) / 1000 },
    });
  }
  const resets = groupBy(flows.filter((r) => r.incompleteReason === 'connection-rst'), (r) => endpoint(r.dst));
  for (const group of resets.values()) {
    const r = group[0]!;
    out.push({
      kind: 'connection-churn', severity: 'warning',
      summary: `${group.length} connection${group.length > 1 ? 's' : ''} to ${ctx.names.name(r.dst)} reset with a request unanswered (${operation(r) ?? r.protocol})`,
      evidence: group.map((x) => evidence(x, 'request unanswered, connection reset')),
      details: { cause: 'reset', count: group.length },
    });
  }
  return out;
}
