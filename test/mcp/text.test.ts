import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoint } from '../../src/common/address.js';
import { viewFlow } from '../../src/mcp/bodies.js';
import { truncationNote } from '../../src/mcp/bound.js';
import { flowDetailText } from '../../src/mcp/flow-text.js';
import { findingsPage } from '../../src/mcp/tools/verify.js';
import { boundVerdict, verdictResultText } from '../../src/mcp/verdict.js';
import type { Backend, RunRecord } from '../../src/run/backend.js';
import type { Snapshot } from '../../src/store/index.js';
import { Conversation, segmentsToPcap } from '../helpers/bytes.js';
import { connect, DEMO, FIXED, flowOf, ROOT, text } from './helpers.js';

/**
 * Many clients show a model only a tool result's text (the MCP spec asks a tool with structured
 * content to return it serialised as text too): each text must carry what its structuredContent
 * carries — headers, bodies, SQL, gRPC messages, findings with their evidence, counts, cursors,
 * what the bound cut — within the same bound, every number saying what it counts.
 */

const GRPC = 'pcaps/grpc/unary.pcap';
const LARGE = 'pcaps/http1/large-bodies.pcap';

type Connected = Awaited<ReturnType<typeof connect>>;
type Ev = { flowId: string; summary: string };
type Finding = { kind: string; summary: string; evidence: Ev[]; details: Record<string, unknown> };

/** Plurals that must not be written after a 1, detectors' summaries included ("1 of 1 call"). */
const ONE_PLURAL = /\b1 (flows|calls|errors|edges|rows|findings|snapshots|runs|commands|bytes|packets|violations|entries|fields|characters|lines|warnings|connections)\b/;

/** Tokens of a text as it is sent (a JSON string), as the bound counts them. */
const textTokens = (s: string) => Math.ceil(JSON.stringify(s).length / 4);

