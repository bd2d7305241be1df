import { copyFileSync, mkdtempSync, readFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILED_FILTER } from '../../src/mcp/prompts.js';
import { compileFilter } from '../../src/query/filter.js';
import { connect, DEMO, DEMO_SPEC, FIXED, flowOf, ROOT, text } from './helpers.js';

/**
 * The offline tools (a capture file per call) over an in-process client and server: the demo
 * capture has three real bugs (a cache that is not used, a credential forwarded, retries without
 * backoff), demo-fixed.pcap is the fix, and examples/specs/demo.yaml fails the one and passes the other.
 */
describe('tapwire mcp tools on capture files', () => {
  let t: Awaited<ReturnType<typeof connect>>;
  beforeAll(async () => { t = await connect(); });
  afterAll(async () => { await t.close(); });

  it('lists every tool with an input and an output schema', () => {
    expect(t.tools.map((x) => x.name).sort()).toEqual(['analyze_capture', 'cluster_events', 'diff', 'export_pcap', 'get_flow', 'list_flows', 'list_snapshots', 'list_workloads',
      'run_and_verify', 'run_history', 'runs_touching', 'service_map', 'start_snapshot', 'stop_snapshot', 'verify']);
    for (const x of t.tools) {
      expect(x.inputSchema.type, x.name).toBe('object');
      expect(x.outputSchema?.type, x.name).toBe('object');
      expect(x.description!.length, x.name).toBeGreaterThan(40);
    }
  });

  it('the SDK client itself refuses structuredContent that breaks the output schema (what these tests rely on)', async () => {
    const raw = new Server({ name: 'liar', version: '1' }, { capabilities: { tools: {} } });
    raw.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [{ name: 'x', inputSchema: { type: 'object' }, outputSchema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] } }] }));
    raw.setRequestHandler(CallToolRequestSchema, () => ({ content: [{ type: 'text', text: '' }], structuredContent: { n: 'not a number' } }));
    const [a, b] = InMemoryTransport.createLinkedPair();
    await raw.connect(a);
    const c = new Client({ name: 'c', version: '1' });
    await c.connect(b);
    await c.listTools();
    await expect(c.callTool({ name: 'x', arguments: {} })).rejects.toThrow(/does not match|structured content/i);
    await c.close();
  });

  it('verify: the demo fails with its three bugs, as the verdict JSON of tapwire verify', async () => {
    const r = await t.call('verify', { capture: DEMO });
    const v = r.structuredContent;
    expect(v.verdict).toBe('fail');
    expect(v.findings.filter((f: { severity: string }) => f.severity === 'error').map((f: { kind: string }) => f.kind).sort()).toEqual(['redundant-call', 'retry', 'secret-forwarded']);
    expect(v.coverage.flows).toBe(29);
    expect(v.source).toEqual({ capture: DEMO, flows: 29 });
    expect(v.truncated).toBeUndefined();
    expect(text(r)).toMatch(/^verdict: FAIL/);
    // The text copy is compact: a few evidence lines per finding, not the JSON.
    expect(text(r).length).toBeLessThan(JSON.stringify(v).length);
  });

  it('verify with a spec: by file, or inline YAML; the fix passes', async () => {
    const byFile = (await t.call('verify', { capture: DEMO, spec: DEMO_SPEC })).structuredContent;
    expect(byFile.verdict).toBe('fail');
    expect(byFile.spec!.name).toBe(DEMO_SPEC);
    expect(byFile.findings.some((f: { kind: string; summary: string }) => f.kind === 'check' && /order cache/.test(f.summary))).toBe(true);
    const inline = (await t.call('verify', { capture: DEMO, spec: readFileSync(join(ROOT, DEMO_SPEC), 'utf8') })).structuredContent;
    expect(inline.spec).toEqual({ name: 'inline', hash: byFile.spec!.hash });
    expect(inline.findings.map((f: { summary: string }) => f.summary)).toEqual(byFile.findings.map((f: { summary: string }) => f.summary));
    const fixed = await t.call('verify', { capture: FIXED, spec: DEMO_SPEC });
    expect(fixed.structuredContent.verdict).toBe('pass');
    expect(text(fixed)).toMatch(/^verdict: PASS/);
  });

  it('list_flows: compact rows in start order, paged by cursor to the end', async () => {
    const ids: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await t.call('list_flows', { capture: DEMO, limit: 10, ...(cursor ? { cursor } : {}) });
      const p = r.structuredContent;
      expect(p.matched).toBe(29);
      ids.push(...p.flows.map((f: { id: string }) => f.id));
      for (const f of p.flows) {
        expect(Object.keys(f)).not.toContain('request');
        expect(f.start).toMatch(/^2026-11-21T12:15:\d\d\.\d{3}Z$/);
      }
      cursor = p.next;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(new Set(ids).size).toBe(29);
    const all = (await t.call('list_flows', { capture: DEMO, limit: 1000 })).structuredContent.flows;
    expect(all.map((f: { id: string }) => f.id)).toEqual(ids);
    const starts = all.map((f: { start: string }) => f.start);
    expect([...starts].sort()).toEqual(starts);
    const row = all.find((f: { call?: string }) => f.call === 'POST /checkout');
    expect(row).toMatchObject({ protocol: 'http', client: expect.stringMatching(/^127\.0\.0\.1:\d+$/), server: '127.0.0.2:8080', status: '200' });
    const sql = all.find((f: { protocol: string }) => f.protocol === 'postgres');
    expect(sql).toMatchObject({ call: expect.stringMatching(/^SELECT /), status: 'SELECT 1', server: '127.0.0.4:5432' });
  });

  it('list_flows: a CEL filter and a time window', async () => {
    const failed = (await t.call('list_flows', { capture: DEMO, filter: 'http && response.status >= 500' })).structuredContent;
    expect(failed.flows).toHaveLength(3);
    for (const f of failed.flows) expect(f).toMatchObject({ status: '503', failed: true, call: 'POST /payments' });
    const all = (await t.call('list_flows', { capture: DEMO, limit: 1000 })).structuredContent.flows;
    const since = all[10].start, until = all[19].start;
    const win = (await t.call('list_flows', { capture: DEMO, since, until, limit: 1000 })).structuredContent;
    // Rows show milliseconds; a flow later within the `until` millisecond is after it.
    const ids = win.flows.map((f: { id: string }) => f.id);
    expect(ids.slice(0, 9)).toEqual(all.slice(10, 19).map((f: { id: string }) => f.id));
    expect(ids).not.toContain(all[9].id);
    expect(ids).not.toContain(all[20].id);
    // The prompt's "failed" filter compiles and finds the same 503s.
    expect(() => compileFilter(FAILED_FILTER)).not.toThrow();
    const viaPrompt = (await t.call('list_flows', { capture: DEMO, filter: FAILED_FILTER })).structuredContent;
    expect(viaPrompt.flows.map((f: { id: string }) => f.id)).toEqual(failed.flows.map((f: { id: string }) => f.id));
  });

  it('get_flow: the record without bodies, then with bodies cut to max_body_bytes', async () => {
    const id = (await t.call('list_flows', { capture: DEMO, filter: 'http && request.path == "/checkout"' })).structuredContent.flows[0].id;
    const bare = (await t.call('get_flow', { capture: DEMO, id })).structuredContent;
    expect(bare.flow.id).toBe(id);
    const flow = flowOf(bare.flow, 'http');
    expect(flow.request!.method).toBe('POST');
    expect(flow.request!.body).toBeUndefined();
    expect(flow.response!.body).toBeUndefined();
    expect(flow.response!.bodySize).toBeGreaterThan(0);
    expect(bare.payloads).toEqual(expect.arrayContaining([expect.stringMatching(/^request\.body/), expect.stringMatching(/^response\.body/)]));
    // Secrets are redacted in flows from capture files too.
    expect(flow.request!.headers.authorization).toMatch(/redacted/);
    const full = (await t.call('get_flow', { capture: DEMO, id, include_bodies: true })).structuredContent;
    expect(JSON.parse(flowOf(full.flow, 'http').response!.body!)).toMatchObject({ status: 'paid' });
    expect(full.payloads).toEqual([]);
    const cut = (await t.call('get_flow', { capture: DEMO, id, include_bodies: true, max_body_bytes: 8 })).structuredContent;
    expect(Buffer.byteLength(flowOf(cut.flow, 'http').response!.body!)).toBeLessThanOrEqual(8);
    expect(cut.payloads.join(' ')).toMatch(/response\.body \(cut to 8 of \d+ bytes\)/);
  });

  it('service_map: one edge per caller, server and protocol', async () => {
    const r = await t.call('service_map', { capture: DEMO });
    const edges = r.structuredContent.edges;
    expect(edges).toHaveLength(3);
    expect(edges.find((e: { dst: string }) => e.dst === '127.0.0.3:8081')).toMatchObject({ src: '127.0.0.2', protocol: 'http', count: 4, errors: 3 });
    expect(text(r)).toMatch(/127\.0\.0\.2 → 127\.0\.0\.3:8081 http: 4 calls, 3 errors/);
    // since/until narrow a capture: the first second of the demo has no payment calls yet.
    const early = (await t.call('service_map', { capture: DEMO, until: '2026-11-21T12:15:35.700Z' })).structuredContent;
    expect(early.source).toEqual({ capture: DEMO, until: '2026-11-21T12:15:35.700Z', flows: 24 });
    expect(early.edges.map((e: { dst: string }) => e.dst).sort()).toEqual(['127.0.0.2:8080', '127.0.0.4:5432']);
  });

  it('diff: the fix resolves the three bugs; the other way round is a regression', async () => {
    const fix = (await t.call('diff', { before: DEMO, after: FIXED })).structuredContent;
    expect(fix.regression).toBe(false);
    expect(fix.findings.resolved.filter((f: { severity: string }) => f.severity === 'error').map((f: { kind: string }) => f.kind).sort()).toEqual(['redundant-call', 'retry', 'secret-forwarded']);
    const back = await t.call('diff', { before: FIXED, after: DEMO });
    expect(back.structuredContent.regression).toBe(true);
    expect(back.structuredContent.regressions.join('\n')).toMatch(/new error finding: retry/);
    expect(text(back)).toMatch(/REGRESSION/);
  });

  it('analyze_capture: what the decode saw, and the first rows', async () => {
    const r = await t.call('analyze_capture', { capture: 'pcaps/http1/mix.pcap', limit: 5 });
    const a = r.structuredContent;
    expect(a.capture).toBe(join(ROOT, 'pcaps/http1/mix.pcap'));
    expect(a.summary).toMatchObject({ format: 'pcap', flows: 127, protocols: { http: 16 }, violations: { total: 0 } });
    expect(a.summary.packets).toBe(392);
    expect(a.flows).toHaveLength(5);
    expect(a.matched).toBe(127);
    expect(a.next).toBeDefined();
    // The cursor continues in list_flows, which pages the same capture the same way.
    const next = (await t.call('list_flows', { capture: 'pcaps/http1/mix.pcap', cursor: a.next, limit: 5 })).structuredContent;
    const first10 = (await t.call('list_flows', { capture: 'pcaps/http1/mix.pcap', limit: 10 })).structuredContent.flows;
    expect([...a.flows, ...next.flows]).toEqual(first10);
    expect(text(r)).toMatch(/127 flows \(request\/response exchanges and SQL statements\); connections by protocol: http 16\n.*\n0 protocol violations\n5 flows on this page, of 127 matching; more: pass cursor/);
  });

  it('a capture is decoded again when the file changes (kept by path, mtime and size)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-mcp-cache-'));
    const file = join(dir, 'run.pcap');
    copyFileSync(join(ROOT, DEMO), file);
    expect((await t.call('verify', { capture: file })).structuredContent.verdict).toBe('fail');
    copyFileSync(join(ROOT, FIXED), file);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect((await t.call('verify', { capture: file })).structuredContent.coverage.flows).toBe(18);
  });

  it('prompts walk the loop and name the tools in order', async () => {
    expect((await t.client.listPrompts()).prompts.map((p) => p.name).sort()).toEqual(['investigate-errors', 'verify-my-change']);
    const p = await t.client.getPrompt({ name: 'verify-my-change', arguments: { command: 'npm test', service: 'payment-service' } });
    const body = (p.messages[0]!.content as { text: string }).text;
    const order = ['runs_touching', 'run_and_verify', 'get_flow', 'run_history', 'diff'].map((name) => body.indexOf(name));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    expect(body).toContain('"npm test"');
    const q = await t.client.getPrompt({ name: 'investigate-errors', arguments: { since: '2026-11-21T12:00:00Z', service: 'payment-service' } });
    const text2 = (q.messages[0]!.content as { text: string }).text;
    expect(text2).toMatch(/service_map[\s\S]*list_flows[\s\S]*get_flow[\s\S]*verify/);
    const filter = /filter ("(?:[^"\\]|\\.)*")/.exec(text2)![1]!;
    expect(() => compileFilter(JSON.parse(filter))).not.toThrow();
  });

  it('resources: templates for flows, snapshots and their pcaps; verdicts need an agent', async () => {
    const templates = (await t.client.listResourceTemplates()).resourceTemplates.map((r) => r.uriTemplate).sort();
    expect(templates).toEqual(['flow://{id}', 'pcap://{snapshot}', 'snapshot://{id}']);
    expect((await t.client.listResources()).resources.map((r) => r.uri)).toEqual(['verdicts://current']);
    const v = await t.client.readResource({ uri: 'verdicts://current' });
    expect(JSON.parse((v.contents[0] as { text: string }).text)).toMatchObject({ available: false, reason: expect.stringMatching(/agent started with --spec/) });
  });
});
