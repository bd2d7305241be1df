import type { FlowRecord, Peer } from '../flows/index.js';
import { callKey, callName, failed, isTransactionControl } from './calls.js';
import type { DetectorThresholds } from './config.js';
import { groupBy, type DetectContext } from './context.js';
import { evidence, type Finding } from './types.js';

export type BackoffPattern = 'constant' | 'linear' | 'exponential' | 'jittered' | 'single';

/**
 * How delays between attempts grow. Constant: all within 15 % of their mean. Exponential: each about
 * double the last (ratio 1.6–2.6). Linear: about equal steps. Anything else that grows is jittered;
 * anything that does not grow is constant.
 */
export function backoffPattern(delaysMs: number[]): BackoffPattern {
  if (delaysMs.length < 2) return 'single';
  const mean = delaysMs.reduce((a, b) => a + b, 0) / delaysMs.length;
  if (delaysMs.every((d) => Math.abs(d - mean) <= 0.15 * mean)) return 'constant';
  const ratios = delaysMs.slice(1).map((d, i) => d / delaysMs[i]!);
  if (ratios.every((q) => q >= 1.6 && q <= 2.6)) return 'exponential';
  const steps = delaysMs.slice(1).map((d, i) => d - delaysMs[i]!);
  const step = steps.reduce((a, b) => a + b, 0) / steps.length;
  if (step > 0 && steps.every((s) => Math.abs(s - step) <= 0.2 * step)) return 'linear';
  const grows = delaysMs[delaysMs.length - 1]! > delaysMs[0]! * 1.3;
  return grows ? 'jittered' : 'constant';
}

/**
 * Who made a call. A pod's name (with its namespace) when an identity source knows it: pods that
 * share a node's address are different clients. Otherwise the address, narrowed by the workload when
 * that alone is known (two workloads on one host address are two clients; one workload's pods have
 * addresses of their own, so the workload alone would merge them).
 */
export function clientOf(p: Peer): string {
  if (p.name) return `pod ${p.namespace ?? ''}/${p.name}`;
  if (p.workload) return `${p.ip} ${p.namespace ?? ''}/${p.workload}`;
  return p.ip;
}

/**
 * The same logical call repeated after a failure: attempts, the delays between them, and the
 * pattern. Delays that do not grow are errors ("retries without backoff"); growing ones are info.
 *
 * Attempt b retries attempt a only when all of these hold (issue 12: concurrent load is not retries):
 * - same call (callKey: operation, content and server) from the same client (`clientOf`); the
 *   connection may differ, since a retry often takes another pooled connection;
 * - a failed, and b started once a's answer (or reset) had been seen: no delay is negative;
 * - no other identical call of that client was in flight at any time from a's start to b's end:
 *   identical calls side by side are load, and a later one cannot be told to retry either;
 * - no other call went over a's or b's connection from a's start until b's start: a client that
 *   cycles through paths (a load generator) is not retrying the one that happens to repeat
 *   (transaction control does not count: see Lanes);
 * - a service's call retries only a call it made for the same inbound request (ctx.parents): the
 *   same call made for the next request is that request's first attempt, not a retry (a cache read
 *   failing for every request that comes); calls made for no inbound request (a client, a load
 *   generator) are judged among themselves;
 * - the delay is at most maxGapMs, and a run holds at most maxAttempts: a longer run is cut there
 *   and the next attempt starts a new one, so no finding lists thousands of attempts.
 */
export function detectRetries(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['retry']): Finding[] {
  const lanes = new Lanes(flows);
  const byCall = groupBy(flows, (r) => {
    const k = callKey(r);
    return k === undefined ? undefined : `${clientOf(r.src)}\n${k}`;
  });
  const findings: Finding[] = [];
  for (const calls of byCall.values()) {
    calls.sort(byStart);
    let run: FlowRecord[] = [];
    const flush = () => {
      if (run.length >= 2) findings.push(finding(run, ctx));
      run = [];
    };
    // The latest end among the calls before a: one still in flight at a's start ran beside it.
    let endBefore = -Infinity;
    for (let i = 0; i < calls.length; i++) {
      const b = calls[i]!;
      const a = calls[i - 1];
      const next = calls[i + 1];
      // Only a's successor in start order can retry it: an identical call that started in between
      // ran beside a (load), or started after a ended, and then it is the successor.
      const retries = a !== undefined && failed(a)
        && b.start >= a.end
        && (b.start - a.end) * 1000 <= t.maxGapMs
        && endBefore <= a.start
        && sameRequest(a, b, ctx)
        && !(next && next.start < b.end)
        && !lanes.otherCallBetween(a, b);
      if (a) endBefore = Math.max(endBefore, a.end);
      if (retries && run.length < t.maxAttempts) run.push(b);
      else {
        flush();
        run = [b];
      }
    }
    flush();
  }
  return findings;
}

