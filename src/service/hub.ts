import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { ClusterEvent, EventQuery } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { Snapshot } from '../store/index.js';
import { SourceError } from './errors.js';
import { LiveMerge } from './hub-live.js';
import { mergePage, type AgentPager } from './hub-merge.js';
import { mergePcaps, PacketReader } from './hub-pcap.js';
import { cursorAfter, cursorKey, DEFAULT_PAGE, MAX_PAGE, predicateOf, timeOf, type FlowPage, type FlowQuery } from './query.js';
import { RemoteSource } from './remote.js';
import type { EventPage, FlowEvent, FlowSource, FlowSubscription, ServiceMapAnswer, SnapshotWriter } from './source.js';
import { DEFAULT_MAP_WINDOW, mapOf, resolve } from './window.js';

/** One agent of a hub: its name (its URL) and how it is asked. */
export interface HubAgent {
  name: string;
  source: FlowSource;
}

export interface HubSourceOptions {
  /** How long one agent has to answer one request before the hub answers without it, ms. Default 5000. */
  timeoutMs?: number;
  /** Seconds within which two agents' copies of one exchange start (clock skew plus forwarding). Default 0.05. */
  windowSec?: number;
  /** Told of every request to an agent: how long it took and whether it was answered (the hub's metrics). */
  onCall?: (agent: string, seconds: number, ok: boolean) => void;
  /** The clock of "the last 15 minutes" of the service map. Default: the wall clock. */
  now?: () => number;
  /** The node an agent captures, where known (discovery's EndpointSlices, or the agent's /healthz). */
  nodeOf?: (agent: string) => string | undefined;
  /** Cluster events the hub watches itself (Kubernetes Events, cluster-wide), merged with the agents'. */
  ownEvents?: (q: EventQuery) => ClusterEvent[];
}

type Missing = { agent: string; error: string; node?: string };
/** A hub snapshot: the agents' snapshots of one id, as one; `partial` names agents that lack it. */
export type HubSnapshot = Snapshot & { partial?: { missing: Missing[] } };

/** The name a hub gives each agent's copy of its snapshot: "<hub id>" or "<hub id> <name>". */
const HUB_NAME = /^(hub-[0-9a-f]{12})(?: ([\s\S]*))?$/;

/**
 * The hub (issue 16): one FlowSource over many agents, so the API, the MCP server and the CLI ask
 * a cluster the way they ask one agent. Every agent is asked the same question at once; pages are
 * merged in (start, id) order under one global cursor (the cursor is a position, the same for every
 * source: query.ts), an exchange two agents captured comes back once (hub-merge.ts), and an agent
 * that fails or does not answer within the timeout is named in the page's `partial` while the
 * others' flows still come back.
 *
 * A hub snapshot is one snapshot opened on every agent under one id ("hub-<hex>", also the agents'
 * snapshot name, so the hub keeps no state of its own and a restarted hub finds its snapshots
 * again); its pcap is the agents' pcaps merged by time (hub-pcap.ts).
 */
export class HubSource implements FlowSource {
  readonly kind = 'hub' as const;
  readonly snapshotWriter: SnapshotWriter;
  private agents: HubAgent[];
  private readonly timeoutMs: number;
  private readonly window: number;
  /** Live subscriptions, which follow changes of the agent set. */
  private readonly live = new Set<LiveMerge>();
  /** Flows an agent held in the last page's look-back: asked for on top of the next page. */
  private lookback = 0;
  /** Each agent's snapshot id of a hub snapshot, once found: "<agent>\0<hub id>" → id. */
  private readonly snapIds = new Map<string, string>();

  constructor(agents: HubAgent[], private readonly o: HubSourceOptions = {}) {
    this.agents = [...agents];
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.window = o.windowSec ?? 0.05;
    this.snapshotWriter = {
      create: (r) => this.createSnapshot(r),
      stop: (id) => this.stopSnapshot(id),
      pcap: (id, out) => this.pcap(id, out),
    };
  }

  /** A hub over agents' URLs, each asked with `token`. */
  static open(urls: string[], token?: string, o?: HubSourceOptions): HubSource {
    return new HubSource(urls.map((u) => agentAt(u, token)), o);
  }

