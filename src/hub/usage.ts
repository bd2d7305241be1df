import type { PodUsage, UsageAnswer, UsageSource } from '../enrich/index.js';
import type { AgentClient } from '../client/index.js';

/**
 * The pods' resource use through the hub: each agent samples its own node's pods, so every agent
 * is asked and the answers are joined, a pod's figures taken from the agent with the most samples
 * of it. Unavailable only when no agent could say; agents that did not answer are named in `note`.
 */
export class HubUsage implements UsageSource {
  constructor(private readonly agents: () => { name: string; client: AgentClient }[]) {}

  async usageOver(pods: Iterable<string>, since: number, until: number): Promise<UsageAnswer> {
    const asked = [...new Set(pods)];
    const agents = this.agents();
    const got = await Promise.allSettled(agents.map((a) => a.client.json<UsageAnswer>('GET', '/api/usage', { query: { pods: asked.join(','), since, until } })));
    const out: Record<string, PodUsage> = {};
    const why: string[] = [], failed: string[] = [];
    let interval = 0, skipped = 0;
    got.forEach((g, i) => {
      const name = agents[i]!.name;
      if (g.status === 'rejected') return failed.push(`${name} (${(g.reason as Error).message})`);
      const r = g.value;
      if (!r || typeof r !== 'object') return failed.push(`${name} (answered neither usage nor why not)`);
      if ('unavailable' in r) return why.push(`${name}: ${r.unavailable}`);
      interval = Math.max(interval, r.interval);
      skipped += r.skipped ?? 0;
      for (const [pod, u] of Object.entries(r.pods)) if (!out[pod] || out[pod].samples < u.samples) out[pod] = u;
    });
    const note = [
      failed.length ? `no answer from ${failed.join(', ')}` : '',
      why.length && Object.keys(out).length ? why.join('; ') : '',
    ].filter(Boolean).join('; ');
    if (Object.keys(out).length === 0 && interval === 0) {
      return { unavailable: [...why, ...(failed.length ? [`no answer from ${failed.join(', ')}`] : [])].join('; ') || 'the hub has no agents' };
    }
    const unsampled = asked.filter((p) => !out[p]).sort();
    return { pods: out, ...(unsampled.length ? { unsampled } : {}), interval, ...(skipped ? { skipped } : {}), ...(note ? { note } : {}) };
  }
}
