import { mergeUsage, type UsageAnswer, type UsageSource } from '../enrich/index.js';
import type { AgentClient } from '../client/index.js';

/**
 * The pods' resource use through the hub: each agent samples its own node's pods, so every agent
 * is asked and the answers are joined (mergeUsage); unavailable only when no agent could say, each
 * agent's reason named by its URL, as are agents that did not answer.
 */
export class HubUsage implements UsageSource {
  constructor(private readonly agents: () => { name: string; client: AgentClient }[]) {}

  async usageOver(pods: Iterable<string>, since: number, until: number): Promise<UsageAnswer> {
    const asked = [...new Set(pods)];
    const agents = this.agents();
    if (agents.length === 0) return { unavailable: 'the hub has no agents' };
    const got = await Promise.allSettled(agents.map((a) => a.client.json<UsageAnswer>('GET', '/api/usage', { query: { pods: asked.join(','), since, until } })));
    return mergeUsage(got.map((g, i): UsageAnswer => {
      const name = agents[i]!.name;
      if (g.status === 'rejected') return { unavailable: `${name}: no answer (${(g.reason as Error).message})` };
      const r = g.value;
      if (!r || typeof r !== 'object' || !('pods' in r || 'unavailable' in r)) return { unavailable: `${name}: answered neither usage nor why not` };
      return 'unavailable' in r ? { unavailable: `${name}: ${r.unavailable}` } : r;
    }));
  }
}
