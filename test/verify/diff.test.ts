import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord, RecordResponse } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { diffFlows, diffText, findingFingerprint, type FlowDiff } from '../../src/verify/diff.js';
import type { Finding } from '../../src/verify/types.js';

/** `tapwire diff` on the recorded demo pair: the buggy order and payment services, and their fixes. */
const DEMO = 'pcaps/demo/demo.pcap';
const FIXED = 'pcaps/demo/demo-fixed.pcap';
const ORDERS = 'http 127.0.0.2:8080 GET /orders/{id}';
const QUERY = 'postgres 127.0.0.4:5432 select id, customer, total, status from orders where id = ?';
const CHECKOUT = 'http 127.0.0.2:8080 POST /checkout';
const PAYMENTS = 'http 127.0.0.3:8081 POST /payments';

const flows = async (f: string): Promise<FlowRecord[]> => (await analyzeFile(f)).records!;
const side = async (f: string) => ({ label: f, flows: await flows(f) });
const kinds = (fs: Finding[]) => fs.map((f) => `${f.severity} ${f.kind}`);

function expectNoDifference(d: FlowDiff): void {
  // No difference between nothing and nothing proves nothing: both sides must have decoded flows.
  expect(d.before.flows, `${d.before.label}: flows decoded`).toBeGreaterThanOrEqual(2);
  expect(d.after.flows).toBe(d.before.flows);
  expect(d.regression).toBe(false);
  expect(d.regressions).toEqual([]);
  expect(d.improvements).toEqual([]);
  expect(d.endpoints).toEqual({ added: [], removed: [], changed: [] });
  expect(d.payloadShapes).toEqual([]);
  expect(d.findings).toEqual({ new: [], resolved: [] });
  expect(d.callsPerRequest.every((c) => c.change === 'same')).toBe(true);
  expect(diffText(d)).toMatch(/^no regression\nno differences\n$/m);
}

describe('diffFlows on the demo pair', () => {
  it('demo → fixed: an improvement, no regression; fewer queries per order request, both error findings resolved', async () => {
    const d = diffFlows(await side(DEMO), await side(FIXED));
    expect(d.regression).toBe(false);
    expect(d.regressions).toEqual([]);
    expect(d.before).toEqual({ label: DEMO, flows: 29 });
    expect(d.after).toEqual({ label: FIXED, flows: 18 });

    // 12 order requests each: one query per request before, one query in all after (the cache hits).
    expect(d.callsPerRequest.find((c) => c.inbound === ORDERS && c.downstream === QUERY))
      .toEqual({ inbound: ORDERS, downstream: QUERY, before: { mean: 1, max: 1 }, after: { mean: 0.083, max: 1 }, change: 'fewer' });
    // Four payment attempts per checkout on both sides: the fix changed the delays, not the count.
    expect(d.callsPerRequest.find((c) => c.inbound === CHECKOUT && c.downstream === PAYMENTS))
      .toMatchObject({ before: { mean: 4, max: 4 }, after: { mean: 4, max: 4 }, change: 'same' });

    expect(kinds(d.findings.resolved)).toEqual(expect.arrayContaining(['error redundant-call', 'error retry', 'error secret-forwarded']));
    expect(d.findings.resolved.find((f) => f.kind === 'retry')!.details.pattern).toBe('constant');
    expect(d.findings.new.filter((f) => f.severity === 'error')).toEqual([]);
    // The backoff retry is still a retry, now reported as info.
    expect(d.findings.new.find((f) => f.kind === 'retry')).toMatchObject({ severity: 'info', details: { pattern: 'exponential' } });

    expect(d.improvements).toEqual(expect.arrayContaining([
      expect.stringMatching(/^resolved error finding: redundant-call: 12 identical calls: postgres SELECT/),
      expect.stringMatching(/^resolved error finding: retry: 4 attempts of POST \/payments on 127\.0\.0\.3:8081; .*constant/),
      `fewer calls per request: ${ORDERS} → ${QUERY}: mean 1.00 → 0.08 per request (max 1 → 1)`,
    ]));

    expect(d.endpoints.added).toEqual([]);
    expect(d.endpoints.removed).toEqual([]);
    const q = d.endpoints.changed.find((e) => e.endpoint === QUERY)!;
    expect([q.before.count, q.after.count]).toEqual([12, 1]);
    expect([q.before.statuses, q.after.statuses]).toEqual([{ ok: 12 }, { ok: 1 }]);
    // The same statuses on the payment service (3 × 503, then 201) on both sides: no status news.
    const pay = d.endpoints.changed.find((e) => e.endpoint === PAYMENTS);
    if (pay) expect(pay.after.statuses).toEqual(pay.before.statuses); // listed for latency only
    // The fixed checkout waits out its backoff: slower, which is reported, never a regression.
    const checkout = d.endpoints.changed.find((e) => e.endpoint === CHECKOUT)!;
    expect(checkout.before.latencyMs!.max).toBeGreaterThan(600);
    expect(checkout.after.latencyMs!.max).toBeGreaterThan(1400);

    const text = diffText(d);
    expect(text).toMatch(/^no regression$/m);
    expect(text).toMatch(/^improvements:\n ✓ resolved error finding: redundant-call/m);
    expect(text).not.toMatch(/regressions:/);
  });

  it('fixed → demo: a regression naming the new error findings and the extra queries per request', async () => {
    const d = diffFlows(await side(FIXED), await side(DEMO));
    expect(d.regression).toBe(true);
    expect(d.regressions).toEqual(expect.arrayContaining([
      expect.stringMatching(/^new error finding: redundant-call: 12 identical calls: postgres SELECT id, customer, total, status FROM orders WHERE id = \$1 with parameters \["42"\]/),
      expect.stringMatching(/^new error finding: retry: 4 attempts of POST \/payments on 127\.0\.0\.3:8081; retries at 0\.2\d s, 0\.2\d s, 0\.2\d s \(constant: delays do not grow\)/),
      `more calls per request: ${ORDERS} → ${QUERY}: mean 0.08 → 1.00 per request (max 1 → 1)`,
    ]));
    expect(kinds(d.findings.new)).toEqual(expect.arrayContaining(['error redundant-call', 'error retry']));
    expect(d.findings.resolved.find((f) => f.kind === 'retry')!.severity).toBe('info');
    expect(d.callsPerRequest.find((c) => c.downstream === QUERY)!.change).toBe('more');
    const text = diffText(d);
    expect(text).toMatch(/^REGRESSION: \d+ regressions$/m);
    expect(text.indexOf('regressions:')).toBeLessThan(text.indexOf('endpoints changed:'));
    expect(text).toMatch(/ ✗ more calls per request: http 127\.0\.0\.2:8080 GET \/orders\/\{id\}/);
  });

  it('a capture against itself: nothing to report', async () => {
    for (const f of [DEMO, FIXED, 'pcaps/grpc/error-status.pcap', 'pcaps/postgres/psql.pcap']) expectNoDifference(diffFlows(await side(f), await side(f)));
  });
});

