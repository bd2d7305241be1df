import type { Evidence, Severity } from '../verify/types.js';
import type { VerdictName } from '../verify/verdict.js';
import { globToRegExp, pathTemplate } from '../verify/endpoint.js';
import type { RunRecord } from './backend.js';

/**
 * run_history and runs_touching: pure functions over kept runs (Backend.runs()), so the MCP tool,
 * a CLI and tests compute the same answer from the same records.
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
  fingerprints: string[];
}

export interface FindingHistory {
  fingerprint: string;
  kind: string;
  severity: Severity;
  summary: string;
  /** Runs it was found in, of `totalRuns` counted (cancelled runs were not verified: not counted). */
  failedRuns: number;
  totalRuns: number;
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
  const counted = runs.filter((r) => !r.cancelled);
  const stats = new Map<string, FindingHistory>();
  // Oldest first, so that the last run a finding is seen in leaves its evidence.
  for (const r of [...counted].reverse()) {
    // One run may hold two findings with one fingerprint: the run counts once.
    for (const f of new Map(failures(r).map((x) => [x.fingerprint, x])).values()) {
      const s = stats.get(f.fingerprint) ?? { fingerprint: f.fingerprint, kind: f.kind, severity: f.severity, failedRuns: 0, totalRuns: counted.length, firstFailed: r.startedAt, flaky: false };
      stats.set(f.fingerprint, Object.assign(s, {
        summary: f.summary, failedRuns: s.failedRuns + 1, lastFailed: r.startedAt,
        lastRun: { id: r.id, ...(r.snapshot ? { snapshot: r.snapshot } : {}) }, lastEvidence: f.evidence,
      }));
    }
  }
  for (const s of stats.values()) {
    const on = flakyVersions(counted, s.fingerprint);
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
 * fingerprint is present in some runs and absent in others. Runs without a code version (not a
 * git work tree) cannot be said to have run the same code: they are never grouped.
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
    const failed = g.filter((r) => failures(r).some((f) => f.fingerprint === fp)).length;
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
  return r.findings.filter((f) => f.severity !== 'info');
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
    fingerprints: r.findings.map((f) => f.fingerprint),
  };
}

export interface TouchingQuery {
  /** A service as runs name it: an identity or spec name, or "ip:port". */
  service?: string;
  /**
   * An HTTP path: a concrete one (`/orders/42`, matched by its template `/orders/{id}`), a
   * template, or a glob (`/orders/*`, `/api/**`).
   */
  path?: string;
}

export interface TouchingCommand {
  command: string;
  cwd: string;
  /** Kept runs of this command that touched it. */
  runs: number;
  lastRun: { id: string; startedAt: number; verdict: VerdictName; exitCode: number | null; snapshot?: string };
  /** The services and endpoints of the last such run that matched. */
  matched: string[];
}

/** Test commands whose runs exercised a service and/or path, most recently run first. */
export function runsTouching(all: readonly RunRecord[], q: TouchingQuery): TouchingCommand[] {
  const path = q.path === undefined ? undefined : pathMatcher(q.path);
  const byCommand = new Map<string, TouchingCommand>();
  for (const r of newestFirst(all)) {
    const matched = matchesTouched(r, q.service, path);
    if (matched.length === 0) continue;
    const key = JSON.stringify([r.command, r.cwd]);
    const seen = byCommand.get(key);
    if (seen) {
      seen.runs++;
      continue;
    }
    byCommand.set(key, {
      command: r.command, cwd: r.cwd, runs: 1, matched,
      lastRun: { id: r.id, startedAt: r.startedAt, verdict: r.verdict, exitCode: r.exitCode, ...(r.snapshot ? { snapshot: r.snapshot } : {}) },
    });
  }
  return [...byCommand.values()];
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
    const re = globToRegExp(p.split('?')[0]!);
    return (t) => re.test(t);
  }
  const want = pathTemplate(p);
  return (t) => t === want;
}

function newestFirst(runs: readonly RunRecord[]): RunRecord[] {
  return [...runs].sort((a, b) => b.startedAt - a.startedAt);
}
