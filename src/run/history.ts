import { globToRegExp, pathTemplate, type Evidence, type Severity, type VerdictName } from '../verify/index.js';
import type { RunRecord } from './backend.js';

/**
 * run_history and runs_touching: pure functions over kept runs (Backend.runs()), so the MCP tool,
 * a CLI and tests compute the same answer from the same records.
 *
 * Only runs whose traffic was verified say anything: a cancelled run, one whose command did not
 * start, whose snapshot could not be stopped or read, or that captured no flows (a wrong interface
 * or filter, services not up) found nothing because it looked at nothing. Counted as "absent",
 * such runs made findings look flaky; they count neither for nor against a finding, and
 * runs_touching does not judge a command by them.
 */

export interface HistoryQuery {
  /** A spec by the name it was run with (its file as given, or "inline"), its file name, or its hash. */
  spec?: string;
  /** Runs whose command contains this text. */
  command?: string;
  /** The newest this many matching runs are listed and counted (default 50). */
  limit?: number;
}

export interface RunSummary {
  id: string;
  startedAt: number;
  command: string;
  exitCode: number | null;
  verdict: VerdictName;
  cancelled?: boolean;
  timedOut?: boolean;
  snapshot?: string;
  code?: { commit: string; dirty: string };
  spec?: { name: string; hash: string };
  /** Whether its traffic was verified (see the top of this file): only then does it count for findings. */
  verified: boolean;
  /** Set when the drain was not proven: traffic may be missing, so it counts only for findings it found. */
  drained?: 'unproven';
  fingerprints: string[];
}

export interface FindingHistory {
  fingerprint: string;
  kind: string;
  severity: Severity;
  summary: string;
  /**
   * Runs it was found in, of `totalRuns` that judged it: those it was found in, and those whose
   * traffic was verified (RunSummary.verified) with a drain not known to be unproven that did not
   * find it. The other matching runs, `uncountedRuns`, say nothing about it: cancelled, not
   * started, snapshot unread, no flows, or an unproven drain (what it lacks may just be missing).
   */
  failedRuns: number;
  totalRuns: number;
  uncountedRuns: number;
  /** Epoch seconds of the first and the last run it was found in. */
  firstFailed: number;
  lastFailed: number;
  /** The last run it was found in: where to drill in (its snapshot), and the evidence it kept. */
  lastRun: { id: string; snapshot?: string };
  lastEvidence: Evidence[];
  /**
   * Found in some runs and not in others of the same command, on the same code (git HEAD and
   * uncommitted changes) and the same spec: the code did not change, the outcome did.
   */
  flaky: boolean;
  /** The code versions it was flaky on, with how many of their runs it was found in. */
  flakyOn?: { commit: string; dirty: string; failedRuns: number; totalRuns: number }[];
}

export interface History {
  /** Matching runs, newest first (at most `limit`). */
  runs: RunSummary[];
  /** Every error or warning finding seen in those runs (info findings are not failures), most often found first. */
  findings: FindingHistory[];
}

const DEFAULT_LIMIT = 50;

