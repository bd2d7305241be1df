import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Z from 'zod';
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

/**
 * The run record's one schema (zod, as every request the front doors take), for records from the
 * wire (POST /api/runs) and from the run log alike. Each part says what it expects in its own
 * words, so a refusal names the field and what was wrong: `findings[3].severity: expected one of
 * error, warning, info, got "fatal"`. zod is loaded on the first check (createRequire, its
 * CommonJS build: the schema is all its own, so no other zod instance meets it), so `tapwire run`
 * starts without it.
 */
function schema(): Z.ZodType {
  if (built) return built;
  const z: typeof Z = createRequire(import.meta.url)('zod');
  const str = (max = MAX_TEXT) => z.string({ error: (i) => `expected a string, got ${kindOf(i.input)}` }).max(max, { error: `longer than ${max} characters` });
  const bool = () => z.boolean({ error: (i) => `expected true or false, got ${kindOf(i.input)}` });
  const time = () => z.number({ error: (i) => `expected epoch seconds, got ${JSON.stringify(i.input)}` }).min(0, { error: (i) => `expected epoch seconds, got ${JSON.stringify(i.input)}` });
  const oneOf = <T extends string>(values: readonly [T, ...T[]]) => z.enum(values, { error: (i) => `expected one of ${values.join(', ')}, got ${JSON.stringify(i.input)}` });
  const list = <T extends Z.ZodType>(item: T, max: number) => z.array(item, { error: (i) => `expected an array, got ${kindOf(i.input)}` }).max(max, { error: `more than ${max} entries` });
  const object = <S extends Z.ZodRawShape>(shape: S) => z.strictObject(shape, {
    error: (i) => (i.code === 'unrecognized_keys' ? `unknown field (known: ${Object.keys(shape).join(', ')})` : `expected an object, got ${kindOf(i.input)}`),
  });
  const pair = (a: string, b: string) => object({ [a]: str(), [b]: str() });
  const evidence = object({
    flowId: str(), time: time(), summary: str(),
    frames: z.unknown().refine((v) => Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x)), { error: 'expected [first, last] frame numbers' }).optional(),
  });
  const finding = object({ fingerprint: str(), kind: str(), severity: oneOf(['error', 'warning', 'info']), summary: str(), evidence: list(evidence, MAX_EVIDENCE) });
  built = object({
    id: str().refine((id) => RUN_ID.test(id), { error: (i) => `"${String(i.input).slice(0, 40)}" is not a run id ("run-" and 12 hex digits)` }),
    startedAt: time(),
    endedAt: time(),
    command: str(),
    cwd: str(),
    exitCode: z.unknown().refine((c) => c === null || (Number.isInteger(c) && (c as number) >= 0 && (c as number) <= 255), { error: (i) => `expected an exit status 0-255 or null, got ${JSON.stringify(i.input)}` }),
    signal: str().optional(),
    timedOut: bool().optional(),
    cancelled: bool().optional(),
    code: pair('commit', 'dirty').optional(),
    spec: pair('name', 'hash').optional(),
    verdict: oneOf(['pass', 'fail', 'inconclusive']),
    reason: str().optional(),
    findings: list(finding, MAX_FINDINGS),
    snapshot: str().optional(),
    source: oneOf(['agent', 'local']),
    flows: z.unknown().refine((n) => Number.isInteger(n) && (n as number) >= 0, { error: (i) => `expected a whole number, got ${JSON.stringify(i.input)}` }),
    drained: oneOf(['proven', 'unproven']).optional(),
    verified: bool().optional(),
    touched: object({ services: list(str(), MAX_TOUCHED), endpoints: list(str(), MAX_TOUCHED) }),
  }).refine((r) => r.endedAt >= r.startedAt, { path: ['endedAt'], error: (i) => `${(i.input as { endedAt: number }).endedAt} is before startedAt ${(i.input as { startedAt: number }).startedAt}` });
  return built;
}
let built: Z.ZodType | undefined;

/**
 * Checks a run record from the wire (POST /api/runs) or the run log, field by field. Throws a
 * RunRecordError naming the first bad field (`findings[3].severity: expected one of …`).
 */
export function parseRunRecord(v: unknown): RunRecord {
  const r = schema().safeParse(v, { reportInput: true });
  if (r.success) return v as RunRecord;
  const issue = r.error.issues[0]!;
  const path = [...issue.path, ...(issue.code === 'unrecognized_keys' ? [issue.keys[0]!] : [])];
  throw new RunRecordError(fieldOf(path), issue.message);
}

/** `findings[0].evidence[1].flowId`; the record itself is `body`. */
function fieldOf(path: readonly PropertyKey[]): string {
  if (path.length === 0) return 'body';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
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

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}
