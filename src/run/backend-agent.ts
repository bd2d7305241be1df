import { AgentClient, AgentClientError, MAX_CLIENT_FLOWS } from '../client/index.js';
import type { FlowRecord } from '../flows/index.js';
import { mergeUsage, type EventQuery, type UsageAnswer } from '../enrich/index.js';
import { RemoteSource, type EventPage } from '../service/index.js';
import type { PartialData } from '../verify/index.js';
import { DEFAULT_MAX_RUNS, type Snapshot } from '../store/index.js';
import type { Backend, FlowPage, FlowQuery, RunRecord, StoppedSnapshot } from './backend.js';
import { collectWithPartial } from './window.js';

/**
 * A running agent through its flow API: snapshots, flows and pcap are the agent's, and runs are
 * kept in the agent's run log (`POST /api/runs`), so every client of that agent shares one
 * history. The agent captures on its own interfaces with its own filter: a snapshot cannot
 * change either.
 */
export class AgentBackend implements Backend {
  readonly kind = 'agent' as const;

  /** The agent's flows and snapshots as the one port reads them (its 404 is "no such snapshot"). */
  private readonly remote: RemoteSource;
  /** What the last read of each snapshot missed (a hub without some agents), by snapshot id; bounded. */
  private readonly partial = new Map<string, PartialData>();

  constructor(readonly client: AgentClient, private readonly onWarning: (message: string) => void = warn) {
    this.remote = new RemoteSource(client);
  }

  describe(): string {
    return `agent at ${this.client.base.origin}`;
  }

  async startSnapshot(s: { name?: string; filter?: string; iface?: string; bpf?: string }): Promise<{ id: string }> {
    if (s.bpf !== undefined) {
      throw new AgentClientError(`a BPF capture filter applies to a local capture; the agent at ${this.client.base.origin} captures with the filter it was started with (use a CEL flow filter instead)`);
    }
    // `iface` is ignored on purpose: the agent captures where it was told to when it started.
    return this.client.createSnapshot({ name: s.name, filter: s.filter });
  }

  async stopSnapshot(id: string): Promise<StoppedSnapshot> {
    return (await this.client.stopSnapshot(id)) as StoppedSnapshot;
  }

  listSnapshots(): Promise<Snapshot[]> {
    return this.remote.snapshots();
  }

  getSnapshot(id: string): Promise<Snapshot | undefined> {
    return this.remote.snapshot(id);
  }

  async query(q: FlowQuery): Promise<FlowPage> {
    return this.client.page(q);
  }

  async snapshotFlows(id: string, max = MAX_CLIENT_FLOWS): Promise<FlowRecord[]> {
    const r = await collectWithPartial(this, { snapshot: id }, max, (n) => new AgentClientError(`more than ${n} flows in that window; narrow it with since/until`));
    this.partial.delete(id);
    if (r.partial) {
      this.partial.set(id, r.partial);
      if (this.partial.size > KEPT_PARTIAL) this.partial.delete(this.partial.keys().next().value!);
    }
    return r.flows;
  }

  partialOf(id: string): PartialData | undefined {
    return this.partial.get(id);
  }

  /** The pods' resource use over a window, from the agent's sampler (`GET /api/usage`). */
  async usage(pods: string[], since: number, until: number): Promise<UsageAnswer> {
    // The pods travel in the query string, which the API bounds (8 KiB): asked in chunks, merged.
    const answers: UsageAnswer[] = [];
    for (const chunk of chunks(pods, USAGE_QUERY_CHARS)) {
      const r = await this.client.json<UsageAnswer>('GET', '/api/usage', { query: { pods: chunk.join(','), since, until } });
      if (!r || typeof r !== 'object' || !('unavailable' in r || 'pods' in r)) throw new AgentClientError(`${this.client.base.origin}/api/usage answered neither usage nor why not`);
      if ('unavailable' in r) return r;
      answers.push(r);
    }
    return mergeUsage(answers);
  }

  /** The agent's (or hub's) cluster events, where its API has them. */
  async events(q: EventQuery & { snapshot?: string }): Promise<EventPage> {
    if (!this.remote.events) return { events: [], note: 'this client cannot read cluster events' };
    return this.remote.events(q);
  }

  flow(id: string): Promise<FlowRecord | undefined> {
    return this.client.flow(id);
  }

  exportPcap(snapshot: string, dest: string): Promise<{ path: string; bytes: number; loss?: string }> {
    return this.client.pcap(snapshot, dest);
  }

  async addRun(r: RunRecord): Promise<void> {
    await this.client.json('POST', '/api/runs', { body: r });
  }

  async runs(q: { limit?: number } = {}): Promise<RunRecord[]> {
    // Without a limit, every kept run (the API's default page is smaller): history needs them all.
    const r = await this.client.json<{ runs?: unknown; problems?: unknown }>('GET', '/api/runs', { query: { limit: q.limit ?? DEFAULT_MAX_RUNS } });
    if (!Array.isArray(r.runs)) throw new AgentClientError(`${this.client.base.origin}/api/runs answered without a "runs" array`);
    if (Array.isArray(r.problems)) for (const p of r.problems) this.onWarning(`agent run log: ${String(p)}`);
    return r.runs as RunRecord[];
  }

  async close(): Promise<void> {
    // Nothing held: every call is its own HTTP request.
  }
}

/** Characters of pod names per /api/usage request, well within the API's 8 KiB request target. */
const USAGE_QUERY_CHARS = 6000;

/** `names` in runs whose joined length stays under `max` characters. */
function chunks(names: readonly string[], max: number): string[][] {
  const out: string[][] = [];
  let cur: string[] = [], len = 0;
  for (const n of names) {
    if (cur.length && len + n.length + 1 > max) { out.push(cur); cur = []; len = 0; }
    cur.push(n);
    len += n.length + 1;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Snapshots whose last read's missing agents are remembered (a run reads them right after the read). */
const KEPT_PARTIAL = 16;

function warn(message: string): void {
  process.stderr.write(`tapwire: ${message}\n`);
}
