import type { Severity } from './types.js';

/** Every built-in detector, by the `kind` its findings carry (issue 5). */
export const DETECTOR_KINDS = [
  'retry', 'redundant-call', 'n-plus-one', 'error-status', 'slow', 'secret-forwarded',
  'missing-propagation', 'cache', 'unparameterised-sql', 'payload-shape', 'connection-churn', 'cache-aside',
] as const;
export type DetectorKind = (typeof DETECTOR_KINDS)[number];

/**
 * Thresholds of each detector, with their defaults. A spec's `detectors:` section overrides any of
 * them, and may set `enabled: false` or a `severity` for the detector's warning- and error-level
 * findings (info findings, such as retries that back off, stay info).
 */
export const DETECTOR_DEFAULTS = {
  // maxAttempts: a longer run is cut into runs of this many, so load cannot make one endless finding.
  retry: { maxGapMs: 60_000, maxAttempts: 20 },
  'redundant-call': { minCount: 3, errorCount: 10 },
  'n-plus-one': { minCount: 5, errorCount: 10 },
  'error-status': { burst4xx: 5 },
  slow: { budgetMs: 1000, outlierFactor: 5, minSamples: 5 },
  'secret-forwarded': { headers: [] as string[], allowTo: [] as string[] },
  'missing-propagation': {
    headers: ['traceparent', 'tracestate', 'x-request-id', 'x-correlation-id', 'x-b3-traceid', 'b3', 'uber-trace-id'] as string[],
  },
  cache: { minRepeats: 2, requireCacheControl: [] as string[] },
  'unparameterised-sql': { minDistinct: 3 },
  'payload-shape': { minSamples: 2 },
  'connection-churn': { minRequests: 5 },
  // minKeys/errorKeys: keys written after a miss and never read again, of one pattern with a part that never
  // repeats (the timestamp in the key). minDbAfterSet/errorDbAfterSet: database calls for a key still fresh.
  'cache-aside': { minKeys: 3, errorKeys: 10, minDbAfterSet: 2, errorDbAfterSet: 10 },
} satisfies Record<DetectorKind, Record<string, unknown>>;

export type DetectorThresholds = typeof DETECTOR_DEFAULTS;

/** One detector's settings as a spec gives them: any threshold, plus enabled and severity. */
export type DetectorSetting<K extends DetectorKind> = Partial<DetectorThresholds[K]> & { enabled?: boolean; severity?: Severity };
export type DetectorConfig = { [K in DetectorKind]?: DetectorSetting<K> };

/** Evidence entries listed per finding; the total is always stated in details.evidenceTotal. */
export const DEFAULT_MAX_EVIDENCE = 20;

/** The thresholds a detector runs with: defaults, then the spec's overrides. */
export function thresholds<K extends DetectorKind>(kind: K, config: DetectorConfig = {}): DetectorThresholds[K] {
  const { enabled: _e, severity: _s, ...over } = (config[kind] ?? {}) as DetectorSetting<K>;
  return { ...DETECTOR_DEFAULTS[kind], ...over } as DetectorThresholds[K];
}
