import { recordModule, type FlowRecord, type TlsFlow } from '../flows/index.js';
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
 *
 * Where the wire shows TLS handshakes (records whose halves are a handshake: one per connection),
 * a handshake attributed to an inbound request was opened and closed while handling it: a new TLS
 * connection per call. Those are judged by how many were full (not resumed) handshakes per
 * inbound request (tlsChurn below), and are left out of the per-connection count above, which
 * they would always meet.
 */
export function detectConnectionChurn(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['connection-churn']): Finding[] {
  const out: Finding[] = [];
  const handshake = (r: FlowRecord): boolean => recordModule(r).halves === 'handshake';
  const calls = flows.filter((r) => ctx.parents.has(r) && !handshake(r));
  out.push(...tlsChurn(flows.filter((r): r is TlsFlow => ctx.parents.has(r) && handshake(r)), ctx, t));
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

/**
 * TLS handshakes per inbound request: a client that makes a new full handshake (RFC 8446 §2: a
 * key exchange and the server's certificate, against a resumption's PSK) for most inbound
 * requests it handles, to the same server. Resumed handshakes are counted and shown, and do not
 * by themselves make a finding.
 */
function tlsChurn(handshakes: readonly TlsFlow[], ctx: DetectContext, t: DetectorThresholds['connection-churn']): Finding[] {
  const out: Finding[] = [];
  for (const group of groupBy(handshakes, (r) => `${r.src.ip} → ${endpoint(r.dst)} ${r.request?.sni ?? ''}`).values()) {
    const inbound = new Set(group.map((r) => ctx.parents.get(r)!.parent)).size;
    const full = group.filter((r) => r.response && r.response.resumed !== true);
    const resumed = group.filter((r) => r.response?.resumed === true).length;
    if (group.length < t.minRequests || full.length < 0.8 * inbound) continue;
    const first = group[0]!;
    const times = group.map((r) => r.handshakeMs).filter((x): x is number => x !== undefined);
    const meanHandshake = times.length ? times.reduce((a, b) => a + b, 0) / times.length : undefined;
    const server = `${ctx.names.name(first.dst)}${first.request?.sni ? ` (${first.request.sni})` : ''}`;
    out.push({
      kind: 'connection-churn', severity: 'warning',
      summary: `${ctx.names.nameOfIp(first.src.ip) ?? first.src.ip} made ${group.length} TLS handshakes with ${server} while handling ${inbound} inbound request${inbound === 1 ? '' : 's'}: ${full.length} full, ${resumed} resumed (${(full.length / inbound).toFixed(1)} full handshakes per request)${meanHandshake !== undefined ? `; a handshake took ${meanHandshake.toFixed(2)} ms on average` : ''}`,
      evidence: group.map((r) => evidence(r, `${r.response?.version ?? 'TLS handshake'} on connection ${r.connectionId}${r.response?.resumed ? ', resumed' : ', full handshake'}${r.handshakeMs !== undefined ? `, ${r.handshakeMs} ms` : ''}`)),
      details: { cause: 'tls-handshake-per-call', count: group.length, full: full.length, resumed, inbound, meanHandshakeMs: meanHandshake === undefined ? undefined : Math.round(meanHandshake * 1000) / 1000 },
    });
  }
  return out;
}