describe('diffFlows on edited copies of the demo', () => {
  /** The demo with every /orders/42 response rewritten by `edit`: real flows, one deliberate change. */
  async function editedOrders(edit: (s: RecordResponse, i: number) => void): Promise<FlowRecord[]> {
    const fs = structuredClone(await flows(DEMO));
    fs.filter((f) => (f.request as { path?: string } | undefined)?.path === '/orders/42').forEach((f, i) => edit(f.response as RecordResponse, i));
    return fs;
  }

  it('payload shapes: added, removed and retyped fields of the JSON responses, dates told apart from text', async () => {
    const after = await editedOrders((s) => {
      const o = JSON.parse(s.body!);
      delete o.status;
      s.body = JSON.stringify({ ...o, total: Number(o.total), created: '2026-11-21T09:51:12Z' });
    });
    const d = diffFlows(await side(DEMO), { label: 'edited', flows: after });
    expect(d.payloadShapes).toEqual([{
      endpoint: ORDERS,
      added: ['$.created: string(date-iso8601)'],
      removed: ['$.status: string'],
      changed: [{ path: '$.total', before: 'string', after: 'number' }],
    }]);
    // A shape change is reported, not a regression.
    expect(d.regression).toBe(false);
    expect(diffText(d)).toMatch(/payload shapes:\n {3}http 127\.0\.0\.2:8080 GET \/orders\/\{id\}\n {7}\+ \$\.created: string\(date-iso8601\)\n {7}- \$\.status: string\n {7}~ \$\.total: string → number/);
  });

  it('a field null in some responses is optional, not retyped', async () => {
    const after = await editedOrders((s, i) => {
      if (i % 2 === 0) s.body = JSON.stringify({ ...JSON.parse(s.body!), customer: null });
    });
    expect(diffFlows(await side(DEMO), { label: 'edited', flows: after }).payloadShapes).toEqual([]);
  });

  it('an error status the endpoint did not give before is a regression; one that went away is an improvement', async () => {
    const after = await editedOrders((s, i) => {
      if (i === 5) s.status = 500;
    });
    const d = diffFlows(await side(DEMO), { label: 'edited', flows: after });
    expect(d.regressions).toContain(`new error status 500 on ${ORDERS} (1 of 12 calls)`);
    expect(d.endpoints.changed.find((e) => e.endpoint === ORDERS)!.after.statuses).toEqual({ 200: 11, 500: 1 });
    const back = diffFlows({ label: 'edited', flows: after }, await side(DEMO));
    expect(back.regression).toBe(false);
    expect(back.improvements).toContain(`error status 500 no longer seen on ${ORDERS}`);
  });
});