  /** Replaces the agent set (discovery); queries under way finish with the set they started with. */
  setAgents(agents: HubAgent[]): void {
    const before = new Set(this.agents.map((a) => a.name)), after = new Set(agents.map((a) => a.name));
    this.agents = [...agents];
    // Live streams follow: a new agent's stream opened (one that cannot be opened is left out), a gone one's closed.
    for (const m of this.live) {
      for (const a of agents) if (!before.has(a.name)) m.add(a.name, a.source).catch(() => undefined);
      for (const name of before) if (!after.has(name)) m.remove(name);
    }
  }

  get agentNames(): string[] {
    return this.agents.map((a) => a.name);
  }

  describe(): string {
    const n = this.agents.length;
    return `hub over ${n} agent${n === 1 ? '' : 's'} (${this.agents.map((a) => a.name).join(', ') || 'none yet'})`;
  }

  async query(q: FlowQuery): Promise<FlowPage> {
    // Checked here, so a bad query is refused by name even when no agent answers.
    timeOf('since', q.since);
    timeOf('until', q.until);
    predicateOf(q.filter);
    const after = q.cursor !== undefined ? cursorKey(q.cursor) : undefined;
    const limit = Math.min(MAX_PAGE, Math.max(1, Math.floor(q.limit ?? DEFAULT_PAGE)));
    const missing: Missing[] = [];
    let agents = this.agents.map((a) => ({ a, snapshot: undefined as string | undefined }));
    if (q.snapshot !== undefined) {
      const ids = await this.agentSnapshots(q.snapshot);
      if (!ids.some((s) => s.id !== undefined)) throw new SourceError('missing', `no snapshot "${q.snapshot}"${ids.length ? ` (${ids.map((s) => `${s.a.name}: ${s.error}`).join('; ')})` : ''}`);
      for (const s of ids) if (s.error !== undefined) missing.push({ agent: s.a.name, error: s.error });
      agents = ids.filter((s) => s.id !== undefined).map((s) => ({ a: s.a, snapshot: s.id }));
    }
    const pagers: AgentPager[] = agents.map(({ a, snapshot }) => ({
      agent: a.name,
      page: async (cursor, n) => {
        const p = await this.call(a, (s) => s.query({ filter: q.filter, since: q.since, until: q.until, snapshot, cursor, limit: n }));
        // An agent that is itself a hub passes on the agents it went without.
        for (const m of p.partial?.missing ?? []) if (!missing.some((x) => x.agent === m.agent)) missing.push(m);
        return p;
      },
    }));
    const r = await mergePage(pagers, { limit, after, window: this.window, expectLookback: this.lookback, failed: (agent, e) => missing.push({ agent, error: reason(e) }) });
    if (after) this.lookback = Math.min(MAX_PAGE, Math.ceil(r.lookback * 1.25));
    const last = r.flows[r.flows.length - 1];
    return {
      flows: r.flows,
      ...(r.more && last ? { next: cursorAfter(last) } : {}),
      ...(r.lost.length ? { lost: r.lost.map((l) => `${l.agent}: ${l.lost}`).join('; ') } : {}),
      ...(missing.length ? { partial: { missing: this.withNodes(missing) } } : {}),
    };
  }

  /**
   * Missing agents with the node each captures, where the hub knows it: a verdict can then tell
   * whether the flows it needs were on a missing node (verify/events.ts, partialReason).
   */
  private withNodes(missing: Missing[]): Missing[] {
    const nodeOf = this.o.nodeOf;
    if (!nodeOf) return missing;
    return missing.map((m) => {
      const node = m.node ?? nodeOf(m.agent);
      return node === undefined ? m : { ...m, node };
    });
  }

  async flow(id: string): Promise<FlowRecord | undefined> {
    const got = await Promise.allSettled(this.agents.map((a) => this.call(a, (s) => s.flow(id))));
    for (const g of got) if (g.status === 'fulfilled' && g.value) return g.value;
    const failed = got.flatMap((g, i) => (g.status === 'rejected' ? [`${this.agents[i]!.name} (${reason(g.reason)})`] : []));
    // "No such flow" would be a guess while an agent that may hold it did not answer.
    if (failed.length) throw new Error(`flow "${id}": not on the agents that answered; no answer from ${failed.join(', ')}`);
    return undefined;
  }

