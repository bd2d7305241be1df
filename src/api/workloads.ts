import { collectWithPartial } from '../run/index.js';
import { DEFAULT_MAP_WINDOW, MAX_MAP_FLOWS, type FlowSource } from '../service/index.js';
import { workloadsOf, type WorkloadsAnswer } from '../verify/index.js';
import { bad } from './errors.js';
import { timeParam } from './params.js';

/** Longest workload or namespace name asked about (a DNS subdomain, RFC 1123: 253). */
const MAX_NAME = 253;

/**
 * `GET /api/workloads?since=&until=&workload=&namespace=` (issue 16): what is being captured, per
 * node, from the window's flows (the last 15 minutes when no window is given), read through the
 * source's own query: the same over an agent's store and the hub, whose pages merge the agents'
 * (and say which were missing). A workload asked for that no flow names is answered with
 * `notCaptured` in words, never with an empty list alone.
 */
export async function workloadsBody(source: Pick<FlowSource, 'query'>, url: URL): Promise<WorkloadsAnswer> {
  const p = url.searchParams;
  const until = timeParam('until', p.get('until'));
  let since = timeParam('since', p.get('since'));
  if (since !== undefined && until !== undefined && until < since) throw bad('until is before since');
  if (since === undefined && until === undefined) since = Date.now() / 1000 - DEFAULT_MAP_WINDOW;
  const ask = { workload: name(p, 'workload'), namespace: name(p, 'namespace') };
  const { flows, partial } = await collectWithPartial(source, {
    ...(since !== undefined ? { since: String(since) } : {}), ...(until !== undefined ? { until: String(until) } : {}),
  }, MAX_MAP_FLOWS, (max) => bad(`since: more than ${max} flows in that window; narrow it with since/until`));
  return workloadsOf(flows, { since, until, ask, partial });
}

function name(p: URLSearchParams, key: 'workload' | 'namespace'): string | undefined {
  const v = p.get(key);
  if (v === null || v === '') return undefined;
  if (v.length > MAX_NAME) throw bad(`${key}: longer than ${MAX_NAME} characters`);
  return v;
}
