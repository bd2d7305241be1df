import type { FlowRecord } from '../flows/index.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { operation } from './endpoint.js';
import { findForwardedSecrets } from './secrets.js';
import { evidence, type Finding } from './types.js';
import { endpoint } from '../common/index.js';

/**
 * `secret-forwarded`: a credential that arrived on an inbound request, sent on to another service.
 * Matched by keyed hash (secrets.ts), so redaction does not hide it. An error by default: a token
 * handed to a service that was never meant to hold it can be replayed there. Destinations allowed
 * to receive forwarded credentials (an auth service, a trusted backend) go in `allowTo`.
 */
export function detectSecretForwarded(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['secret-forwarded']): Finding[] {
  const leaks = findForwardedSecrets(flows, { headers: t.headers, parents: ctx.parents })
    .filter((l) => !t.allowTo.some((s) => ctx.names.matches(l.outbound.dst, s)));
  const out: Finding[] = [];
  for (const group of groupBy(leaks, (l) => `${l.inbound.dst.ip} ${l.arrivedIn} → ${endpoint(l.outbound.dst)} ${operation(l.outbound)} ${l.sentIn}`).values()) {
    const l = group[0]!;
    const from = ctx.names.name(l.inbound.dst), to = ctx.names.name(l.outbound.dst);
    out.push({
      kind: 'secret-forwarded',
      severity: 'error',
      summary: `the credential in the ${place(l.arrivedIn)} of ${operation(l.inbound)} on ${from} was sent on to ${operation(l.outbound)} on ${to} (in its ${place(l.sentIn)}), ${group.length} time${group.length > 1 ? 's' : ''}`,
      // Each inbound request once, followed by the calls that carried its credential on.
      evidence: [...groupBy(group, (x) => x.inbound.id).values()].flatMap((xs) => [
        evidence(xs[0]!.inbound, `arrived in ${xs[0]!.arrivedIn}`), ...xs.map((x) => evidence(x.outbound, `sent in ${x.sentIn}`))]),
      details: { count: group.length, service: from, destination: to, arrivedIn: l.arrivedIn, sentIn: l.sentIn, token: l.token, distinctCredentials: new Set(group.map((x) => x.token)).size },
    });
  }
  return out;
}

/** "header authorization" → "authorization header", "query token" → "token query parameter". */
function place(where: string): string {
  const [kind, name] = where.split(' ', 2) as [string, string | undefined];
  if (!name) return where;
  return kind === 'query' ? `${name} query parameter` : `${name} ${kind}`;
}
