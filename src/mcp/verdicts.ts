import type { AgentClient } from '../client/index.js';
import type { SpecState, VerdictChange } from '../watch/index.js';

/**
 * The agent's standing-spec verdicts (`tapwire agent --spec`), followed over its event stream
 * (`GET /api/verdicts/stream`: `current` first, then one `change` per change) so that every MCP
 * session subscribed to `verdicts://current` hears of a change as it happens. One stream serves
 * all sessions; it starts on first use and reconnects when the agent goes away. A reconnect sends
 * Last-Event-ID, so the agent replays the changes missed meanwhile; and when the fresh `current`
 * state still differs from what subscribers were last told (an agent restarted, or changes past
 * what it keeps), they are told too.
 */

/**
 * Where every standing spec stands and the latest changes, oldest first: the agent's
 * `GET /api/verdicts` (src/api/verdicts.ts), with the watcher's own types (src/watch/watcher.ts)
 * since that is what the agent sends. Each spec's verdict is a VerdictName (src/verify/verdict.ts).
 */
export interface StandingVerdicts {
  window: number;
  specs: SpecState[];
  changes: VerdictChange[];
}

/** What a subscriber is told: the verdict now, and the one line saying what changed. */
export type VerdictNotice = Pick<VerdictChange, 'spec' | 'verdict' | 'summary'>;

/** Changes kept for readers of verdicts://current. */
const KEEP_CHANGES = 20;
const RETRY_MS = { first: 1000, max: 30_000 };
/**
 * After a `current` event, how long the changes the agent replays for Last-Event-ID may take to
 * arrive (it writes them right after `current`): only a difference they do not explain is told.
 */
const REPLAY_MS = 300;

export class VerdictFollower {
  private state?: { window: number; specs: SpecState[] };
  private changes: VerdictChange[] = [];
  private readonly listeners = new Set<(c: VerdictNotice) => void>();
  private abort?: AbortController;
  /** The last event id of the stream, sent as Last-Event-ID on a reconnect. */
  private lastId?: string;
  /** Each spec's verdict as subscribers were last told it (or first saw it). */
  private told?: Map<string, string>;

  constructor(private readonly client: AgentClient, private readonly log: (line: string) => void) {}

  /**
   * Where every standing spec stands, and the latest changes: from the stream once it has
   * spoken, else asked of the agent directly. Throws AgentClientError (404: no standing specs).
   */
  async current(): Promise<StandingVerdicts> {
    this.start();
    if (this.state) return { ...this.state, changes: this.changes };
    const r = await this.client.json<{ window: number; specs: SpecState[]; changes: VerdictChange[] }>('GET', '/api/verdicts');
    return { window: r.window, specs: r.specs, changes: r.changes.slice(-KEEP_CHANGES) };
  }

  /** Calls `fn` on every change, after the state it describes is readable through current(). */
  subscribe(fn: (c: VerdictNotice) => void): () => void {
    this.start();
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.abort?.abort();
  }

  private start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    void this.follow(this.abort.signal);
  }

  private async follow(signal: AbortSignal): Promise<void> {
    let wait = RETRY_MS.first;
    let said = '';
    while (!signal.aborted) {
      let why: string;
      try {
        const events = await this.client.events('/api/verdicts/stream', { signal, lastEventId: this.lastId });
        wait = RETRY_MS.first;
        for await (const e of events) {
          if (e.id !== undefined) this.lastId = e.id;
          this.onEvent(e.event, e.data);
        }
        why = 'the stream ended';
      } catch (e) {
        if (signal.aborted) return;
        why = e instanceof Error ? e.message : String(e);
      }
      if (signal.aborted) return;
      this.state = undefined;
      // Said once per distinct reason: an agent without --spec would otherwise fill the log.
      if (why !== said) this.log(`tapwire mcp: verdict stream of ${this.client.base.origin}: ${why}; retrying`);
      said = why;
      await new Promise((r) => setTimeout(r, wait).unref());
      wait = Math.min(RETRY_MS.max, wait * 2);
    }
  }

  private tell(n: VerdictNotice): void {
    this.told ??= new Map(this.state?.specs.map((s) => [s.spec, s.verdict]));
    this.told.set(n.spec, n.verdict);
    for (const fn of this.listeners) fn(n);
  }

  /**
   * Tells of every spec whose verdict differs from what was last told: what changed while the
   * stream was down and no replayed change explained. The first state ever seen is only noted.
   */
  private reconcile(): void {
    const specs = this.state?.specs;
    if (!specs) return;
    if (!this.told) {
      this.told = new Map(specs.map((s) => [s.spec, s.verdict]));
      return;
    }
    for (const s of specs) {
      if (this.told.get(s.spec) === s.verdict) continue;
      const now = s.verdict === 'fail' ? 'now FAILING' : s.verdict === 'pass' ? 'now passing' : 'now inconclusive';
      this.tell({ spec: s.spec, verdict: s.verdict, summary: `${s.spec}: ${now} (changed while the agent's verdict stream was down)` });
    }
  }

  private onEvent(event: string, data: string): void {
    let body: unknown;
    try {
      body = JSON.parse(data);
    } catch {
      this.log(`tapwire mcp: verdict stream: an event that is not JSON: ${data.slice(0, 80)}`);
      return;
    }
    if (event === 'current') {
      const b = body as { window: number; specs: SpecState[] };
      this.state = { window: b.window, specs: b.specs };
      setTimeout(() => this.reconcile(), REPLAY_MS).unref();
    } else if (event === 'change') {
      const c = body as VerdictChange;
      this.changes.push(c);
      if (this.changes.length > KEEP_CHANGES) this.changes.shift();
      // The change event carries the verdict, not the spec's findings: ask for them, then tell.
      void this.client.json<{ window: number; specs: SpecState[] }>('GET', '/api/verdicts')
        .then((r) => { this.state = { window: r.window, specs: r.specs }; }, () => { /* told anyway: current() asks again */ })
        .finally(() => this.tell(c));
    }
  }
}
