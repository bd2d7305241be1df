import { httpHalves, type FlowRecord } from '../flows/index.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { endpointKey, operation } from './endpoint.js';
import { evidence, type Finding } from './types.js';

/**
 * `missing-propagation`: a correlation or trace header on the inbound request that the service's
 * outbound calls drop. For W3C `traceparent` (Trace Context §3.2) the trace id must also survive:
 * a new span id is expected, a new trace id breaks the trace. PostgreSQL calls carry no headers
 * and are not judged. One finding per (service, downstream endpoint).
 */
export function detectMissingPropagation(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['missing-propagation']): Finding[] {
  const names = t.headers.map((h) => h.toLowerCase());
  type Drop = { call: FlowRecord; parent: FlowRecord; dropped: string[] };
  const judged: Drop[] = [];
  for (const [call, { parent }] of ctx.parents) {
    if (!httpHalves(call) || !call.request || !httpHalves(parent) || !parent.request || ('headersPartial' in call && call.headersPartial)) continue;
    const inH = parent.request.headers, outH = call.request.headers;
    const carried = names.filter((h) => inH[h] !== undefined);
    if (carried.length === 0) continue;
    judged.push({ call, parent, dropped: carried.filter((h) => !propagated(h, inH[h]!, outH[h])) });
  }
  const out: Finding[] = [];
  for (const group of groupBy(judged, (d) => `${d.parent.dst.ip} → ${endpointKey(d.call)}`).values()) {
    const bad = group.filter((d) => d.dropped.length > 0);
    if (bad.length === 0) continue;
    const headers = [...new Set(bad.flatMap((d) => d.dropped))];
    const d = bad[0]!;
    out.push({
      kind: 'missing-propagation',
      severity: 'warning',
      summary: `${headers.join(', ')} dropped on ${bad.length} of ${group.length} calls from ${ctx.names.name(d.parent.dst)} to ${operation(d.call)} on ${ctx.names.name(d.call.dst)}`,
      evidence: bad.flatMap((x) => [evidence(x.parent, `inbound with ${x.dropped.join(', ')}`), evidence(x.call, `outbound without ${x.dropped.join(', ')}`)]),
      details: { count: bad.length, calls: group.length, headers, service: ctx.names.name(d.parent.dst), destination: ctx.names.name(d.call.dst) },
    });
  }
  return out;
}

function propagated(name: string, inbound: string, outbound: string | undefined): boolean {
  if (outbound === undefined) return false;
  if (name !== 'traceparent') return true;
  // version-traceid-parentid-flags: the trace id is the second field.
  return inbound.split('-')[1] === outbound.split('-')[1];
}
