import type { FlowRecord } from '../flows/index.js';
import { detectCache } from './cache.js';
import { detectCacheAside } from './cache-aside.js';
import { detectConnectionChurn } from './churn.js';
import { DETECTOR_KINDS, thresholds, type DetectorConfig, type DetectorKind, type DetectorThresholds } from './config.js';
import { detectContext, type DetectContext } from './context.js';
import { detectErrorStatus } from './errors.js';
import { detectNPlusOne } from './nplusone.js';
import { detectPayloadShape } from './payload.js';
import { detectMissingPropagation } from './propagation.js';
import { detectRedundant } from './redundant.js';
import { detectRetries } from './retry.js';
import { detectSecretForwarded } from './secretfwd.js';
import { detectSlow } from './slow.js';
import { detectUnparameterisedSql } from './sql.js';
import type { Finding } from './types.js';

type Detector<K extends DetectorKind> = (flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds[K]) => Finding[];

/** The built-in detectors, by kind. They run with no spec. */
const DETECTORS: { [K in DetectorKind]: Detector<K> } = {
  retry: detectRetries,
  'redundant-call': detectRedundant,
  'n-plus-one': detectNPlusOne,
  'error-status': detectErrorStatus,
  slow: detectSlow,
  'secret-forwarded': detectSecretForwarded,
  'missing-propagation': detectMissingPropagation,
  cache: detectCache,
  'unparameterised-sql': detectUnparameterisedSql,
  'payload-shape': detectPayloadShape,
  'connection-churn': detectConnectionChurn,
  'cache-aside': detectCacheAside,
};

/**
 * Runs every enabled detector with its thresholds. A configured severity replaces the detector's
 * own for warning- and error-level findings; info findings (retries that back off) stay info.
 */
export function runDetectors(flows: readonly FlowRecord[], ctx: DetectContext, config: DetectorConfig = {}): Finding[] {
  const out: Finding[] = [];
  for (const kind of DETECTOR_KINDS) {
    const setting = config[kind];
    if (setting?.enabled === false) continue;
    const found = (DETECTORS[kind] as Detector<typeof kind>)(flows, ctx, thresholds(kind, config));
    if (setting?.severity) for (const f of found) if (f.severity !== 'info') f.severity = setting.severity;
    out.push(...found);
  }
  return out;
}

/** One detector on its own, with the thresholds a spec would give it (tests, and the spec's own uses). */
export function runDetector<K extends DetectorKind>(kind: K, flows: readonly FlowRecord[], setting: DetectorConfig[K] = {}, ctx: DetectContext = detectContext(flows)): Finding[] {
  const others = Object.fromEntries(DETECTOR_KINDS.filter((k) => k !== kind).map((k) => [k, { enabled: false }]));
  return runDetectors(flows, ctx, { ...others, [kind]: setting });
}
