/**
 * verify/: judging flows: causal grouping (which call belongs to which inbound request), the
 * built-in detectors, the spec language and its checks, the verdict with its summary and coverage,
 * diff, the service map.
 */
export { failed } from './calls.js';
export { diffFlows, diffText, findingFingerprint, type DiffSide, type EndpointStats, type FlowDiff } from './diff.js';
export { globToRegExp, pathTemplate } from './endpoint.js';
export { ServiceMap, type Edge } from './servicemap.js';
export { ServiceNames } from './services.js';
export { SpecError, loadSpecFile, parseSpec, verifyWithSpec, type Spec } from './spec/index.js';
export type { Evidence, Finding, Severity } from './types.js';
export { undecodedCoverage, unjudged, verdictText, windowLines, type Verdict, type VerdictName } from './verdict.js';
export { hasTls, namedNotDecrypted, tlsConnections, tlsCoverageLines, tlsCoverageOf, TLS_NOT_DECRYPTED, type TlsCoverage, type TlsNotDecryptedCode, type TlsServerCoverage, type TlsUnreadProcess } from './tls-coverage.js';
export { NODE_UNKNOWN, TLS_NOTE, TLS_SEEN_NOTE, workloadsOf, workloadsText, type NodeEntry, type WorkloadEntry, type WorkloadsAnswer } from './workloads.js';
export { findingEventsClause, firstStart, happened, lastEnd, podsInvolved, type PartialData, type VerdictEvent, type WindowContext } from './events.js';
