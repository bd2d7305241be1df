import type { UsageAnswer, UsageSource } from '../enrich/index.js';
import { bad } from './errors.js';
import { timeParam } from './params.js';

/** Pods asked about in one request ("namespace/name", comma-separated): a node runs at most 110 by default. */
export const MAX_USAGE_PODS = 1000;

/** What an agent without a sampler answers: in words, never an empty answer read as "no use". */
export const NO_SAMPLER = 'this agent does not sample resource use: start it with --kubernetes (the metrics API, metrics.k8s.io, is read then)';

/**
 * `GET /api/usage?pods=ns/a,ns/b&since=&until=` (issue 16): the pods' CPU and memory over a
 * window from the agent's UsageSampler (enrich/usage), or `{ unavailable: why }`. Runs and verdicts
 * read it through the agent backend.
 */
export async function usageBody(usage: UsageSource | undefined, url: URL): Promise<UsageAnswer> {
  const p = url.searchParams;
  const since = timeParam('since', p.get('since')), until = timeParam('until', p.get('until'));
  if (since === undefined || until === undefined) throw bad('since and until are required (the window whose resource use is asked)');
  if (until < since) throw bad('until is before since');
  const pods = (p.get('pods') ?? '').split(',').filter((x) => x !== '');
  if (pods.length === 0) throw bad('pods: give one or more "namespace/name", comma-separated');
  if (pods.length > MAX_USAGE_PODS) throw bad(`pods: more than ${MAX_USAGE_PODS}`);
  const malformed = pods.find((x) => !/^[^/]+\/[^/]+$/.test(x));
  if (malformed !== undefined) throw bad(`pods: "${malformed.slice(0, 80)}" is not "namespace/name"`);
  if (!usage) return { unavailable: NO_SAMPLER };
  return usage.usageOver(pods, since, until);
}
