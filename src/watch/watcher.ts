import { basename } from 'node:path';
import type { FlowRecord } from '../flows/index.js';
import { unjudged, verifyWithSpec, type Finding, type Spec, type Verdict, type VerdictName } from '../verify/index.js';
import { duration, findingDelta, notable, summaryLine } from './change.js';
import { DEFAULT_MAX_FLOWS, FlowWindow, type WindowView } from './window.js';

/** A spec the watcher holds to, and the file it came from. */
export interface StandingSpec {
  file: string;
  spec: Spec;
}

export interface WatcherOptions {
  specs: StandingSpec[];
  /** Flows that started this many seconds before an evaluation are judged. Default 300. */
  windowSec?: number;
  /** How often the timer evaluates (when anything changed), ms. Default 2000. */
  intervalMs?: number;
  /** Epoch seconds now, on the clock flow times are stamped with. */
  clock?: () => number;
  /** Flows held at most; the oldest are dropped past it, and the verdict says so. Default 50 000. */
  maxFlows?: number;
}

/** Where a standing spec stands: its last verdict over the window. Times are epoch seconds. */
export interface SpecState {
  /** Display name: the file's basename (the path as given when two specs share a basename). */
  spec: string;
  file: string;
  verdict: VerdictName;
  /** Why inconclusive, and whether the window is shorter than asked (flows were lost). */
  reason?: string;
  /** The flows judged started in [since, until]. */
  window: { since: number; until: number };
  flows: number;
  /** Every finding of the verdict, evidence capped (the spec's evidence.max, else 20). */
  findings: Finding[];
  evaluatedAt: number;
  /** When the verdict or its set of error and warning findings last changed. */
  changedAt: number;
}

/** A standing spec's verdict changed, or its error and warning findings did. */
export interface VerdictChange {
  seq: number;
  at: number;
  spec: string;
  file: string;
  /** Null on the spec's first evaluation. */
  previous: VerdictName | null;
  verdict: VerdictName;
  /** Error and warning findings that were not there at the previous evaluation. */
  appeared: Finding[];
  /** "kind: summary" of error and warning findings that are gone. */
  resolved: string[];
  /** One human line, e.g. `demo.yaml: now FAILING — retry: … (evidence flow … at …)`. */
  summary: string;
}

/** Changes kept for `changes()` and the API: older ones are in the log of whoever followed them. */
const MAX_CHANGES = 200;

interface Held {
  name: string;
  standing: StandingSpec;
  state?: SpecState;
  notable: Map<string, Finding>;
}

/**
 * Standing specs judged continuously over a sliding window of live flows (`tapwire agent --spec`,
 * `tapwire watch`). Each spec is verified exactly as `tapwire verify --spec` does, over the flows
 * that started in the last `windowSec` seconds; a change of verdict, or of the set of error and
 * warning findings, is recorded and told to subscribers. Verification runs only when the window
 * changed, and the timer runs it at most once per interval, so an idle agent costs nothing.
 */
export class Watcher {
  readonly windowSec: number;
  readonly intervalMs: number;
  private readonly clock: () => number;
  private readonly window: FlowWindow;
  private readonly held: Held[];
  private readonly recent: VerdictChange[] = [];
  private readonly subscribers = new Set<(c: VerdictChange) => void>();
  private seq = 0;
  private timer?: NodeJS.Timeout;

  constructor(o: WatcherOptions) {
    this.windowSec = o.windowSec ?? 300;
    this.intervalMs = o.intervalMs ?? 2000;
    this.clock = o.clock ?? (() => Date.now() / 1000);
    this.window = new FlowWindow(this.windowSec, o.maxFlows ?? DEFAULT_MAX_FLOWS);
    const base = (s: StandingSpec) => basename(s.file);
    this.held = o.specs.map((s) => ({
      name: o.specs.filter((t) => base(t) === base(s)).length > 1 ? s.file : base(s),
      standing: s,
      notable: new Map(),
    }));
  }

  /** A live flow. Cheap: the work happens at the next evaluation. */
  add(r: FlowRecord): void {
    this.window.add(r);
  }

  /** `count` flows never arrived (a live feed dropped them for falling behind): the window says so. */
  lost(count: number, at = this.clock()): void {
    this.window.lost(count, at);
  }