describe('tapwire mcp: a tool result\'s text carries what its structured result carries', () => {
  let t: Connected;
  beforeAll(async () => { t = await connect(); });
  afterAll(async () => { await t.close(); });

  const firstId = async (capture: string, filter: string) =>
    (await t.call('list_flows', { capture, filter, limit: 1 })).structuredContent.flows[0].id as string;

  it('get_flow with include_bodies: both sides\' headers and values, both body previews, retry-after (the demo\'s 503 to POST /payments)', async () => {
    const id = await firstId(DEMO, 'http && request.path == "/payments" && response.status == 503');
    const r = await t.call('get_flow', { capture: DEMO, id, include_bodies: true });
    const flow = flowOf(r.structuredContent.flow, 'http');
    const txt = text(r);
    expect(txt).toMatch(/^\s+retry-after: 1$/m);
    for (const side of ['request', 'response'] as const) {
      expect(Object.keys(flow[side]!.headers).length).toBeGreaterThan(3);
      for (const [k, v] of Object.entries(flow[side]!.headers)) expect(txt).toContain(`${k}: ${v}`);
      expect(txt).toContain(flow[side]!.body);
    }
    expect(txt).toContain('{"error":"payment provider unavailable"');
    expect(txt).toMatch(/^response: 503 Service Unavailable HTTP\/1\.1/m);
    expect(txt).toContain(`client ${endpoint(flow.src)} → server ${endpoint(flow.dst)}`);
    expect(txt).toMatch(/^payloads: complete$/m);
  });

  it('get_flow without include_bodies: the text says each body was left out, its size, and how to get it', async () => {
    const id = await firstId(DEMO, 'http && request.path == "/checkout"');
    const txt = text(await t.call('get_flow', { capture: DEMO, id }));
    expect(txt).toMatch(/^ {2}body: 45 bytes, not included \(include_bodies: true shows it\)$/m);
    expect(txt).toMatch(/payloads left out or cut: request\.body \(45 bytes\); response\.body \(\d+ bytes\)/);
  });

  it('get_flow on a PostgreSQL statement: the SQL, its parameters, the session and the result rows', async () => {
    const id = await firstId(DEMO, 'postgres');
    const r = await t.call('get_flow', { capture: DEMO, id, include_bodies: true });
    const flow = flowOf(r.structuredContent.flow, 'postgres');
    const txt = text(r);
    expect(flow.request!.params).toEqual(['42']);
    expect(txt).toContain(`SQL: ${flow.request!.query}`);
    expect(txt).toContain('SQL: SELECT id, customer, total, status FROM orders WHERE id = $1');
    expect(txt).toContain("parameters (1): $1 = '42'");
    expect(txt).toContain(`fingerprint: ${flow.request!.fingerprint}`);
    expect(txt).toContain('result: SELECT 1, 1 row returned');
    expect(txt).toContain(`columns (4): ${flow.response!.columns!.join(', ')}`);
    expect(txt).toContain("('42', 'alice', '99.50', 'pending')");
    expect(txt).toMatch(/session: user postgres, database shop, application order-service/);
  });

  it('get_flow on Redis: the command, its key, the typed reply (nil is a miss), the transaction, a pub/sub push', async () => {
    const CAP = 'pcaps/redis/redis-node.pcap';
    const miss = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'redis && response.type == "nil"') });
    const m = flowOf(miss.structuredContent.flow, 'redis');
    expect(text(miss)).toContain(`command: GET ${m.request!.key}; ${m.request!.size} bytes on the wire`);
    expect(text(miss)).toContain(`  key: ${m.request!.key}`);
    expect(text(miss)).toMatch(/^reply: nil \(no value: a miss\); 5 bytes on the wire/m);
    expect(text(miss)).toMatch(/^session: RESP2$/m);
    const queued = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'redis && record.redis.queued && request.command == "INCR"') });
    expect(text(queued)).toMatch(/^session: RESP2, in transaction \(MULTI\) #\d+, queued: its result came in EXEC's reply$/m);
    expect(text(queued)).toMatch(/^reply: integer: 1;/m);
    const push = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'redis && response.type == "push" && has(response.message)') });
    const p = flowOf(push.structuredContent.flow, 'redis');
    expect(text(push)).toContain(`reply: push on ${p.response!.channel}`);
    expect(text(push)).toContain(JSON.stringify(p.response!.message));
    expect(text(push)).not.toContain('command: not seen');
  });

  it('get_flow on MySQL: the login without auth data, a prepared execute with its SQL and parameters, a result set, an error', async () => {
    const CAP = 'pcaps/mysql/mysql-basic.pcap';
    const login = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'mysql && request.command == "COM_CONNECT" && has(response.error)') });
    const l = flowOf(login.structuredContent.flow, 'mysql');
    expect(l.response!.error!.code).toBe(1045);
    expect(text(login)).toMatch(new RegExp(`^command: COM_CONNECT \\(user ${l.request!.user}[,)]`, 'm'));
    expect(text(login)).toContain(`error: 1045 (SQLSTATE 28000): ${l.response!.error!.message}`);
    const exec = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'mysql && request.command == "COM_STMT_EXECUTE" && size(request.params) > 0') });
    const e = flowOf(exec.structuredContent.flow, 'mysql');
    expect(text(exec)).toMatch(new RegExp(`^command: COM_STMT_EXECUTE \\(statement ${e.request!.statementId}\\)`, 'm'));
    expect(text(exec)).toContain(`SQL: ${e.request!.query}`);
    expect(text(exec)).toMatch(/^ {2}parameters \(\d+\): \?1 = /m);
    const rows = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'mysql && request.command == "COM_QUERY" && response.rows > 0') });
    const r = flowOf(rows.structuredContent.flow, 'mysql');
    expect(text(rows)).toContain(`result: ${r.response!.rows} row${r.response!.rows === 1 ? '' : 's'} returned`);
    expect(text(rows)).toContain(`columns (${r.response!.columns!.length}): ${r.response!.columns!.join(', ')}`);
    const err = await t.call('get_flow', { capture: CAP, id: await firstId(CAP, 'mysql && response.error.code == 1146') });
    expect(text(err)).toMatch(/^ {2}error: 1146 \(SQLSTATE 42S02\): Table '[^']+' doesn't exist$/m);
    expect(text(err)).toMatch(/^session: .*user app/m);
  });

  it('get_flow on a gRPC call: each message decoded, the grpc status and trailers', async () => {
    const id = (await t.call('list_flows', { capture: GRPC, limit: 1 })).structuredContent.flows[0].id;
    const r = await t.call('get_flow', { capture: GRPC, id, include_bodies: true });
    const flow = flowOf(r.structuredContent.flow, 'grpc');
    const txt = text(r);
    expect(txt).toMatch(/messages \(1\):\n\s+\[0\] 13 bytes at [^:]+:\d\d:\d\d\.\d+Z: fields \{1: "ord-00001", 2: 1\}/);
    // Every decoded value of the response message is in the text.
    const values: unknown[] = [];
    const walk = (fs: { value?: unknown; fields?: unknown[] }[]) => fs.forEach((f) => (f.fields ? walk(f.fields as never) : values.push(f.value)));
    walk(flow.response!.messages![0].fields!);
    expect(values.length).toBeGreaterThan(20);
    for (const v of values) expect(txt).toContain(JSON.stringify(v));
    expect(txt).toContain('"Grace Hopper"');
    expect(txt).toMatch(/grpc-status 0 OK/);
    expect(txt).toMatch(/trailers \(3\):\n\s+grpc-status: 0\n\s+grpc-message: OK\n\s+x-cache: miss/);
    expect(txt).toContain('grpc: service tapwire.demo.Orders, method GetOrder');
  });

  it('get_flow: a huge body is cut in the text as in the result, the cut is stated, and the text stays within the bound', async () => {
    for (const maxTokens of [5000, 20_000]) {
      const c = maxTokens === 20_000 ? t : await connect({ maxTokens });
      try {
        const id = (await c.call('list_flows', { capture: LARGE, filter: 'response.bodySize > 100000', limit: 1 })).structuredContent.flows[0].id;
        const r = await c.call('get_flow', { capture: LARGE, id, include_bodies: true, max_body_bytes: 1 << 20 });
        const { flow, truncated } = r.structuredContent;
        const txt = text(r);
        expect(truncated!.bodyBytesOmitted).toBeGreaterThan(0);
        // The preview kept is in the text, whole, and no more of it.
        expect(txt).toContain(`\n    ${flowOf(flow, 'http').response!.body}\n`);
        expect(txt).toMatch(/^ {2}body \(1048576 bytes; the capture kept only its start; cut to \d+ of 65536 bytes\):$/m);
        expect(txt).toMatch(/payloads left out or cut: response\.body \(cut to \d+ of 65536 bytes\)/);
        expect(txt).toContain(`cut to fit: result bounded to about ${maxTokens} tokens: ${truncated!.bodyBytesOmitted} body bytes left out`);
        expect(textTokens(txt)).toBeLessThanOrEqual(maxTokens / 2);
      } finally {
        if (c !== t) await c.close();
      }
    }
  });

  it('flow text: IPv6 endpoints in brackets (the shared formatter), and a field it does not know yet still shown', async () => {
    const c = await t.ctx.captures.load(DEMO, ROOT);
    const rec = structuredClone(c.flows.find((f) => f.protocol === 'http')!);
    rec.src = { ip: '::1', port: 51164 };
    rec.dst = { ip: 'fd00::2', port: 8080, namespace: 'shop' };
    (rec as unknown as Record<string, unknown>).futureField = { a: 1 };
    const txt = flowDetailText(viewFlow(rec, 4096), true);
    expect(txt).toContain('[::1]:51164 → [fd00::2]:8080  http GET /orders/42');
    expect(txt).toContain('client [::1]:51164 → server [fd00::2]:8080 (namespace shop)');
    expect(txt).toMatch(/^futureField: \{"a":1\}$/m);
  });

  it('analyze_capture names what it counts: flows apart from connections by protocol, protocol violations', async () => {
    const r = await t.call('analyze_capture', { capture: DEMO, limit: 2 });
    const s = r.structuredContent.summary;
    const txt = text(r);
    expect(s.protocols).toEqual({ http: 2, postgres: 1 });
    expect(txt).toContain('29 flows (request/response exchanges and SQL statements); connections by protocol: http 2, postgres 1');
    expect(txt).not.toMatch(/flows \(http/);
    expect(txt).not.toMatch(/×/);
    expect(txt).toContain(`${r.structuredContent.capture}: pcap, 18433 bytes, 85 packets`);
    expect(txt).toContain(`flows from ${new Date(s.window!.start * 1000).toISOString()} to ${new Date(s.window!.end * 1000).toISOString()}`);
    expect(txt).toMatch(/^0 protocol violations$/m);
    expect(txt).toContain(`2 flows on this page, of 29 matching; more: pass cursor "${r.structuredContent.next}"`);
  });

  it('analyze_capture and verify say what the capture held but did not decode, with its server', async () => {
    // A MySQL connection caught after its login, on the PostgreSQL port: no greeting to decode from.
    const c = new Conversation({ client: '127.0.0.1', server: '127.0.0.1', serverPort: 5432 }).handshake();
    c.send(0, Buffer.concat([Buffer.from([9, 0, 0, 0, 3]), Buffer.from('SELECT 1', 'latin1')]));
    c.send(1, Buffer.from([7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]));
    const mysql = join(mkdtempSync(join(tmpdir(), 'tapwire-mcp-mysql-')), 'mysql-mid.pcap');
    writeFileSync(mysql, segmentsToPcap(c.close().segments));
    const a = await t.call('analyze_capture', { capture: mysql });
    expect(a.structuredContent.summary.undecoded).toMatchObject({ connections: 1, byReason: { mysql: 1 }, servers: [{ server: '127.0.0.1:5432', transport: 'tcp', reason: 'mysql', connections: 1 }] });
    expect(text(a)).toContain('1 connection not decoded (mysql 1): 127.0.0.1:5432 mysql (1 connection)');
    const v = await t.call('verify', { capture: mysql });
    expect(v.structuredContent).toMatchObject({ verdict: 'inconclusive', coverage: { undecoded: { connections: 1, byReason: { mysql: 1 } } } });
    expect(v.structuredContent.summary).toMatch(/^judged 0 flows; .*1 connection not decoded \(mysql 1\)$/);
    expect(text(v)).toContain('not decoded: 127.0.0.1:5432 mysql (1 connection)');
    // A window of the file is not the file: what the whole file did not decode is not claimed for it.
    const w = await t.call('verify', { capture: mysql, since: '1970-01-01T00:00:01Z' });
    expect(w.structuredContent.coverage.undecoded).toBeUndefined();
  });

  it('counts take the right plural: 1 flow, 1 call, 1 row, 1 evidence entry', async () => {
    const one = text(await t.call('list_flows', { capture: DEMO, filter: 'http && response.status == 503', limit: 1 }));
    expect(one).toMatch(/^1 flow on this page, of 3 matching; more: pass cursor "[^"]+"$/m);
    const texts = [one,
      text(await t.call('list_flows', { capture: DEMO, filter: 'http && request.path == "/checkout"' })),
      text(await t.call('analyze_capture', { capture: DEMO, filter: 'http && request.path == "/checkout"' })),
      text(await t.call('service_map', { capture: DEMO, until: '2026-11-21T12:15:35.350Z' })),
      text(await t.call('diff', { before: DEMO, after: FIXED })),
      text(await t.call('verify', { capture: FIXED }))];
    expect(texts[1]).toMatch(/^1 flow on this page, of 1 matching; no more pages$/m);
    expect(texts[3]).toMatch(/^1 edge \(one per caller, server and protocol\), from capture pcaps\/demo\/demo\.pcap, until [^:]+:\d\d:\d\d\.\d+Z: 1 flow:\n.*: 1 call, 0 errors;/m);
    expect(texts[4]).toMatch(/1 call \(calls by status: 200 ×1\)/);
    expect(texts[5]).toMatch(/evidence: 1 flow:/);
    for (const x of texts) expect(x).not.toMatch(ONE_PLURAL);
    const note = truncationNote(20_000, { evidenceOmitted: 1, detailsOmitted: 1, rowsOmitted: 1, bodyBytesOmitted: 1, fieldsCut: 1, charsOmitted: 1, findingsCompacted: 1, findingsOmitted: 1 }).note;
    expect(note).toMatch(/1 evidence entry left out.*details of 1 finding cut; page ended 1 row early; 1 body byte left out; 1 long field cut \(1 character left out/);
    expect(note).toMatch(/1 finding in compact form.*1 more finding on the next pages/);
  });

  it('verify: every finding with its details and all the evidence the result kept; what was judged, and from where', async () => {
    const r = await t.call('verify', { capture: DEMO });
    const v = r.structuredContent;
    const txt = text(r);
    expect(txt).toMatch(/^verdict: FAIL\njudged 29 flows from capture pcaps\/demo\/demo\.pcap, 0 with incomplete evidence\njudged 29 flows \(http 17, postgres 12\); [^\n]+\n4 findings \(3 errors, 1 warning\):/);
    const redundant = v.findings.find((f: Finding) => f.kind === 'redundant-call');
    expect(redundant!.evidence).toHaveLength(12);
    for (const f of v.findings as Finding[]) {
      expect(txt).toContain(`${f.kind}: ${f.summary}`);
      for (const e of f.evidence) expect(txt).toContain(`flow ${e.flowId} `);
      for (const [k, x] of Object.entries(f.details)) if (k !== 'evidenceTotal') expect(txt).toContain(`${k} ${typeof x === 'string' ? x : JSON.stringify(x)}`);
    }
    expect(txt).toContain('evidence: 12 flows:');
  });

  it('verify past the bound: the text gives the cursor to the next page and says what was cut', () => {
    const findings = Array.from({ length: 2000 }, (_, i) => ({
      kind: 'error-status', severity: 'error' as const, summary: `GET /api/v1/resource-${i} returned 500 three times`,
      evidence: Array.from({ length: 5 }, (_, j) => ({ flowId: `abcdef012345-${i * 5 + j}`, time: 1795276026.3 + j, summary: 'GET /api/v1/resource → 500' })),
      details: { evidenceTotal: 5 },
    }));
    const r = boundVerdict({ verdict: 'fail', findings, summary: 'judged 10000 flows (http 10000)', coverage: { flows: 10_000, incomplete: 0, byReason: {} } }, 20_000, verdictResultText, findingsPage({ capture: DEMO }, 2000));
    const txt = verdictResultText(r);
    expect(r.next).toBeDefined();
    expect(txt).toContain(`more findings: pass cursor "${r.next}" to verify with the same arguments`);
    expect(txt).toContain(`cut to fit: ${r.truncated!.note}`);
    expect(txt).toMatch(/^\d+ findings \(\d+ errors\) on this page:$/m);
    for (const f of r.findings) expect(txt).toContain(f.summary);
    // A compact finding says how much evidence it had, though none is listed.
    const compact = r.findings.find((f) => f.evidence.length === 0);
    if (compact) expect(txt).toContain(`${compact.summary}\n      evidence: 5 flows, 0 listed\n`);
  });

  it('list_flows: every row of the page, its cursor and what the counts count', async () => {
    const r = await t.call('list_flows', { capture: DEMO, limit: 27 });
    const p = r.structuredContent;
    const txt = text(r);
    expect(p.flows).toHaveLength(27);
    expect(txt.startsWith(`27 flows on this page, of 29 matching; more: pass cursor "${p.next}"\n`)).toBe(true);
    for (const row of p.flows) expect(txt).toContain(`${row.id}  ${row.start}  ${row.client} → ${row.server}  ${row.protocol} ${row.call}  ${row.status}  ${row.durationMs} ms`);
    expect(txt).toMatch(/cd357717c2fd-1 .* 503 {2}4\.62 ms {2}FAILED/);
  });

  it('service_map: every edge with all its latency percentiles, and the flows it was drawn from', async () => {
    const r = await t.call('service_map', { capture: DEMO });
    const txt = text(r);
    expect(txt).toMatch(/^3 edges \(one per caller, server and protocol\), from capture pcaps\/demo\/demo\.pcap: 29 flows:/);
    for (const e of r.structuredContent.edges) {
      const l = e.latencyMs;
      expect(txt).toContain(`${e.src} → ${e.dst} ${e.protocol}: ${e.count} calls, ${e.errors} errors; latency p50 ${l.p50}, p95 ${l.p95}, p99 ${l.p99}, max ${l.max} ms`);
    }
  });

  it('diff: findings new and resolved with their evidence, calls per request, endpoints', async () => {
    const r = await t.call('diff', { before: FIXED, after: DEMO });
    const d = r.structuredContent;
    const txt = text(r);
    expect(txt).toMatch(/^REGRESSION: 4 regressions$/m);
    expect(d.findings.new.length + d.findings.resolved.length).toBeGreaterThan(3);
    for (const f of [...d.findings.new, ...d.findings.resolved] as Finding[]) {
      expect(txt).toContain(`${f.kind}: ${f.summary}`);
      for (const e of f.evidence) expect(txt).toContain(`flow ${e.flowId} `);
    }
    for (const c of d.callsPerRequest) expect(txt).toContain(`${c.change}: ${c.inbound} → ${c.downstream}: mean`);
    for (const e of d.endpoints.changed) expect(txt).toContain(`~ ${e.endpoint}\n`);
    expect(txt).toMatch(/^resolved findings: 2 findings \(1 warning, 1 info\):$/m);
  });

  it('diff on the cache demo: the hit ratio per key pattern, the timestamped pattern paired with its fix', async () => {
    const r = await t.call('diff', { before: 'pcaps/demo/cache.pcap', after: 'pcaps/demo/cache-fixed.pcap' });
    const c = r.structuredContent.cache as { pattern: string; change: string; before?: { pattern: string; hits: number; reads: number }; after?: { hits: number; reads: number } }[];
    const order = c.find((x) => x.before?.pattern.startsWith('order:') && x.after);
    expect(order).toMatchObject({ change: 'up', before: { hits: 0 } });
    expect(order!.after!.hits).toBeGreaterThan(0);
    expect(text(r)).toContain(`  up: ${order!.before!.pattern} → ${order!.pattern}: hit ratio 0% (0 of ${order!.before!.reads} reads,`);
    expect(text(r)).toMatch(/^cache hit ratio by key pattern \(\d+\):$/m);
  });
});