  async snapshots(): Promise<HubSnapshot[]> {
    const lists = await Promise.allSettled(this.agents.map((a) => this.call(a, (s) => s.snapshots())));
    const byId = new Map<string, { a: HubAgent; s: Snapshot }[]>();
    lists.forEach((l, i) => {
      if (l.status !== 'fulfilled') return;
      for (const s of l.value) {
        const m = HUB_NAME.exec(s.name ?? '');
        if (!m) continue;
        const a = this.agents[i]!;
        this.snapIds.set(`${a.name}\u0000${m[1]}`, s.id);
        const group = byId.get(m[1]!);
        if (group) group.push({ a, s });
        else byId.set(m[1]!, [{ a, s }]);
      }
    });
    const out = [...byId].map(([id, group]) => {
      const missing: Missing[] = this.agents.flatMap((a, i) => {
        const l = lists[i]!;
        if (l.status === 'rejected') return [{ agent: a.name, error: reason(l.reason) }];
        return group.some((g) => g.a === a) ? [] : [{ agent: a.name, error: `the agent has no snapshot "${id}"` }];
      });
      return merged(id, group.map((g) => g.s), missing);
    });
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  async snapshot(id: string): Promise<HubSnapshot | undefined> {
    return (await this.snapshots()).find((s) => s.id === id);
  }

  async serviceMap(q: { since?: string; until?: string; snapshot?: string } = {}): Promise<ServiceMapAnswer & { partial?: { missing: Missing[] } }> {
    // Drawn from the merged flows, not by adding the agents' maps: an exchange two agents saw
    // counts once, and the latency percentiles are those of the flows themselves.
    let since: number | undefined, until: number | undefined;
    if (q.snapshot !== undefined) {
      const s = await this.snapshot(q.snapshot);
      if (!s) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
      ({ since, until } = resolve(q, s));
    } else {
      until = timeOf('until', q.until) ?? this.o.now?.() ?? Date.now() / 1000;
      since = timeOf('since', q.since) ?? until - DEFAULT_MAP_WINDOW;
    }
    const missing = new Map<string, string>();
    const map = await mapOf({ since, until }, async (cursor) => {
      const p = await this.query({
        snapshot: q.snapshot, since: since === undefined ? undefined : String(since), until: until === undefined ? undefined : String(until), limit: MAX_PAGE, cursor,
      });
      for (const m of p.partial?.missing ?? []) missing.set(m.agent, m.error);
      return p;
    });
    return { ...map, ...(missing.size ? { partial: { missing: [...missing].map(([agent, error]) => ({ agent, error })) } } : {}) };
  }

  /** The agents' live streams as one, following the agent set (hub-live.ts). */
  async subscribe(on: (e: FlowEvent) => void, o: { filter?: string } = {}): Promise<FlowSubscription> {
    predicateOf(o.filter);
    const m = new LiveMerge(this.window, on, o.filter);
    const agents = this.agents;
    const opened = await Promise.allSettled(agents.map((a) => m.add(a.name, a.source)));
    if (m.agents === 0 && agents.length > 0) {
      m.close();
      throw (opened.find((x): x is PromiseRejectedResult => x.status === 'rejected')?.reason as Error | undefined) ?? new Error('no agent stream could be opened');
    }
    this.live.add(m);
    void m.ended.finally(() => this.live.delete(m)).catch(() => undefined);
    return m;
  }

  /** The agents' cluster events merged by id (each event has one id across agents), oldest first. */
  async events(q: EventQuery & { snapshot?: string }): Promise<EventPage> {
    const withEvents = this.agents.filter((a) => typeof a.source.events === 'function');
    const own = this.o.ownEvents ? await this.ownEvents(q, this.o.ownEvents) : [];
    if (withEvents.length === 0) {
      return { events: own, ...(this.o.ownEvents ? {} : { note: `none of the hub's ${this.agents.length} agents serves cluster events` }) };
    }
    const got = await Promise.allSettled(withEvents.map(async (a) => {
      const snapshot = q.snapshot === undefined ? undefined : await this.agentSnapshot(a, q.snapshot);
      if (q.snapshot !== undefined && snapshot === undefined) throw new Error(`the agent has no snapshot "${q.snapshot}"`);
      return this.call(a, (s) => s.events!({ ...q, snapshot }));
    }));
    // A bad window is bad for every agent: the caller's to hear, not a missing agent.
    const bad = got.find((g): g is PromiseRejectedResult => g.status === 'rejected' && g.reason instanceof SourceError && g.reason.kind === 'bad');
    if (bad) throw bad.reason;
    const byId = new Map<string, ClusterEvent>(own.map((e) => [e.id, e]));
    const notes: string[] = [];
    const missing: Missing[] = [];
    got.forEach((g, i) => {
      const a = withEvents[i]!;
      if (g.status === 'rejected') return missing.push({ agent: a.name, error: reason(g.reason) });
      for (const e of g.value.events) if (!byId.has(e.id)) byId.set(e.id, e);
      if (g.value.note) notes.push(`${a.name}: ${g.value.note}`);
      for (const m of g.value.partial?.missing ?? []) missing.push(m);
    });
    const events = [...byId.values()].sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { events, ...(notes.length ? { note: notes.join('; ') } : {}), ...(missing.length ? { partial: { missing: this.withNodes(missing) } } : {}) };
  }

  /** The hub's own events of a window, or of a hub snapshot's window. */
  private async ownEvents(q: EventQuery & { snapshot?: string }, read: (q: EventQuery) => ClusterEvent[]): Promise<ClusterEvent[]> {
    if (q.snapshot === undefined) return read(q);
    const s = await this.snapshot(q.snapshot);
    if (!s) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
    const since = Math.max(s.since, q.since ?? -Infinity);
    const until = Math.min(s.until ?? (this.o.now ?? (() => Date.now() / 1000))(), q.until ?? Infinity);
    return read({ ...q, since, until });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.agents.map((a) => a.source.close()));
  }

