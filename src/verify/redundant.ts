import { recordModule, type FlowRecord } from '../flows/index.js';
import { DETECTOR_DEFAULTS, type DetectorThresholds } from './config.js';
import { refetchedWhileFresh } from './cache.js';
import { nPlusOneGroups } from './nplusone.js';
import { answerKey, callKey, callName, failed, isHealthCheck, isTransactionControl } from './calls.js';
import { groupBy, type DetectContext } from './context.js';
import { evidence, type Finding } from './types.js';

/**
 * `redundant-call`: identical calls repeated — same method+path+body, or same query fingerprint
 * and parameters — that did not fail (repeats after failures are retries). Only calls a service
 * made while handling an inbound request count: the traffic under test itself (a test driver, a
 * load generator) repeats by design. Transaction control and health checks are not redundant, and
 * calls that make up an N+1 or refetch a fresh cached copy are reported once, by those detectors.
 * Across inbound requests, only repeats that got the same answer every time count; and none where
 * the server is itself a cache (its module's `cacheServer`: Redis), whose reads are meant to repeat.
 */
export function detectRedundant(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['redundant-call'], nPlusOneMin = DETECTOR_DEFAULTS['n-plus-one'].minCount): Finding[] {
  const { parents } = ctx;
  // Reported once, by the more specific detector: calls that make up an N+1, refetches of a fresh cached copy.
  const elsewhere = new Set([...nPlusOneGroups(flows, ctx, nPlusOneMin).flatMap((g) => g.calls), ...refetchedWhileFresh(flows, ctx).flat()]);
  const byKey = groupBy(flows, (r) => (!parents.has(r) || elsewhere.has(r) || failed(r) || isTransactionControl(r) || isHealthCheck(r) ? undefined : callKey(r)));
  const out: Finding[] = [];
  for (const all of byKey.values()) {
    if (all.length < t.minCount) continue;
    let calls = all;
    const cache = recordModule(all[0]!).cacheServer === true;
    if (cache) {
      // A cache read again by the next request is the cache at work: only the repeats within one
      // inbound request count (the same key read twice while handling it), and only those that got
      // the same answer each time: INCR, LPUSH or RPOP repeated are work, their answers differ.
      calls = [...groupBy(all, (c) => parents.get(c)!.parent.id).values()]
        .filter((g) => g.length > 1 && new Set(g.map(answerKey)).size === 1).flat();
      if (calls.length < t.minCount) continue;
    }
    // Within one inbound request a repeat is waste whatever it returned. Across requests it is only
    // when every answer was the same: the first could have been reused (the cache that never hits);
    // a price that changes between requests had to be asked for again.
    const acrossRequests = new Set(calls.map((c) => parents.get(c)!.parent)).size > 1;
    if (acrossRequests && !cache && new Set(calls.map(answerKey)).size > 1) continue;
    calls.sort((a, b) => a.start - b.start);
    const first = calls[0]!;
    const params = recordModule(first).repeatDetail(first);
    const inbound = new Set(calls.map((c) => parents.get(c)!.parent.id)).size;
    out.push({
      kind: 'redundant-call',
      severity: calls.length >= t.errorCount ? 'error' : 'warning',
      summary: `${calls.length} identical calls: ${callName(first, ctx.names)}${params}${inbound === 1 ? ' (within one inbound request)' : cache ? ` (within each of ${inbound} inbound requests)` : ` (across ${inbound} inbound requests)`}`,
      evidence: calls.map((r, i) => evidence(r, `call ${i + 1}`)),
      details: {
        count: calls.length, windowMs: Math.round((calls[calls.length - 1]!.end - first.start) * 1000), inboundRequests: inbound,
      },
    });
  }
  return out;
}