  /**
   * Judges every spec over the window ending at `now`, if anything changed since the last time
   * (or `force`), and returns the changes it found (also told to subscribers).
   */
  evaluate(now = this.clock(), force = false): VerdictChange[] {
    if (!this.window.slide(now) && !force && this.held.every((h) => h.state)) return [];
    const view = this.window.take(now);
    const out: VerdictChange[] = [];
    for (const h of this.held) {
      const c = this.judge(h, view, now);
      if (c) out.push(c);
    }
    for (const c of out) {
      this.recent.push(c);
      if (this.recent.length > MAX_CHANGES) this.recent.shift();
      for (const fn of this.subscribers) fn(c);
    }
    return out;
  }

  private judge(h: Held, view: WindowView, now: number): VerdictChange | undefined {
    const v = this.verifyOne(h.standing.spec, view);
    const reasons = [v.reason];
    if (view.flows.length === 0) reasons[0] = `no flows to verify: none started in the last ${duration(this.windowSec)}`;
    if (view.missed > 0) {
      reasons.push(`${view.missed} flow${view.missed === 1 ? ' was' : 's were'} lost (at most ${this.window.maxFlows} are held, and a live feed drops flows for a reader that falls behind): `
        + `the window is whole only from ${new Date(view.wholeSince * 1000).toISOString()}, the last ${Math.round(now - view.wholeSince)} s of ${this.windowSec} s`);
    }
    const reason = reasons.filter(Boolean).join('; ') || undefined;
    const found = notable(v.findings);
    const prev = h.state;
    const delta = findingDelta(h.notable, found);
    const changed = !prev || prev.verdict !== v.verdict || delta.appeared.length > 0 || delta.resolved.length > 0;
    h.notable = found;
    h.state = {
      spec: h.name, file: h.standing.file, verdict: v.verdict, ...(reason ? { reason } : {}),
      window: { since: view.since, until: view.until }, flows: view.flows.length, findings: v.findings,
      evaluatedAt: now, changedAt: changed ? now : prev?.changedAt ?? now,
    };
    if (!changed) return undefined;
    const summary = summaryLine({
      spec: h.name, previous: prev?.verdict ?? null, verdict: v.verdict, reason, flows: view.flows.length,
      windowSec: this.windowSec, current: [...found.values()],
    }, delta);
    return { seq: ++this.seq, at: now, spec: h.name, file: h.standing.file, previous: prev?.verdict ?? null, verdict: v.verdict, ...delta, summary };
  }

  /** As `tapwire verify --spec` runs it (src/cli/verify.ts): detectors, names, checks, evidence cap. */
  private verifyOne(spec: Spec, view: WindowView): Verdict {
    // An empty window is no evidence: its checks are not run, since `count: { atLeast: 1 }` would
    // report a quiet five minutes as a failure. verify() then says inconclusive, no flows.
    try {
      return verifyWithSpec(view.flows, view.flows.length === 0 ? undefined : spec);
    } catch (e) {
      // A bug in a detector must not stop the agent's other work: the verdict says what happened.
      return unjudged(view.flows.length, `could not evaluate: ${(e as Error).message}`);
    }
  }

  /** Each spec's state, in the order given; a spec not yet evaluated is left out. */
  current(): SpecState[] {
    return this.held.flatMap((h) => (h.state ? [h.state] : []));
  }

  /** The last 200 changes, oldest first; with `afterSeq`, only those after it. */
  changes(afterSeq = 0): VerdictChange[] {
    return this.recent.filter((c) => c.seq > afterSeq);
  }

  subscribe(fn: (c: VerdictChange) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /**
   * Evaluates every `intervalMs` (when anything changed), and never more than a tenth of the time:
   * after an evaluation that took T, the next waits at least 9·T. A full window under load (50 000
   * flows take about 2 s to judge) would otherwise take the agent's thread from its capture.
   * The timer does not keep the process alive.
   */
  start(): void {
    if (this.timer) return;
    const next = (waitMs: number) => {
      this.timer = setTimeout(() => {
        const t0 = performance.now();
        this.evaluate();
        next(Math.max(this.intervalMs, 9 * (performance.now() - t0)));
      }, waitMs);
      this.timer.unref();
    };
    next(this.intervalMs);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