  private async createSnapshot(r: Parameters<SnapshotWriter['create']>[0]): Promise<{ id: string }> {
    predicateOf(r.filter);
    const id = `hub-${randomBytes(6).toString('hex')}`;
    // One start for every agent, so the copies cover the same window.
    const since = r.since ?? this.o.now?.() ?? Date.now() / 1000;
    const name = r.name === undefined ? id : `${id} ${r.name}`;
    const got = await Promise.allSettled(this.agents.map((a) => this.call(a, (s) => writerOf(s).create({ ...r, since, name }))));
    got.forEach((g, i) => {
      if (g.status === 'fulfilled') this.snapIds.set(`${this.agents[i]!.name}\u0000${id}`, g.value.id);
    });
    if (!got.some((g) => g.status === 'fulfilled')) {
      const first = got.find((g): g is PromiseRejectedResult => g.status === 'rejected')?.reason;
      if (first instanceof SourceError) throw first;
      throw new Error(`snapshot: no agent could open it (${got.map((g, i) => `${this.agents[i]!.name}: ${g.status === 'rejected' ? reason(g.reason) : 'ok'}`).join('; ') || 'the hub has no agents'})`);
    }
    return { id };
  }

  /** Stops the snapshot on every agent, each draining its own capture first. */
  private async stopSnapshot(id: string): Promise<(HubSnapshot & { drained?: 'proven' | 'unproven' }) | undefined> {
    const ids = await this.agentSnapshots(id);
    const holders = ids.filter((s) => s.id !== undefined);
    if (holders.length === 0) return undefined;
    const got = await Promise.allSettled(holders.map((h) => this.call(h.a, (s) => writerOf(s).stop(h.id!))));
    const missing: Missing[] = ids.filter((s) => s.error !== undefined).map((s) => ({ agent: s.a.name, error: s.error! }));
    const stopped: (Snapshot & { drained?: string })[] = [];
    got.forEach((g, i) => {
      if (g.status === 'fulfilled' && g.value) stopped.push(g.value);
      else missing.push({ agent: holders[i]!.a.name, error: g.status === 'rejected' ? reason(g.reason) : `the agent has no snapshot "${id}"` });
    });
    if (stopped.length === 0) throw new Error(`snapshot "${id}": no agent could stop it (${missing.map((m) => `${m.agent}: ${m.error}`).join('; ')})`);
    const drained = stopped.every((s) => s.drained === 'proven') ? 'proven' as const : 'unproven' as const;
    return { ...merged(id, stopped, missing), drained };
  }