/** A backend that answers from fixed snapshots and runs: the backend tools' texts without a capture. */
function fakeBackend(): Backend {
  const snaps: Snapshot[] = [
    { id: 'snap-new', name: 'checkout test', since: 1795263335, createdAt: 1795263335, open: true, filter: 'http' },
    { id: 'snap-old', since: 1795263000, until: 1795263100, createdAt: 1795263000, open: false },
  ];
  const ev = { flowId: 'cd357717c2fd-1', time: 1795263335.728513, frames: [67, 69] as [number, number], summary: 'attempt 1, failed' };
  const run = (id: string, startedAt: number, found: boolean, extra: Partial<RunRecord> = {}): RunRecord => ({
    id, startedAt, endedAt: startedAt + 2, command: 'npm test -- checkout', cwd: '/repo', exitCode: found ? 1 : 0, verdict: found ? 'fail' : 'pass',
    code: { commit: 'abc1234', dirty: '' }, spec: { name: 'demo.yaml', hash: 'h123' },
    findings: found ? [{ fingerprint: 'fp-retry', kind: 'retry', severity: 'error', summary: '4 attempts of POST /payments', evidence: [ev] }] : [],
    snapshot: `snap-${id}`, source: 'local', flows: 29, drained: 'proven', verified: true,
    touched: { services: ['127.0.0.3:8081'], endpoints: ['127.0.0.3:8081 POST /payments'] }, ...extra,
  });
  const runs = [run('run-3', 1795263500, true), run('run-2', 1795263400, false), run('run-1', 1795263300, true, { command: 'npm test', cwd: '/other', code: undefined })];
  return {
    kind: 'local', describe: () => 'fake backend',
    listSnapshots: async () => snaps,
    getSnapshot: async (id: string) => snaps.find((s) => s.id === id),
    stopSnapshot: async (id: string) => ({ ...snaps.find((s) => s.id === id)!, until: 1795263340, open: false, drained: 'unproven' as const }),
    exportPcap: async (_id: string, dest: string) => {
      writeFileSync(dest, Buffer.alloc(1));
      return { path: dest, bytes: 1, loss: 'none' };
    },
    runs: async () => runs,
    close: async () => {},
  } as unknown as Backend;
}

