import { httpHalves, type FlowRecord, type HttpFlowRecord } from '../flows/index.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { globToRegExp, pathTemplate } from './endpoint.js';
import { evidence, type Finding } from './types.js';
import { endpoint } from '../common/index.js';

/**
 * `cache`: the same cacheable GET fetched again while the copy from the last fetch was still
 * fresh (RFC 9111 §4.2: max-age / s-maxage, else Expires − Date), by a service that made it while
 * handling a request — a client with a cache would have answered itself. Revalidations
 * (If-None-Match, If-Modified-Since) are how caches are meant to refetch and are not counted.
 * With `requireCacheControl` path globs, GET responses on those paths that lack Cache-Control
 * are reported too.
 */
export function detectCache(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['cache']): Finding[] {
  const gets = flows.filter(isAnsweredGet);
  const out: Finding[] = [];
  for (const [first, ...refetches] of refetchedWhileFresh(flows, ctx)) {
    if (refetches.length < t.minRepeats || !first || !isAnsweredGet(first)) continue;
    out.push({
      kind: 'cache', severity: 'warning',
      summary: `GET ${first.request!.path} on ${ctx.names.name(first.dst)} fetched ${refetches.length} more times by ${ctx.names.nameOfIp(first.src.ip) ?? first.src.ip} while its cached copy was fresh (${first.response!.headers['cache-control'] ?? 'Expires'})`,
      evidence: [evidence(first, 'first fetch'), ...refetches.map((r) => evidence(r, 'fetched again while fresh'))],
      details: { cause: 'refetch-while-fresh', count: refetches.length + 1, refetches: refetches.length, path: first.request!.path, cacheControl: first.response!.headers['cache-control'] },
    });
  }
  if (t.requireCacheControl.length > 0) {
    const required = t.requireCacheControl.map((g) => globToRegExp(g));
    const lacking = gets.filter((r) => r.response!.headers['cache-control'] === undefined && required.some((re) => re.test(r.request!.path.split('?')[0]!)));
    for (const calls of groupBy(lacking, (r) => `${endpoint(r.dst)} ${pathTemplate(r.request!.path)}`).values()) {
      const r = calls[0]!;
      out.push({
        kind: 'cache', severity: 'warning',
        summary: `${calls.length} responses to GET ${pathTemplate(r.request!.path)} on ${ctx.names.name(r.dst)} lack the Cache-Control the spec requires`,
        evidence: calls.map((c) => evidence(c, `${c.response!.status} without Cache-Control`)),
        details: { cause: 'missing-cache-control', count: calls.length, path: pathTemplate(r.request!.path) },
      });
    }
  }
  return out;
}

const isAnsweredGet = (r: FlowRecord): r is HttpFlowRecord => httpHalves(r) && r.request?.method === 'GET' && r.response?.status !== undefined;

/**
 * For each URL a service fetched while handling requests: its first fetch, then every fetch made
 * while an earlier copy was still fresh (not counting revalidations). Lists of one are left out.
 */
export function refetchedWhileFresh(flows: readonly FlowRecord[], ctx: DetectContext): FlowRecord[][] {
  const out: FlowRecord[][] = [];
  const service = flows.filter((r): r is HttpFlowRecord => isAnsweredGet(r) && ctx.parents.has(r));
  for (const calls of groupBy(service, (r) => `${r.src.ip} → ${endpoint(r.dst)} ${r.request!.path}`).values()) {
    calls.sort((a, b) => a.start - b.start);
    const refetches: FlowRecord[] = [];
    let freshUntil = -Infinity;
    for (const r of calls) {
      const conditional = r.request!.headers['if-none-match'] !== undefined || r.request!.headers['if-modified-since'] !== undefined;
      if (r.start < freshUntil && !conditional) refetches.push(r);
      const life = freshnessSeconds(r.response!.headers);
      if (r.response!.status === 200 && life > 0) freshUntil = Math.max(freshUntil, r.end + life);
    }
    if (refetches.length > 0) out.push([calls[0]!, ...refetches]);
  }
  return out;
}

/** Freshness lifetime in seconds (RFC 9111 §4.2.1); 0 when the response may not be reused as is. */
export function freshnessSeconds(h: Record<string, string>): number {
  const cc = (h['cache-control'] ?? '').toLowerCase();
  if (/\b(no-store|no-cache)\b/.test(cc)) return 0;
  const m = /\bs-maxage\s*=\s*"?(\d+)/.exec(cc) ?? /\bmax-age\s*=\s*"?(\d+)/.exec(cc);
  if (m) return Number(m[1]);
  if (h.expires) {
    const exp = Date.parse(h.expires), date = h.date ? Date.parse(h.date) : NaN;
    if (!Number.isNaN(exp) && !Number.isNaN(date)) return Math.max(0, (exp - date) / 1000);
  }
  return 0;
}