describe('finding fingerprints', () => {
  const f = (summary: string, severity: Finding['severity'] = 'error'): Finding => ({ kind: 'retry', severity, summary, evidence: [], details: {} });
  it('fold counts and delays, keep addresses, status codes and severity', () => {
    const a = f('4 attempts of POST /payments on 127.0.0.3:8081; retries at 0.20 s, 0.20 s, 0.20 s (constant: delays do not grow)');
    const b = f('5 attempts of POST /payments on 127.0.0.3:8081; retries at 0.21 s, 0.19 s, 0.20 s, 0.20 s (constant: delays do not grow)');
    expect(findingFingerprint(a)).toBe(findingFingerprint(b));
    expect(findingFingerprint(f(a.summary.replace('127.0.0.3:8081', '127.0.0.9:8081')))).not.toBe(findingFingerprint(a));
    expect(findingFingerprint(f(a.summary, 'warning'))).not.toBe(findingFingerprint(a));
    expect(findingFingerprint(f('3 × HTTP 503 from POST /payments'))).not.toBe(findingFingerprint(f('3 × HTTP 500 from POST /payments')));
    expect(findingFingerprint(f('3 × HTTP 503 from POST /payments'))).toBe(findingFingerprint(f('7 × HTTP 503 from POST /payments')));
  });
});

describe('tapwire diff (the built CLI)', () => {
  const BIN = 'dist/cli/main.js';
  function tapwire(args: string[], input?: Buffer) {
    const tmp = mkdtempSync(join(tmpdir(), 'tapwire-diff-'));
    const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'buffer', env: { ...process.env, XDG_CONFIG_HOME: tmp, TAPWIRE_REDACT_KEY: '' } });
    return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  }

  beforeAll(() => {
    execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
  });

  it('demo → fixed exits 0 and shows the improvement; fixed → demo exits 1 naming the regressions', () => {
    const better = tapwire(['diff', DEMO, FIXED]);
    expect(better.status).toBe(0);
    expect(better.stdout).toMatch(/^diff pcaps\/demo\/demo\.pcap \(29 flows\) → pcaps\/demo\/demo-fixed\.pcap \(18 flows\)\nno regression\n/);
    expect(better.stdout).toMatch(/ ✓ fewer calls per request: .*GET \/orders\/\{id\} → postgres .*: mean 1\.00 → 0\.08/);
    const worse = tapwire(['diff', FIXED, DEMO, '--format', 'json']);
    expect(worse.status).toBe(1);
    const d = JSON.parse(worse.stdout);
    expect(Object.keys(d)).toEqual(expect.arrayContaining(['regression', 'regressions', 'before', 'after', 'endpoints', 'callsPerRequest', 'payloadShapes', 'findings']));
    expect(d.regression).toBe(true);
    expect(d.before).toEqual({ label: FIXED, flows: 18 });
    expect(d.regressions.filter((s: string) => s.startsWith('new error finding: '))).toHaveLength(d.findings.new.filter((f: Finding) => f.severity === 'error').length);
    expect(d.findings.new.map((f: Finding) => f.kind)).toEqual(expect.arrayContaining(['redundant-call', 'retry']));
    expect(d.callsPerRequest).toContainEqual({ inbound: ORDERS, downstream: QUERY, before: { mean: 0.083, max: 1 }, after: { mean: 1, max: 1 }, change: 'more' });
  });

  it('a capture against itself exits 0 with no differences; one side may come from stdin', () => {
    const same = tapwire(['diff', DEMO, DEMO]);
    expect(same.status).toBe(0);
    expect(same.stdout).toMatch(/no differences/);
    const piped = tapwire(['diff', '-', FIXED, '--format', 'json'], readFileSync(DEMO));
    expect(piped.status).toBe(0);
    expect(JSON.parse(piped.stdout).before).toEqual({ label: 'stdin', flows: 29 });
  });

  it('bad input exits 2 with one line naming the file', () => {
    const missing = tapwire(['diff', DEMO, '/nonexistent/after.pcap']);
    expect(missing.status).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/^tapwire: \/nonexistent\/after\.pcap: no such file\n$/);
    const f = join(mkdtempSync(join(tmpdir(), 'tapwire-bad-')), 'notes.txt');
    writeFileSync(f, 'hello, this is text\n');
    const text = tapwire(['diff', f, DEMO]);
    expect(text.status).toBe(2);
    expect(text.stderr.trim().split('\n')).toHaveLength(1);
    expect(text.stderr).toContain(`${f}: not a pcap or pcapng file`);
    expect(tapwire(['diff', '-', '-']).status).toBe(2);
    expect(tapwire(['diff', DEMO]).status).toBe(2);
  });
});