describe('tapwire mcp: the backend tools\' texts carry their results', () => {
  let t: Connected;
  beforeAll(async () => {
    t = await connect();
    const backend = fakeBackend();
    t.ctx.backend = async () => backend;
  });
  afterAll(async () => { await t.close(); });

  it('list_snapshots, stop_snapshot, export_pcap: every field, plurals, the drain in words', async () => {
    const list = text(await t.call('list_snapshots'));
    expect(list).toMatch(/^2 snapshots on the backend; 1 of those shown still open, newest first:$/m);
    expect(list).toContain('snap-new "checkout test": open, flows since 2026-11-21T12:15:35.000Z, filter http, created 2026-11-21T12:15:35.000Z');
    expect(list).toContain('snap-old: closed, flows from 2026-11-21T12:10:00.000Z to 2026-11-21T12:11:40.000Z, no filter, created 2026-11-21T12:10:00.000Z');
    const stopped = text(await t.call('stop_snapshot', { id: 'snap-new' }));
    expect(stopped).toContain('snapshot stopped: snap-new "checkout test": closed, flows from 2026-11-21T12:15:35.000Z to 2026-11-21T12:15:40.000Z, filter http');
    expect(stopped).toMatch(/the drain was not proven: traffic sent just before the call may be missing/);
    const r = await t.call('export_pcap', { snapshot: 'snap-old' });
    const x = text(r);
    expect(x).toContain(`wrote 1 byte of pcap to ${r.structuredContent.path} (${r.structuredContent.file}); read it through MCP as pcap://snap-old`);
    expect(x).toContain('(loss): none');
    expect(join(t.ctx.dataDir, 'exports')).toBe(r.structuredContent.path.slice(0, r.structuredContent.path.lastIndexOf('/')));
  });

  it('run_history: every finding with its runs, evidence and flakiness; every run with its code, spec and findings', async () => {
    const r = await t.call('run_history');
    const h = r.structuredContent;
    const txt = text(r);
    expect(h.findings[0]).toMatchObject({ failedRuns: 2, totalRuns: 3, flaky: true });
    expect(txt).toMatch(/^3 matching runs, newest first; 1 distinct error or warning finding seen:$/m);
    expect(txt).toContain('FLAKY ERROR retry: 4 attempts of POST /payments');
    expect(txt).toContain('found in 2 of 3 runs that judged it; first 2026-11-21T12:15:00.000Z, last 2026-11-21T12:18:20.000Z');
    expect(txt).toContain('fingerprint fp-retry; last found in run run-3, snapshot snap-run-3');
    expect(txt).toContain('flaky on commit abc1234: found in 1 of 2 runs');
    expect(txt).toContain('evidence of that run: 1 flow:\n        flow cd357717c2fd-1 frames 67-69 at 2026-11-21T12:15:35.728Z: attempt 1, failed');
    for (const run of h.runs) expect(txt).toContain(`run ${run.id} at `);
    expect(txt).toContain('run run-3 at 2026-11-21T12:18:20.000Z: exit 1, verdict fail; snapshot snap-run-3; commit abc1234; spec demo.yaml (hash h123); findings (1, by fingerprint): "fp-retry"');
    expect(txt).toContain('      command: npm test -- checkout');
    expect(txt).not.toMatch(ONE_PLURAL);
  });

  it('runs_touching: every command, its last checked run and what of it matched', async () => {
    const r = await t.call('runs_touching', { path: '/payments' });
    const txt = text(r);
    expect(r.structuredContent.commands).toHaveLength(2);
    expect(txt).toMatch(/^2 test commands whose newest checked run touched it, most recently run first:$/m);
    expect(txt).toContain('  npm test -- checkout\n      in /repo; touched it in 2 kept runs\n      last checked run run-3 at 2026-11-21T12:18:20.000Z: exit 1, verdict fail, snapshot snap-run-3');
    expect(txt).toContain('in /other; touched it in 1 kept run\n');
    expect(txt).toContain('matched: 127.0.0.3:8081 POST /payments');
    expect(txt).not.toMatch(ONE_PLURAL);
  });
});