export function runHistory(all: readonly RunRecord[], q: HistoryQuery = {}): History {
  const runs = newestFirst(all.filter((r) => matchesSpec(r, q.spec) && (q.command === undefined || r.command.includes(q.command))))
    .slice(0, Math.max(1, q.limit ?? DEFAULT_LIMIT));
  const stats = new Map<string, FindingHistory>();
  // Oldest first, so that the last run a finding is seen in leaves its evidence.
  for (const r of [...runs].reverse()) {
    // One run may hold two findings with one fingerprint: the run counts once.
    for (const f of new Map(failures(r).map((x) => [x.fingerprint, x])).values()) {
      const s = stats.get(f.fingerprint) ?? {
        fingerprint: f.fingerprint, kind: f.kind, severity: f.severity, failedRuns: 0, totalRuns: 0, uncountedRuns: 0, firstFailed: r.startedAt, flaky: false,
      };
      stats.set(f.fingerprint, Object.assign(s, {
        summary: f.summary, failedRuns: s.failedRuns + 1, lastFailed: r.startedAt,
        lastRun: { id: r.id, ...(r.snapshot ? { snapshot: r.snapshot } : {}) }, lastEvidence: f.evidence,
      }));
    }
  }
  for (const s of stats.values()) {
    const judged = runs.filter((r) => judges(r, s.fingerprint));
    s.totalRuns = judged.length;
    s.uncountedRuns = runs.length - judged.length;
    const on = flakyVersions(judged, s.fingerprint);
    if (on.length > 0) {
      s.flaky = true;
      s.flakyOn = on;
    }
  }
  return {
    runs: runs.map(summary),
    findings: [...stats.values()].sort((a, b) => b.failedRuns - a.failedRuns || b.lastFailed - a.lastFailed),
  };
}

/**
 * Groups of runs that ran the same command on the same code with the same spec, in which the
 * fingerprint is present in some runs and absent in others (of runs that judged it: see judges).
 * Runs without a code version (not a git work tree) cannot be said to have run the same code:
 * they are never grouped.
 */
function flakyVersions(runs: readonly RunRecord[], fp: string): NonNullable<FindingHistory['flakyOn']> {
  const groups = new Map<string, RunRecord[]>();
  for (const r of runs) {
    if (!r.code) continue;
    const key = JSON.stringify([r.command, r.cwd, r.code.commit, r.code.dirty, r.spec?.hash ?? '']);
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(r);
  }
  const out: NonNullable<FindingHistory['flakyOn']> = [];
  for (const g of groups.values()) {
    const failed = g.filter((r) => found(r, fp)).length;
    if (failed > 0 && failed < g.length) out.push({ commit: g[0]!.code!.commit, dirty: g[0]!.code!.dirty, failedRuns: failed, totalRuns: g.length });
  }
  return out;
}

/**
 * The findings that make a run fail a check: errors and warnings. An info finding is an
 * observation (retries that do back off share the retry detector's fingerprint with retries that
 * do not), so a run where it is info did not fail that check.
 */
function failures(r: RunRecord): RunRecord['findings'] {
  return r.cancelled ? [] : r.findings.filter((f) => f.severity !== 'info');
}

function found(r: RunRecord, fp: string): boolean {
  return failures(r).some((f) => f.fingerprint === fp);
}

/**
 * Whether a run looked at traffic: not cancelled, and verified (runs kept before `verified` was
 * recorded: some flows were read — a snapshot not read or a command not started leaves none).
 */
function verified(r: RunRecord): boolean {
  return !r.cancelled && (r.verified ?? r.flows > 0);
}

/**
 * Whether a run says anything about a finding: it found it, or it looked at all the traffic and
 * did not. After an unproven drain the traffic of the last instant may be missing: its absence
 * there proves nothing.
 */
function judges(r: RunRecord, fp: string): boolean {
  return found(r, fp) || (verified(r) && r.drained !== 'unproven');
}

function matchesSpec(r: RunRecord, spec: string | undefined): boolean {
  if (spec === undefined) return true;
  if (!r.spec) return false;
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return r.spec.name === spec || r.spec.hash === spec || base(r.spec.name) === base(spec);
}

function summary(r: RunRecord): RunSummary {
  return {
    id: r.id, startedAt: r.startedAt, command: r.command, exitCode: r.exitCode, verdict: r.verdict,
    ...(r.cancelled ? { cancelled: true } : {}), ...(r.timedOut ? { timedOut: true } : {}),
    ...(r.snapshot ? { snapshot: r.snapshot } : {}), ...(r.code ? { code: r.code } : {}), ...(r.spec ? { spec: r.spec } : {}),
    verified: verified(r), ...(r.drained === 'unproven' ? { drained: 'unproven' as const } : {}),
    fingerprints: r.findings.map((f) => f.fingerprint),
  };
}

