import { randomBytes } from 'node:crypto';
import { RunLog } from '../store/index.js';
import type { RunRecord } from './backend.js';

/** A run record that cannot be kept; the message names the field and what was wrong. */
export class RunRecordError extends Error {
  constructor(readonly field: string, what: string) {
    super(`${field}: ${what}`);
    this.name = 'RunRecordError';
  }
}

export const RUN_ID = /^run-[0-9a-f]{12}$/;

export function newRunId(): string {
  return `run-${randomBytes(6).toString('hex')}`;
}

/**
 * Bounds on what a kept run may hold, so one line of the run log stays small: a run with more is
 * refused rather than kept in part (run.ts caps what it writes well inside these).
 */
const MAX_TEXT = 8192;
const MAX_FINDINGS = 1000;
const MAX_EVIDENCE = 20;
const MAX_TOUCHED = 2000;

type Obj = Record<string, unknown>;

/**
 * Checks a run record from the wire (POST /api/runs) or the run log, field by field. Throws a
 * RunRecordError naming the first bad field (`findings[3].severity: expected one of …`).
 */
export function parseRunRecord(v: unknown): RunRecord {
  const r = object(v, 'body');
  known(r, '', ['id', 'startedAt', 'endedAt', 'command', 'cwd', 'exitCode', 'signal', 'timedOut', 'cancelled', 'code', 'spec',
    'verdict', 'reason', 'findings', 'snapshot', 'source', 'flows', 'drained', 'verified', 'touched']);
  const id = text(r.id, 'id');
  if (!RUN_ID.test(id)) throw new RunRecordError('id', `"${id.slice(0, 40)}" is not a run id ("run-" and 12 hex digits)`);
  const startedAt = time(r.startedAt, 'startedAt'), endedAt = time(r.endedAt, 'endedAt');
  if (endedAt < startedAt) throw new RunRecordError('endedAt', `${endedAt} is before startedAt ${startedAt}`);
  text(r.command, 'command');
  text(r.cwd, 'cwd');
  if (r.exitCode !== null && !(Number.isInteger(r.exitCode) && (r.exitCode as number) >= 0 && (r.exitCode as number) <= 255)) {
    throw new RunRecordError('exitCode', `expected an exit status 0-255 or null, got ${JSON.stringify(r.exitCode)}`);
  }
  optional(r.signal, 'signal', text);
  optional(r.timedOut, 'timedOut', bool);
  optional(r.cancelled, 'cancelled', bool);
  optional(r.code, 'code', (c, at) => pair(c, at, ['commit', 'dirty']));
  optional(r.spec, 'spec', (s, at) => pair(s, at, ['name', 'hash']));
  oneOf(r.verdict, 'verdict', ['pass', 'fail', 'inconclusive']);
  optional(r.reason, 'reason', text);
  list(r.findings, 'findings', MAX_FINDINGS).forEach((f, i) => finding(f, `findings[${i}]`));
  optional(r.snapshot, 'snapshot', text);
  oneOf(r.source, 'source', ['agent', 'local']);
  if (!(Number.isInteger(r.flows) && (r.flows as number) >= 0)) throw new RunRecordError('flows', `expected a whole number, got ${JSON.stringify(r.flows)}`);
  optional(r.drained, 'drained', (d, at) => oneOf(d, at, ['proven', 'unproven']));
  optional(r.verified, 'verified', bool);
  const t = object(r.touched, 'touched');
  known(t, 'touched.', ['services', 'endpoints']);
  for (const k of ['services', 'endpoints']) list(t[k], `touched.${k}`, MAX_TOUCHED).forEach((s, i) => text(s, `touched.${k}[${i}]`));
  return v as RunRecord;
}

/** Why `v` is not a run record, or undefined: the run log's check on every line it reads. */
export function runRecordProblem(v: unknown): string | undefined {
  try {
    parseRunRecord(v);
    return undefined;
  } catch (e) {
    if (e instanceof RunRecordError) return e.message;
    throw e;
  }
}

/** The run log of a data directory (`runs.jsonl`), checking every line it reads. */
export function openRunLog(dir: string): RunLog<RunRecord> {
  return RunLog.open<RunRecord>(dir, { check: runRecordProblem });
}

function finding(v: unknown, at: string): void {
  const f = object(v, at);
  known(f, `${at}.`, ['fingerprint', 'kind', 'severity', 'summary', 'evidence']);
  for (const k of ['fingerprint', 'kind', 'summary']) text(f[k], `${at}.${k}`);
  oneOf(f.severity, `${at}.severity`, ['error', 'warning', 'info']);
  list(f.evidence, `${at}.evidence`, MAX_EVIDENCE).forEach((e, i) => {
    const ev = object(e, `${at}.evidence[${i}]`);
    known(ev, `${at}.evidence[${i}].`, ['flowId', 'time', 'frames', 'summary']);
    text(ev.flowId, `${at}.evidence[${i}].flowId`);
    time(ev.time, `${at}.evidence[${i}].time`);
    text(ev.summary, `${at}.evidence[${i}].summary`);
    optional(ev.frames, `${at}.evidence[${i}].frames`, (fr, where) => {
      const xs = list(fr, where, 2);
      if (xs.length !== 2 || !xs.every((x) => Number.isInteger(x))) throw new RunRecordError(where, 'expected [first, last] frame numbers');
    });
  });
}

function object(v: unknown, at: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RunRecordError(at, `expected an object, got ${kindOf(v)}`);
  return v as Obj;
}

function known(o: Obj, prefix: string, names: string[]): void {
  const extra = Object.keys(o).find((k) => !names.includes(k));
  if (extra !== undefined) throw new RunRecordError(`${prefix}${extra}`, `unknown field (known: ${names.join(', ')})`);
}

function text(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new RunRecordError(at, `expected a string, got ${kindOf(v)}`);
  if (v.length > MAX_TEXT) throw new RunRecordError(at, `longer than ${MAX_TEXT} characters`);
  return v;
}

function bool(v: unknown, at: string): void {
  if (typeof v !== 'boolean') throw new RunRecordError(at, `expected true or false, got ${kindOf(v)}`);
}

function time(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RunRecordError(at, `expected epoch seconds, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf(v: unknown, at: string, values: string[]): void {
  if (typeof v !== 'string' || !values.includes(v)) throw new RunRecordError(at, `expected one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
}

function list(v: unknown, at: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new RunRecordError(at, `expected an array, got ${kindOf(v)}`);
  if (v.length > max) throw new RunRecordError(at, `more than ${max} entries`);
  return v;
}

function pair(v: unknown, at: string, names: string[]): void {
  const o = object(v, at);
  known(o, `${at}.`, names);
  for (const k of names) text(o[k], `${at}.${k}`);
}

function optional(v: unknown, at: string, check: (v: unknown, at: string) => void): void {
  if (v !== undefined) check(v, at);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
