import type { RunRecord } from '../../src/run/backend.js';

let n = 0;

/** A kept run with defaults, for history and run-log tests; ids are unique per call. */
export function runRecord(over: Partial<RunRecord> = {}): RunRecord {
  n++;
  return {
    id: `run-${n.toString(16).padStart(12, '0')}`, startedAt: 1_800_000_000 + n, endedAt: 1_800_000_001 + n,
    command: 'npm test', cwd: '/src/shop', exitCode: 0, verdict: 'pass', findings: [], snapshot: `snap-${n.toString(16).padStart(12, '0')}`,
    source: 'local', flows: 10, touched: { services: [], endpoints: [] }, ...over,
  };
}

export function finding(fingerprint: string, flowId = 'abc-1'): RunRecord['findings'][number] {
  return { fingerprint, kind: fingerprint.split(' ')[0]!, severity: 'error', summary: fingerprint, evidence: [{ flowId, time: 1_800_000_000, summary: 'the inbound request' }] };
}