export interface TouchingQuery {
  /** A service as runs name it: an identity or spec name, or "ip:port". */
  service?: string;
  /**
   * An HTTP path: a concrete one (`/orders/42`, matched by its template `/orders/{id}`), a
   * template (any `{name}` is a placeholder: `/orders/{orderId}` matches `/orders/{id}`), or a
   * glob (`/orders/*`, `/api/**`).
   */
  path?: string;
}

export interface TouchingCommand {
  command: string;
  cwd: string;
  /** Kept runs of this command that touched it. */
  runs: number;
  /**
   * The run the command is judged by: its newest run whose traffic was verified. Newer runs that
   * were cancelled or verified nothing (no flows, the snapshot not read) say nothing of what the
   * command exercises: `skippedNewer` counts them.
   */
  lastRun: { id: string; startedAt: number; verdict: VerdictName; exitCode: number | null; snapshot?: string };
  skippedNewer?: number;
  /** The services and endpoints of that run that matched. */
  matched: string[];
}

/**
 * Test commands (a command in a cwd) whose last run exercised a service and/or path, most recently
 * run first. A command whose older runs touched it but whose last run did not is left out: it no
 * longer does.
 */
export function runsTouching(all: readonly RunRecord[], q: TouchingQuery): TouchingCommand[] {
  const path = q.path === undefined ? undefined : pathMatcher(q.path);
  const byCommand = new Map<string, { last?: RunRecord; matched: string[]; runs: number; skippedNewer: number }>();
  for (const r of newestFirst(all)) {
    const key = JSON.stringify([r.command, r.cwd]);
    const c = byCommand.get(key) ?? byCommand.set(key, { matched: [], runs: 0, skippedNewer: 0 }).get(key)!;
    const matched = matchesTouched(r, q.service, path);
    if (matched.length > 0) c.runs++;
    if (c.last) continue;
    if (!verified(r)) c.skippedNewer++;
    else Object.assign(c, { last: r, matched });
  }
  const out: TouchingCommand[] = [];
  for (const { last: r, matched, runs, skippedNewer } of byCommand.values()) {
    if (!r || matched.length === 0) continue;
    out.push({
      command: r.command, cwd: r.cwd, runs, matched, ...(skippedNewer ? { skippedNewer } : {}),
      lastRun: { id: r.id, startedAt: r.startedAt, verdict: r.verdict, exitCode: r.exitCode, ...(r.snapshot ? { snapshot: r.snapshot } : {}) },
    });
  }
  return out.sort((a, b) => b.lastRun.startedAt - a.lastRun.startedAt);
}

/** What of a run matches: endpoints when a path is asked (of the service, if one is), else the service. */
function matchesTouched(r: RunRecord, service: string | undefined, path: ((p: string) => boolean) | undefined): string[] {
  if (service === undefined && path === undefined) return [];
  if (path === undefined) return r.touched.services.filter((s) => s === service);
  return r.touched.endpoints.filter((e) => {
    // "service METHOD /path": the service may itself hold spaces, the path never does.
    const m = /^(.*) (\S+) (\/\S*)$/.exec(e);
    return m !== null && (service === undefined || m[1] === service) && path(m[3]!);
  });
}

function pathMatcher(p: string): (template: string) => boolean {
  if (p.includes('*')) {
    const re = globToRegExp(placeholders(p.split('?')[0]!));
    return (t) => re.test(placeholders(t));
  }
  const want = placeholders(pathTemplate(p));
  return (t) => placeholders(t) === want;
}

/** Every `{…}` segment as one placeholder: runs store `{id}`, OpenAPI names it (`{orderId}`). */
function placeholders(path: string): string {
  return path.replace(/\{[^/{}]*\}/g, '{}');
}

function newestFirst(runs: readonly RunRecord[]): RunRecord[] {
  return [...runs].sort((a, b) => b.startedAt - a.startedAt);
}
