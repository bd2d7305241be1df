import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findingsPage } from '../../src/mcp/tools/verify.js';
import { boundVerdict, verdictResultText } from '../../src/mcp/verdict.js';
import type { Verdict } from '../../src/verify/verdict.js';
import { connect, DEMO, FIXED, flowOf, PGBENCH, ROOT, text } from './helpers.js';

/**
 * Large results stay within the bound (about 20 000 tokens, JSON characters / 4): the helper
 * checks every result's size. Evidence gives way first and a finding is never dropped; rows end a
 * page early with a cursor that reaches the rest; whatever was cut is stated.
 */

/** Four checks that fail on most of pgbench's 705 statements: over 2 000 evidence entries. */
const HUGE_SPEC = `version: 1
evidence: { max: 100000 }
checks:
  - name: no statements at all
    select: 'postgres'
    expect: { count: { atMost: 0 } }
  - name: no selects
    select: 'postgres[fingerprint="select*"]'
    expect: { count: { atMost: 0 } }
  - name: every statement under 1 microsecond
    select: 'postgres'
    expect: { latency: { max: 0.001 } }
  - name: at most ten statements
    select: 'postgres'
    expect: { count: { atMost: 10 } }
`;

type Finding = { kind: string; summary: string; evidence: unknown[]; details: { evidenceTotal?: number } };