/**
 * Whether b can have been made for the inbound request a was made for: the same attributed parent,
 * or, when a service handles requests concurrently and one of them was given to another request (the
 * tightest enclosing request wins), b still inside a's request or a already inside b's. A call made
 * again for a later request, after a's had ended, is not a retry of a.
 */
function sameRequest(a: FlowRecord, b: FlowRecord, ctx: DetectContext): boolean {
  const pa = ctx.parents.get(a)?.parent, pb = ctx.parents.get(b)?.parent;
  return pa === pb || (pa !== undefined && pb !== undefined && (b.end <= pa.end || a.start >= pb.start));
}

function byStart(x: FlowRecord, y: FlowRecord): number {
  return x.start - y.start || x.end - y.end;
}

/**
 * Every exchange by its connection, in start order, with the latest end so far at each position:
 * which exchanges ran on a connection during a time span, in O(log n), HTTP/2 streams that overlap
 * included. Transaction control (BEGIN, ROLLBACK, SET …) is left out: a statement retried after an
 * error is retried in a new transaction, so a ROLLBACK and a BEGIN always come between.
 */
class Lanes {
  private readonly lanes = new Map<string, { flows: FlowRecord[]; maxEnd: number[] }>();
  private readonly position = new Map<FlowRecord, number>();

  constructor(flows: readonly FlowRecord[]) {
    for (const [id, list] of groupBy(flows.filter((r) => !isTransactionControl(r)), (r) => r.connectionId)) {
      list.sort(byStart);
      const maxEnd: number[] = [];
      list.forEach((r, i) => {
        maxEnd.push(Math.max(maxEnd[i - 1] ?? -Infinity, r.end));
        this.position.set(r, i);
      });
      this.lanes.set(id, { flows: list, maxEnd });
    }
  }

  /** Whether another exchange ran on a's or b's connection after a's start and before b's start. */
  otherCallBetween(a: FlowRecord, b: FlowRecord): boolean {
    for (const id of new Set([a.connectionId, b.connectionId])) {
      const lane = this.lanes.get(id);
      if (!lane) continue;
      const before = startingBefore(lane.flows, b.start);
      const ia = id === a.connectionId ? this.position.get(a) : undefined;
      if (ia === undefined) {
        // b's connection (another from the pool): anything before b still running at a's start.
        if (before > 0 && lane.maxEnd[before - 1]! > a.start) return true;
        continue;
      }
      // a's connection: one that started after a and before b, or an earlier one still running.
      if (before > ia + 1) return true;
      if (ia > 0 && lane.maxEnd[ia - 1]! > a.start) return true;
    }
    return false;
  }
}

/** How many flows of a start-ordered list start before `time`. */
function startingBefore(list: FlowRecord[], time: number): number {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.start < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** About this long at most: a summary is one line of a report. */
const SUMMARY_CHARS = 300;

function finding(run: FlowRecord[], ctx: DetectContext): Finding {
  const delaysMs = run.slice(1).map((r, i) => Math.round((r.start - run[i]!.end) * 1000 * 100) / 100);
  const pattern = backoffPattern(delaysMs);
  const grows = pattern === 'exponential' || pattern === 'linear' || pattern === 'jittered';
  // One retry has one delay: there is no growth to judge, so it is worth a look, not an error.
  const severity = grows ? 'info' : pattern === 'single' ? 'warning' : 'error';
  const last = run[run.length - 1]!;
  const head = `${run.length} attempts of ${shorten(callName(run[0]!, ctx.names), 160)}; retries at `;
  const tail = ` (${pattern}${severity === 'error' ? ': delays do not grow' : ''})${failed(last) ? '; the last attempt failed too' : ''}`;
  return {
    kind: 'retry',
    severity,
    summary: head + delayList(delaysMs, SUMMARY_CHARS - head.length - tail.length) + tail,
    evidence: run.map((r, i) => evidence(r, `attempt ${i + 1}${failed(r) ? ', failed' : ', succeeded'}`)),
    details: { attempts: run.length, delaysMs, pattern, succeeded: !failed(last), client: clientOf(run[0]!.src), connections: new Set(run.map((r) => r.connectionId)).size },
  };
}

/** "0.20 s, 0.40 s, … 7 more": as many delays as fit in `room` characters, at least one. */
function delayList(delaysMs: number[], room: number): string {
  const secs = delaysMs.map((d) => `${(d / 1000).toFixed(2)} s`);
  const all = secs.join(', ');
  if (all.length <= room) return all;
  let shown = 1;
  const text = (n: number) => `${secs.slice(0, n).join(', ')}, … ${secs.length - n} more`;
  while (shown + 1 < secs.length && text(shown + 1).length <= room) shown++;
  return text(shown);
}

/** A name cut in the middle, so both the operation and the server stay readable. */
function shorten(s: string, max: number): string {
  if (s.length <= max) return s;
  const tail = Math.floor(max / 3);
  return `${s.slice(0, max - tail - 1)}…${s.slice(s.length - tail)}`;
}
