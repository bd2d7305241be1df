import { sqlHalves, type FlowRecord } from '../flows/index.js';
import { isTransactionControl } from './calls.js';
import type { DetectorThresholds } from './config.js';
import type { DetectContext } from './context.js';
import { evidence, type Finding } from './types.js';

/**
 * `unparameterised-sql`: statements that differ only in literals (one fingerprint, several texts)
 * were built by string interpolation instead of bind parameters: a plan-cache and injection risk.
 */
export function detectUnparameterisedSql(flows: readonly FlowRecord[], _ctx: DetectContext, t: DetectorThresholds['unparameterised-sql']): Finding[] {
  const byFp = new Map<string, { texts: Set<string>; flows: FlowRecord[] }>();
  for (const r of flows) {
    if (!sqlHalves(r) || isTransactionControl(r)) continue;
    const q = r.request;
    if (!q?.fingerprint || !q.query || (q.params?.length ?? 0) > 0 || hasPlaceholders(q.query)) continue;
    // Only statements that carry literals where the fingerprint has placeholders.
    if (!q.fingerprint.includes('?')) continue;
    const g = byFp.get(q.fingerprint) ?? byFp.set(q.fingerprint, { texts: new Set(), flows: [] }).get(q.fingerprint)!;
    g.texts.add(q.query);
    g.flows.push(r);
  }
  const out: Finding[] = [];
  for (const [fp, g] of byFp) {
    if (g.texts.size < t.minDistinct) continue;
    out.push({
      kind: 'unparameterised-sql',
      severity: 'warning',
      summary: `${g.texts.size} different statements differ only in literals: ${fp}`,
      evidence: g.flows.map((r) => evidence(r, (r.request as { query?: string }).query ?? '')),
      details: { fingerprint: fp, distinctTexts: g.texts.size, count: g.flows.length },
    });
  }
  return out;
}

/**
 * Whether the statement text has bind placeholders (`?`, `$1`) outside quotes: a statement being
 * prepared (MySQL's COM_STMT_PREPARE, a PostgreSQL Parse on its own) is the parameterised form,
 * not one built with literals, though it carries no parameters itself.
 */
function hasPlaceholders(sql: string): boolean {
  return /\?|\$\d/.test(sql.replace(/'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|`[^`]*`/g, ''));
}
