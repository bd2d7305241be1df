import { collectWithPartial } from '../run/index.js';
import { DEFAULT_MAP_WINDOW, MAX_MAP_FLOWS, type FlowSource } from '../service/index.js';
import { tlsCoverageOf, type TlsCoverage } from '../verify/index.js';
import type { PartialData } from '../verify/index.js';
import { bad } from './errors.js';
import { timeParam } from './params.js';

/** `GET /api/coverage`: the TLS coverage, and the agents a hub could not reach. */
export interface CoverageAnswer {
  tls: TlsCoverage;
  /** Flows read. */
  flows: number;
  /** The hub answered without some agents: their TLS is missing. */
  partial?: PartialData;
}

/**
 * `GET /api/coverage?since=&until=` (issue 17): what of the window's TLS could be read (TLS
 * connections on the wire, decrypted, not decrypted and why; plaintext flows), per server workload
 * and probed process, from the window's flows (the last 15 minutes when no window is given), read
 * through the source's own query as /api/workloads reads them, with the same parameter rules.
 */
export async function coverageBody(source: Pick<FlowSource, 'query'>, url: URL, probing?: () => boolean): Promise<CoverageAnswer> {
  const p = url.searchParams;
  const until = timeParam('until', p.get('until'));
  let since = timeParam('since', p.get('since'));
  if (since !== undefined && until !== undefined && until < since) throw bad('until is before since');
  if (since === undefined && until === undefined) since = Date.now() / 1000 - DEFAULT_MAP_WINDOW;
  const { flows, partial } = await collectWithPartial(source, {
    ...(since !== undefined ? { since: String(since) } : {}), ...(until !== undefined ? { until: String(until) } : {}),
  }, MAX_MAP_FLOWS, (max) => bad(`since: more than ${max} flows in that window; narrow it with since/until`));
  return {
    tls: tlsCoverageOf(flows, { since, until, ...(probing?.() ? { source: 'uprobes' as const } : {}) }),
    flows: flows.length,
    ...(partial?.missing.length ? { partial } : {}),
  };
}
