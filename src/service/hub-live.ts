import type { FlowRecord } from '../flows/index.js';
import { exchangeKey } from './hub-merge.js';
import type { FlowEvent, FlowSource, FlowSubscription } from './source.js';

/**
 * One live subscription of the hub (hub.ts): the agents' streams as one, following the agent set.
 * An agent that joins (discovery) gets a stream of its own at once; one that leaves has its stream
 * closed. A flow a second agent also saw is dropped when it arrives: live there is no waiting for
 * the copy with more evidence, the first one is passed on. `ended` settles on close(), or when the
 * last agent's stream has ended (rejected naming those that ended with an error).
 */
export class LiveMerge implements FlowSubscription {
  readonly ended: Promise<void>;
  private readonly streams = new Map<string, FlowSubscription>();
  private readonly errors: string[] = [];
  private readonly seen: RecentCopies;
  private pending = 0;
  private closed = false;
  private settle!: (e?: Error) => void;

  constructor(window: number, private readonly on: (e: FlowEvent) => void, private readonly filter: string | undefined) {
    this.seen = new RecentCopies(window);
    this.ended = new Promise<void>((resolve, reject) => {
      this.settle = (e) => (e ? reject(e) : resolve());
    });
    // A subscriber that never awaits `ended` is not told of an unhandled rejection.
    this.ended.catch(() => undefined);
  }

  /** Opens the agent's stream; rejects when it cannot be opened. */
  async add(name: string, source: FlowSource): Promise<void> {
    if (this.closed || this.streams.has(name)) return;
    this.pending++;
    try {
      const s = await source.subscribe((e) => {
        if ('flow' in e && this.seen.duplicate(e.flow, name)) return;
        this.on(e);
      }, { filter: this.filter });
      if (this.closed) return s.close();
      this.streams.set(name, s);
      s.ended.then(() => this.gone(name), (e: unknown) => this.gone(name, `${name}: ${e instanceof Error ? e.message : String(e)}`));
    } finally {
      this.pending--;
    }
  }

  /** Closes the stream of an agent that left the set. */
  remove(name: string): void {
    this.streams.get(name)?.close();
  }

  get agents(): number {
    return this.streams.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams.values()) s.close();
    this.settle();
  }

  private gone(name: string, error?: string): void {
    this.streams.delete(name);
    if (error) this.errors.push(error);
    if (this.closed || this.streams.size > 0 || this.pending > 0) return;
    this.closed = true;
    this.settle(this.errors.length ? new Error(`agent streams ended: ${this.errors.join('; ')}`) : undefined);
  }
}

/**
 * The exchanges passed on in the last moments, by exchange key, so a second agent's copy is
 * recognised. Entries older than a minute of wall time go (two agents publish a finished exchange
 * within a second or two of each other); past 100 000 fresh entries (a flood) they are forgotten
 * rather than grow, and a few copies may then pass twice.
 */
class RecentCopies {
  private readonly byKey = new Map<string, { agent: string; start: number; at: number }[]>();
  private size = 0;

  constructor(private readonly window: number) {}

  duplicate(f: FlowRecord, agent: string): boolean {
    const key = exchangeKey(f);
    const now = Date.now();
    if (this.size > 100_000) this.prune(now);
    const list = this.byKey.get(key);
    const twin = list?.findIndex((c) => c.agent !== agent && Math.abs(c.start - f.start) <= this.window) ?? -1;
    if (list && twin >= 0) {
      list.splice(twin, 1);
      this.size--;
      return true;
    }
    const entry = { agent, start: f.start, at: now };
    if (list) list.push(entry);
    else this.byKey.set(key, [entry]);
    this.size++;
    if (this.size % 1024 === 0) this.prune(now);
    return false;
  }

  private prune(now: number): void {
    for (const [k, list] of this.byKey) {
      const keep = list.filter((c) => now - c.at < 60_000);
      this.size -= list.length - keep.length;
      if (keep.length) this.byKey.set(k, keep);
      else this.byKey.delete(k);
    }
    if (this.size > 100_000) {
      this.byKey.clear();
      this.size = 0;
    }
  }
}
