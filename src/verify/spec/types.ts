import type { FlowRecord } from '../../flows/index.js';
import type { DetectorConfig } from '../config.js';
import type { ServiceNames } from '../services.js';
import type { Severity } from '../types.js';
import type { BodyCheck } from './body.js';

/**
 * A loaded spec: validated against schema/tapwire-spec.schema.json, selectors parsed, regexes and
 * body assertions compiled. Nothing in it can fail to evaluate.
 */
export interface Spec {
  /** The file it came from (or the name given to parseSpec), for messages. */
  source: string;
  version: 1;
  /** Names for addresses, as written (`services:`), and the lookup built from them. */
  services: Record<string, string[]>;
  names: ServiceNames;
  /** Evidence entries per finding (`evidence.max`), when the spec sets it. */
  maxEvidence?: number;
  /** Thresholds, enabled and severity per built-in detector (`detectors:`). */
  detectors: DetectorConfig;
  checks: Check[];
}

/** One entry of `checks:`. Exactly one of select (with expect), noSecretLeaves, order and cache is set. */
export interface Check {
  name: string;
  severity: Severity;
  /** Where it is in the spec, `checks[2]`, for messages. */
  at: string;
  select?: Selector;
  expect?: Expect;
  noSecretLeaves?: { service: string; allowTo: string[] };
  order?: Selector[];
  cache?: CacheExpect;
}

/** `cache:`: the hit ratio of Redis reads whose key matches a glob must reach a minimum. */
export interface CacheExpect {
  /** The key glob as written (Redis's KEYS syntax: glob.ts), and compiled. */
  key: string;
  match: RegExp;
  /** 0 to 1: hits over reads whose outcome was seen. */
  minHitRatio: number;
  /** The Redis server, as written (a name from `services:` or an address); any server when absent. */
  service?: string;
}

/** Which flows a check is about: a protocol, field tests, and optionally one of the matches. */
export interface Selector {
  /** The selector as written (string form) or rendered (object form), for summaries. */
  text: string;
  /** A registered protocol: http (HTTP/1.x), http2, grpc, postgres, tls, redis, mysql; undefined for `*`. */
  protocol?: string;
  tests: FieldTest[];
  pick?: Pick;
}

export type Pick = { kind: 'first' } | { kind: 'last' } | { kind: 'nth'; n: number };

/** One `key=value` of a selector. */
export interface FieldTest {
  key: string;
  /** The service named, for `service` and `client` (what the spec is about: see namedServices). */
  value?: string;
  /** True or false; undefined when the record lacks the data to decide (the half it reads was not seen, a header block not decoded). */
  test(r: FlowRecord, names: ServiceNames): boolean | undefined;
}

/** `count`, `perRequest.sql`, `perRequest.calls`: bounds on a number. */
export interface Range {
  exactly?: number;
  atLeast?: number;
  atMost?: number;
}

export interface Backoff {
  /** The delay expected before retry i+1 (0-based), in ms. */
  expectedMs(i: number): number;
  /** Relative: 0.25 accepts delays within ±25 % of the expected one. */
  tolerance: number;
  /** The schedule as written, for details. */
  spec: { schedule: number[] } | { initialMs: number; factor: number; maxMs?: number };
}

export type LatencyStat = 'max' | 'p50' | 'p90' | 'p95' | 'p99';

export interface HeaderExpect {
  /** Lower-case field name. */
  name: string;
  present?: boolean;
  absent?: boolean;
  equals?: string;
  matches?: RegExp;
}

/** A status test: `503`, `5xx`, `>=500`, `!=200`, with the text for messages. */
export interface StatusTest {
  text: string;
  test(status: number): boolean;
}

export interface MessageExpect {
  headers?: HeaderExpect[];
  body?: BodyCheck;
  /** The body assertion as written, for finding details. */
  bodySpec?: unknown;
}

export interface ResponseExpect extends MessageExpect {
  status?: StatusTest;
  grpcStatus?: StatusTest;
}

export interface Expect {
  count?: Range;
  backoff?: Backoff;
  latency?: Partial<Record<LatencyStat, number>>;
  request?: MessageExpect;
  response?: ResponseExpect;
  perRequest?: { sql?: Range; calls?: Range };
}
