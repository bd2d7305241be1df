import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, PGBENCH, text } from './helpers.js';

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
    expect(v.truncated.evidenceOmitted).toBe(entries - kept);
    expect(v.truncated.detailsOmitted).toBeUndefined();
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
      expect(v.truncated.evidenceOmitted).toBeGreaterThan(2000);
      const a = (await small.call('analyze_capture', { capture: PGBENCH, limit: 200 })).structuredContent;
      expect(a.flows.length).toBeLessThan(200);
      expect(a.truncated.rowsOmitted).toBe(200 - a.flows.length);
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
      expect(r.truncated.bodyBytesOmitted).toBeGreaterThan(0);
      expect(r.payloads.join(' ')).toMatch(/response\.body \(cut to \d+ of \d+ bytes\)/);
    } finally {
      await small.close();
    }
  });
});
