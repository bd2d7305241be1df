import type { Evidence, Finding } from '../verify/index.js';
import type { z } from 'zod';
import type { snapshotSchema } from './schemas.js';

/**
 * Pieces of the text copies of tool results. Many clients show a model only a result's text, so
 * each text carries what its structuredContent carries (findings with their evidence, counts,
 * cursors, what the bound cut), in plain lines, and says what every number counts.
 */

import { plural } from '../common/index.js';

export { plural };

/** Epoch seconds as ISO 8601. */
export function iso(sec: number): string {
  return Number.isFinite(sec) ? new Date(sec * 1000).toISOString() : String(sec);
}

/** "http 2, postgres 1": a count per key, in the record's order. */
export function tally(counts: Record<string, number>): string {
  return Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ');
}

/** A value on one line: strings as they are, anything else as JSON. */
export function scalar(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
}

/** "key value, key value" for a finding's details (evidenceTotal is said with the evidence). */
function detailsText(details: Record<string, unknown>): string {
  return Object.entries(details).filter(([k]) => k !== 'evidenceTotal').map(([k, v]) => `${k} ${scalar(v)}`).join(', ');
}

export function evidenceLine(e: Evidence): string {
  return `flow ${e.flowId}${e.frames ? ` frames ${e.frames[0]}-${e.frames[1]}` : ''} at ${iso(e.time)}: ${e.summary}`;
}

/**
 * A finding: severity, kind and summary, its details, and every evidence entry the result kept,
 * with how many there were in all when fewer are listed.
 */
export function findingLines(f: Finding): string[] {
  const total = typeof f.details.evidenceTotal === 'number' ? f.details.evidenceTotal : f.evidence.length;
  const details = detailsText(f.details);
  const lines = [`  ${f.severity.toUpperCase()} ${f.kind}: ${f.summary}`];
  if (details) lines.push(`      details: ${details}`);
  const listed = total > f.evidence.length ? `, ${f.evidence.length} listed` : '';
  lines.push(`      evidence: ${plural(total, 'flow')}${listed}${f.evidence.length ? ':' : ''}`);
  lines.push(...f.evidence.map((e) => `        ${evidenceLine(e)}`));
  return lines;
}

/** "4 findings (3 errors, 1 warning)". */
export function findingsCount(fs: readonly Finding[]): string {
  const by = (s: string) => fs.filter((f) => f.severity === s).length;
  const parts = [plural(by('error'), 'error'), plural(by('warning'), 'warning'), `${by('info')} info`].filter((p) => !p.startsWith('0 '));
  return `${plural(fs.length, 'finding')}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

/** Where a result's flows came from (source.ts's SourceLabel; not imported, which would make a cycle through bound.ts). */
interface SourceLabel {
  capture?: string;
  snapshot?: string;
  since?: string;
  until?: string;
  flows: number;
}

/** Where a result's flows came from: "capture x.pcap, since …", or "live flows". */
export function sourceWhere(s: SourceLabel): string {
  const parts = [
    ...(s.capture !== undefined ? [`capture ${s.capture}`] : []),
    ...(s.snapshot !== undefined ? [`snapshot ${s.snapshot}`] : []),
    ...(s.since !== undefined ? [`since ${s.since}`] : []),
    ...(s.until !== undefined ? [`until ${s.until}`] : []),
  ];
  return parts.length ? parts.join(', ') : 'live flows';
}

/** "capture x.pcap: 29 flows". */
export function sourceText(s: SourceLabel): string {
  return `${sourceWhere(s)}: ${plural(s.flows, 'flow')}`;
}

/** The bound's statement, when the result was cut. */
export function truncatedLines(t: { note: string } | undefined): string[] {
  return t ? [`cut to fit: ${t.note}`] : [];
}

/** A snapshot on one line: id, name, open or closed, its window, filter, when made, the drain. */
export function snapshotLine(s: z.infer<typeof snapshotSchema>): string {
  const span = s.until !== undefined ? `flows from ${iso(s.since)} to ${iso(s.until)}` : `flows since ${iso(s.since)}`;
  return `${s.id}${s.name !== undefined ? ` ${JSON.stringify(s.name)}` : ''}: ${s.open ? 'open' : 'closed'}, ${span}${s.filter !== undefined ? `, filter ${s.filter}` : ', no filter'}`
    + `, created ${iso(s.createdAt)}${s.drained ? `, drain ${s.drained}` : ''}`;
}

/** The servers of undecoded traffic: "127.0.0.1:5432 mysql (1 connection), 10.0.0.9:53 udp dns (2 flows), and 3 more". */
export function undecodedServersText(u: { servers: { server: string; service?: string; transport: 'tcp' | 'udp'; reason: string; connections: number }[]; serversOmitted: number }): string {
  const each = u.servers.map((x) => `${x.server}${x.service ? ` (${x.service})` : ''} ${x.transport === 'udp' ? `udp ${x.reason} (${plural(x.connections, 'flow')})` : `${x.reason} (${plural(x.connections, 'connection')})`}`);
  return `${each.join(', ')}${u.serversOmitted ? `, and ${u.serversOmitted} more` : ''}`;
}
