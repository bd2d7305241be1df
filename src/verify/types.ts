import type { FlowRecord } from '../flows/index.js';

/** One piece of evidence: the flow, and where to find it again in a capture. */
export interface Evidence {
  flowId: string;
  time: number;
  /** Frame numbers of the request's first and the response's last packet (captures only). */
  frames?: [number, number];
  summary: string;
}

export type Severity = 'error' | 'warning' | 'info';

/** The JSON contract of issue 5: kind, severity, summary, evidence, details. */
export interface Finding {
  kind: string;
  severity: Severity;
  summary: string;
  evidence: Evidence[];
  details: Record<string, unknown>;
  /** Ids of the cluster events (the verdict's `events`) that overlap this finding's evidence: its pods, its time span. */
  events?: string[];
}

export function evidence(r: FlowRecord, summary: string): Evidence {
  const first = r.request?.frames?.[0] ?? r.response?.frames?.[0];
  const last = r.response?.frames?.[1] ?? r.request?.frames?.[1];
  return { flowId: r.id, time: r.start, ...(first !== undefined && last !== undefined ? { frames: [first, last] as [number, number] } : {}), summary };
}