describe('tapwire mcp: bounded results', () => {
  let t: Awaited<ReturnType<typeof connect>>, big: Awaited<ReturnType<typeof connect>>;
  beforeAll(async () => {
    t = await connect();
    big = await connect({ maxTokens: 100_000_000 });
  });
  afterAll(async () => {
    await t.close();
    await big.close();
  });

  it('list_flows of 705 flows at limit 1000 ends the page early; the cursor reaches the rest', async () => {
    expect(t.ctx.maxTokens).toBe(20_000);
    const first = (await t.call('list_flows', { capture: PGBENCH, limit: 1000 })).structuredContent;
    expect(first.flows.length).toBeGreaterThan(50);
    expect(first.flows.length).toBeLessThan(705);
    expect(first.truncated).toMatchObject({ rowsOmitted: 705 - first.flows.length, note: expect.stringMatching(/bounded to about 20000 tokens.*cursor/) });
    expect(first.next).toBeDefined();
    const ids: string[] = first.flows.map((f: { id: string }) => f.id);
    let cursor = first.next;
    while (cursor) {
      const p = (await t.call('list_flows', { capture: PGBENCH, limit: 1000, cursor })).structuredContent;
      ids.push(...p.flows.map((f: { id: string }) => f.id));
      cursor = p.next;
    }
    const all = (await big.call('list_flows', { capture: PGBENCH, limit: 1000 })).structuredContent;
    expect(all.truncated).toBeUndefined();
    expect(ids).toEqual(all.flows.map((f: { id: string }) => f.id));
    expect(ids).toHaveLength(705);
  });

  it('verify with thousands of evidence entries: evidence shrinks, every finding stays, the cut is stated', async () => {
    const full = (await big.call('verify', { capture: PGBENCH, spec: HUGE_SPEC })).structuredContent;
    const entries = full.findings.reduce((n: number, f: Finding) => n + f.evidence.length, 0);
    expect(entries).toBeGreaterThan(2000);
    const r = await t.call('verify', { capture: PGBENCH, spec: HUGE_SPEC });
    const v = r.structuredContent;
    expect(v.verdict).toBe('fail');
    expect(v.findings.map((f: Finding) => f.summary)).toEqual(full.findings.map((f: Finding) => f.summary));
    const kept = v.findings.reduce((n: number, f: Finding) => n + f.evidence.length, 0);
    expect(kept).toBeGreaterThan(0);
    expect(v.truncated!.evidenceOmitted).toBe(entries - kept);
    expect(v.truncated!.detailsOmitted).toBeUndefined();
    // Each finding still says how much evidence it had.
    v.findings.forEach((f: Finding, i: number) => expect(f.details.evidenceTotal).toBe(full.findings[i].details.evidenceTotal));
    expect(text(r)).toMatch(/result bounded to about 20000 tokens: \d+ evidence entries left out \(every finding is kept/);
  });

  it('a tighter bound: fewer evidence entries, still every finding; rows end early with a cursor', async () => {
    const small = await connect({ maxTokens: 2500 });
    try {
      const full = (await big.call('verify', { capture: PGBENCH, spec: HUGE_SPEC })).structuredContent;
      const v = (await small.call('verify', { capture: PGBENCH, spec: HUGE_SPEC })).structuredContent;
      expect(v.findings.map((f: Finding) => f.summary)).toEqual(full.findings.map((f: Finding) => f.summary));
      expect(v.findings.reduce((n: number, f: Finding) => n + f.evidence.length, 0)).toBeLessThan(60);
      expect(v.truncated!.evidenceOmitted).toBeGreaterThan(2000);
      const a = (await small.call('analyze_capture', { capture: PGBENCH, limit: 200 })).structuredContent;
      expect(a.flows.length).toBeLessThan(200);
      expect(a.truncated!.rowsOmitted).toBe(200 - a.flows.length);
      expect(a.next).toBeDefined();
    } finally {
      await small.close();
    }
  });

  it('get_flow: bodies asked for in full are cut further to fit, and it says so', async () => {
    const small = await connect({ maxTokens: 5000 });
    try {
      const large = 'pcaps/http1/large-bodies.pcap';
      const id = (await big.call('list_flows', { capture: large, filter: 'response.bodySize > 100000', limit: 1 })).structuredContent.flows[0].id;
      const r = (await small.call('get_flow', { capture: large, id, include_bodies: true, max_body_bytes: 1 << 20 })).structuredContent;
      expect(r.truncated!.bodyBytesOmitted).toBeGreaterThan(0);
      expect(r.payloads.join(' ')).toMatch(/response\.body \(cut to \d+ of \d+ bytes\)/);
    } finally {
      await small.close();
    }
  });
});

describe('tapwire mcp: bounded flows and verdicts past the bound', () => {
  it('get_flow: a real PostgreSQL record with a 20 000-row INSERT as its query is cut to fit, and says so', async () => {
    const t = await connect();
    try {
      // A record decoded from pgbench's capture, its query text enlarged in the cache get_flow reads.
      const c = await t.ctx.captures.load(PGBENCH, ROOT);
      const rec = c.flows.find((f) => f.protocol === 'postgres' && typeof (f as { request?: { query?: string } }).request?.query === 'string') as unknown as { id: string; request: { query: string } };
      const big = `INSERT INTO t VALUES ${Array.from({ length: 20_000 }, (_, i) => `(${i}, 'some text value ${i}')`).join(',')}`;
      rec.request.query = big;
      expect(big.length / 4).toBeGreaterThan(100_000);
      const r = await t.call('get_flow', { capture: PGBENCH, id: rec.id });
      const out = r.structuredContent;
      expect(out.flow.id).toBe(rec.id);
      const flow = flowOf(out.flow, 'postgres');
      expect(flow.request!.query).toMatch(/^INSERT INTO t VALUES \(0, 'some text value 0'\),.*…$/);
      expect(out.truncated).toMatchObject({ fieldsCut: 1, charsOmitted: big.length - flow.request!.query!.length + 1 });
      expect(out.payloads).toContainEqual(expect.stringMatching(new RegExp(`^request\\.query \\(cut to \\d+ of ${big.length} characters\\)$`)));
      expect(text(r)).toMatch(/1 long field cut/);
      // With bodies asked for, the same bound holds.
      await t.call('get_flow', { capture: PGBENCH, id: rec.id, include_bodies: true });
    } finally {
      await t.close();
    }
  });

  /** `n` findings cloned from the demo's real ones: errors first, each with five evidence entries. */
  async function manyFindings(n: number): Promise<Verdict> {
    const t = await connect();
    try {
      const demo = (await t.call('verify', { capture: DEMO })).structuredContent as Verdict;
      const order = [...demo.findings].sort((a, b) => (a.severity === 'error' ? 0 : 1) - (b.severity === 'error' ? 0 : 1));
      const findings = Array.from({ length: n }, (_, i) => {
        const f = structuredClone(order[i % order.length]!);
        const ev = f.evidence[0]!;
        return {
          ...f, summary: `${f.summary} (copy ${i})`,
          evidence: Array.from({ length: 5 }, (_, j) => ({ ...ev, flowId: `${ev.flowId}-${i}-${j}` })),
          details: { ...f.details, evidenceTotal: 5 },
        };
      }).sort((a, b) => (a.severity === 'error' ? 0 : 1) - (b.severity === 'error' ? 0 : 1));
      return { ...demo, findings };
    } finally {
      await t.close();
    }
  }

  const size = (v: unknown, txt: string) => Math.ceil(JSON.stringify(v).length / 4) + Math.ceil(JSON.stringify(txt).length / 4);

  /**
   * Walks every page of a verdict of `n` findings as verify would (its cursors): each page
   * bounded, its first findings (errors) keeping their evidence, and the pages together holding
   * every finding in order, each at least as its compact form.
   */
  async function walkPages(v: Verdict): Promise<number> {
    const n = v.findings.length;
    const all = structuredClone(v.findings);
    const seen: Finding[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = boundVerdict({ ...v, findings: structuredClone(all) }, 20_000, verdictResultText, findingsPage({ capture: DEMO, cursor }, n));
      expect(size(r, verdictResultText(r))).toBeLessThanOrEqual(20_000);
      expect(r.verdict).toBe('fail');
      expect(r.coverage).toEqual(v.coverage);
      // The first page's first error keeps all its evidence; later pages keep at least some.
      const first = r.findings[0]!;
      if (first.severity === 'error') expect(first.evidence.length).toBeGreaterThanOrEqual(pages === 0 ? 5 : 1);
      const withEvidence = r.findings.filter((f) => f.evidence.length > 0);
      // Evidence goes to errors before anything else.
      if (r.findings.some((f) => f.severity === 'error' && f.evidence.length === 0)) expect(withEvidence.every((f) => f.severity === 'error')).toBe(true);
      if (r.next) expect(r.truncated).toMatchObject({ findingsOmitted: n - seen.length - r.findings.length, note: expect.stringMatching(/more findings on the next pages \(verify with cursor = next\)/) });
      expect(r.truncated?.findingsCompacted ?? 0).toBe(r.findings.length - withEvidence.length);
      seen.push(...(r.findings as Finding[]));
      cursor = r.next;
      pages++;
    } while (cursor);
    expect(seen).toHaveLength(n);
    seen.forEach((f, i) => {
      expect(f.kind).toBe(all[i]!.kind);
      expect(f.details.evidenceTotal).toBe(5);
      expect(all[i]!.summary.startsWith(f.summary.replace(/…$/, ''))).toBe(true);
    });
    return pages;
  }

  it('400 findings × 5 evidence: bounded, errors keep evidence first, the rest compact or on a next page; none is dropped', async () => {
    expect(await walkPages(await manyFindings(400))).toBeGreaterThanOrEqual(1);
  });

  it('2 000 findings: paged with a cursor, each page bounded; the pages hold every finding', async () => {
    expect(await walkPages(await manyFindings(2000))).toBeGreaterThan(1);
    // A cursor of other arguments, or of findings that have changed, is refused by name.
    const other = findingsPage({ capture: DEMO }, 2000).cursor!(10);
    expect(() => findingsPage({ capture: FIXED, cursor: other }, 2000)).toThrow(/^cursor: not a cursor of these findings/);
    expect(() => findingsPage({ capture: DEMO, cursor: other }, 1999)).toThrow(/not a cursor of these findings/);
  });

  it('the reviewer\'s 400 findings (/tmp/review/t6.mjs): bounded pages, every finding reachable', async () => {
    const findings = Array.from({ length: 400 }, (_, i) => ({
      kind: 'error-status', severity: 'error' as const, summary: `GET /api/v1/resource-${i}/items returned 500 Internal Server Error 3 times out of 3 calls on order-service (127.0.0.2:8080)`,
      evidence: Array.from({ length: 5 }, (_, j) => ({ flowId: `abcdef012345-${i * 5 + j}`, time: 1795276026.3 + j, frames: [1, 2] as [number, number], summary: 'GET /api/v1/resource → 500' })),
      details: { evidenceTotal: 5, endpoint: `GET /api/v1/resource-${i}/items`, statuses: { 500: 3 } },
    }));
    expect(await walkPages({ verdict: 'fail', findings, summary: 'judged 1200 flows (http 1200)', coverage: { flows: 1200, incomplete: 0, byReason: {} } })).toBeGreaterThanOrEqual(1);
  });
});
