import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** How the hub reads an agent's own /metrics text. */
export type Scrape = (agent: string) => Promise<string>;

/**
 * The hub's /metrics: its own, and each agent's re-exposed.
 *
 * Its own: `tapwire_hub_agents{state="up|down"}` (an agent is up when it answered this scrape's
 * request for its metrics), `tapwire_hub_agent_request_seconds{agent,outcome}` (every request the
 * hub made to an agent for a query, a snapshot, a flow), and its process metrics prefixed
 * `tapwire_hub_` so they never collide with the agents'.
 *
 * The agents': every sample of every agent with an `agent="<url>"` label added, one family per
 * metric name (HELP and TYPE once, as the text format requires). Not summed: counters and
 * histograms sum in PromQL (`sum without (agent) (…)`) with nothing lost, while gauges such as
 * heap sizes or open connections have no meaningful sum, and a per-agent series is what tells
 * which node drops packets.
 */
export class HubRegistry extends Registry {
  readonly requests: Histogram;
  private readonly agentsUp: Gauge;

  constructor(private readonly agents: () => string[], private readonly scrape: Scrape, private readonly timeoutMs: number) {
    super();
    collectDefaultMetrics({ register: this, prefix: 'tapwire_hub_' });
    this.agentsUp = new Gauge({ name: 'tapwire_hub_agents', help: 'Agents of the hub by state: up when it answered the last scrape', labelNames: ['state'], registers: [this] });
    this.requests = new Histogram({
      name: 'tapwire_hub_agent_request_seconds', help: 'Requests the hub made to each agent (queries, snapshots, flows), by outcome',
      labelNames: ['agent', 'outcome'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this],
    });
  }

  /** Records one request to an agent (HubSourceOptions.onCall). */
  observe(agent: string, seconds: number, ok: boolean): void {
    this.requests.observe({ agent, outcome: ok ? 'ok' : 'error' }, seconds);
  }

  override async metrics(): Promise<string> {
    const agents = this.agents();
    const texts = await Promise.all(agents.map((a) => withTimeout(this.scrape(a), this.timeoutMs).then((t) => t, () => undefined)));
    const up = texts.filter((t) => t !== undefined).length;
    this.agentsUp.set({ state: 'up' }, up);
    this.agentsUp.set({ state: 'down' }, agents.length - up);
    const own = await super.metrics();
    const theirs = relabel(agents.flatMap((a, i) => (texts[i] === undefined ? [] : [{ agent: a, text: texts[i]! }])));
    return theirs ? `${own}${own.endsWith('\n') ? '' : '\n'}${theirs}` : own;
  }
}

/**
 * Prometheus text exposition (https://prometheus.io/docs/instrumenting/exposition_formats/) of
 * several agents as one: each sample gains `agent="<url>"`; samples are grouped under their
 * family's HELP and TYPE (the family is the one the last TYPE line named, so histogram `_bucket`,
 * `_sum` and `_count` lines stay with theirs).
 */
export function relabel(inputs: { agent: string; text: string }[]): string {
  const families = new Map<string, { head: string[]; samples: string[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { head: [], samples: [] }));
    return f;
  };
  for (const { agent, text } of inputs) {
    const label = `agent="${agent.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
    let current = '';
    const seen = new Set<string>();
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) {
        current = meta[2]!;
        const f = family(current);
        // HELP and TYPE from the first agent that sent them.
        if (!seen.has(`${meta[1]} ${current}`) && !f.head.some((h) => h.startsWith(`# ${meta[1]} `))) f.head.push(line);
        seen.add(`${meta[1]} ${current}`);
        continue;
      }
      if (line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?/.exec(line);
      if (!m) continue;
      const name = m[1]!;
      const rest = line.slice(name.length);
      const sample = m[2] ? `${name}{${label},${rest.slice(1)}` : `${name}{${label}}${rest}`;
      family(current && name.startsWith(current) ? current : name).samples.push(sample.replace('{' + label + ',}', `{${label}}`));
    }
  }
  let out = '';
  for (const f of families.values()) {
    if (f.samples.length === 0) continue;
    out += `${[...f.head, ...f.samples].join('\n')}\n`;
  }
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), ms); })]).finally(() => clearTimeout(timer));
}