  /** The agents' pcaps of the snapshot merged by capture time; the loss names each agent's own and any agent left out. */
  private async pcap(id: string, out: NodeJS.WritableStream): Promise<{ lost: string | null }> {
    const ids = await this.agentSnapshots(id);
    if (!ids.some((s) => s.id !== undefined)) throw new SourceError('missing', `no snapshot "${id}"`);
    const notes = ids.filter((s) => s.error !== undefined).map((s) => `${s.a.name}: not in this pcap (${s.error})`);
    const streams = ids.filter((s) => s.id !== undefined).map((s) => {
      const body = new PassThrough();
      const done = writerOf(s.a.source).pcap(s.id!, body).then((r) => { body.end(); return r; }, (e: unknown) => { body.destroy(e as Error); throw e; });
      done.catch(() => undefined);
      return { a: s.a, body, done, reader: new PacketReader(s.a.name, body) };
    });
    const opened = await Promise.all(streams.map(async (x) => {
      try {
        await this.call(x.a, () => x.reader.open());
        return x;
      } catch (e) {
        notes.push(`${x.a.name}: not in this pcap (${reason(e)})`);
        x.body.destroy();
        return undefined;
      }
    }));
    const readers = opened.filter((x) => x !== undefined);
    const r = await mergePcaps(readers.map((x) => x.reader), out, this.timeoutMs);
    for (const b of r.broken) notes.push(`${b.agent}: its pcap broke off (${b.error}); the packets before the break are in`);
    for (const x of readers) {
      if (r.broken.some((b) => b.agent === x.a.name)) {
        // Its download may still hang: let it go.
        x.body.destroy();
        continue;
      }
      const l = await x.done.catch(() => undefined);
      if (l?.lost && l.lost !== 'none') notes.push(`${x.a.name}: ${l.lost}`);
    }
    return { lost: notes.length ? notes.join('; ') : null };
  }

  /** Each agent's own id of a hub snapshot, or why it has none. */
  private async agentSnapshots(id: string): Promise<{ a: HubAgent; id?: string; error?: string }[]> {
    return Promise.all(this.agents.map(async (a) => {
      try {
        const own = await this.agentSnapshot(a, id);
        return own === undefined ? { a, error: `the agent has no snapshot "${id}"` } : { a, id: own };
      } catch (e) {
        return { a, error: reason(e) };
      }
    }));
  }

  private async agentSnapshot(a: HubAgent, id: string): Promise<string | undefined> {
    const key = `${a.name}\u0000${id}`;
    const known = this.snapIds.get(key);
    if (known !== undefined) return known;
    if (!HUB_NAME.test(id)) return undefined;
    const list = await this.call(a, (s) => s.snapshots());
    const found = list.find((s) => HUB_NAME.exec(s.name ?? '')?.[1] === id);
    if (found) this.snapIds.set(key, found.id);
    return found?.id;
  }

  /** One request to one agent, bounded by the timeout and timed for the metrics. */
  private async call<T>(a: HubAgent, f: (s: FlowSource) => Promise<T>): Promise<T> {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
    });
    try {
      const v = await Promise.race([f(a.source), timeout]);
      this.o.onCall?.(a.name, (performance.now() - t0) / 1000, true);
      return v;
    } catch (e) {
      this.o.onCall?.(a.name, (performance.now() - t0) / 1000, false);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** An agent at `url` (a RemoteSource), named by its URL's origin. */
export function agentAt(url: string, token?: string): HubAgent {
  const source = RemoteSource.open(url, token);
  return { name: source.client.base.origin, source };
}

function writerOf(s: FlowSource): SnapshotWriter {
  if (!s.snapshotWriter) throw new Error(`${s.describe()} keeps no snapshots`);
  return s.snapshotWriter;
}

/** The agents' copies of one hub snapshot as one: the widest window, open while any copy is. */
function merged(id: string, copies: Snapshot[], missing: Missing[]): HubSnapshot {
  const open = copies.some((s) => s.open);
  const name = HUB_NAME.exec(copies[0]?.name ?? '')?.[2];
  const s: HubSnapshot = {
    id, since: Math.min(...copies.map((c) => c.since)), createdAt: Math.min(...copies.map((c) => c.createdAt)), open,
  };
  if (name !== undefined) s.name = name;
  if (!open) s.until = Math.max(...copies.map((c) => c.until ?? c.since));
  if (copies[0]?.filter !== undefined) s.filter = copies[0].filter;
  if (missing.length) s.partial = { missing };
  return s;
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
