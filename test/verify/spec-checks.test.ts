import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { loadSpecFile, parseSpec, runChecks } from '../../src/verify/spec/index.js';

/** Every assertion of the spec language, firing and passing on recorded real traffic. */
const cache = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string) => cache.get(f) ?? cache.set(f, analyzeFile(f).then((r) => r.records!)).get(f)!;

const DEMO = 'pcaps/demo/demo.pcap';
const FIXED = 'pcaps/demo/demo-fixed.pcap';
const SERVICES = 'services:\n  order-service: ["127.0.0.2"]\n  payment-service: ["127.0.0.3:8081"]\n  postgres: ["127.0.0.4:5432"]\n';

/** Runs one check (YAML lines under `- name: c`) over a capture. */
async function run(checkYaml: string, file: string, opts: { maxEvidence?: number } = {}) {
  const text = `version: 1\n${SERVICES}checks:\n  - name: c\n${checkYaml.trim().replace(/^/gm, '    ')}\n`;
  return runChecks(parseSpec(text, 'test.yaml', '.'), await flows(file), opts);
}
const passes = async (checkYaml: string, file: string) => expect(await run(checkYaml, file)).toEqual({ findings: [], inconclusive: [] });

describe('count', () => {
  it('fires with the number found, the bound and the offending flows', async () => {
    const { findings: [f, ...rest] } = await run('select: \'postgres[fingerprint="select * from orders *"]\'\nexpect: { count: { atMost: 1 } }', DEMO, { maxEvidence: 5 });
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ kind: 'check', severity: 'error', summary: 'check "c": 12 matching flows where at most 1 was expected' });
    expect(f!.details).toEqual({ check: 'c', assertion: 'count', expected: { atMost: 1 }, actual: 12, evidenceTotal: 12 });
    expect(f!.evidence).toHaveLength(5);
    expect(f!.evidence[0]).toMatchObject({ summary: 'match 1 of 12', frames: [expect.any(Number), expect.any(Number)] });
  });

  it('passes on the fixed demo; exactly and atLeast', async () => {
    await passes('select: \'postgres[fingerprint="select * from orders *"]\'\nexpect: { count: { atMost: 1 } }', FIXED);
    await passes('select: \'http[path="/payments"]\'\nexpect: { count: { exactly: 4 } }', DEMO);
    const { findings } = await run('select: \'http[path="/payments"]\'\nexpect: { count: { atLeast: 5 } }', DEMO);
    expect(findings[0]!.summary).toBe('check "c": 4 matching flows where at least 5 was expected');
    expect(findings[0]!.evidence).toEqual([]);
  });

  it('a check on nothing: passes when zero is allowed, fails when more are needed, else inconclusive', async () => {
    await passes('select: \'http[path="/refunds"]\'\nexpect: { count: { exactly: 0 } }', DEMO);
    await passes('select: \'http[path="/refunds"]\'\nexpect: { count: { atMost: 2 } }', DEMO);
    expect((await run('select: \'http[path="/refunds"]\'\nexpect: { count: { atLeast: 1 } }', DEMO)).findings[0]!.summary).toBe('check "c": 0 matching flows where at least 1 was expected');
    expect(await run('select: \'http[path="/refunds"]\'\nexpect: { latency: { max: 10 } }', DEMO))
      .toEqual({ findings: [], inconclusive: ['check "c": no matching flows for http[path="/refunds"]'] });
  });

  it('flows whose request was not seen could make up a shortfall: inconclusive', async () => {
    const r = await run('select: \'http[path="/api/**"]\'\nexpect: { count: { atLeast: 5 } }', 'pcaps/http1/mid-stream.pcap');
    expect(r.findings).toEqual([]);
    expect(r.inconclusive[0]).toMatch(/^check "c": 4 matching flows where at least 5 was expected, but 1 more could match/);
  });
});

describe('backoff', () => {
  const sel = 'select: \'http[client="order-service" path="/payments"]\'\n';

  it('fires on the demo: constant delays where 200, 400, 800 ms was intended', async () => {
    const { findings: [f] } = await run(`${sel}expect: { backoff: { schedule: [200, 400, 800], tolerance: 0.25 } }`, DEMO);
    expect(f!.summary).toMatch(/^check "c": delays 0\.2\d s, 0\.2\d s, 0\.2\d s where 0\.20 s, 0\.40 s, 0\.80 s ±25 % was expected$/);
    expect(f!.details).toMatchObject({ assertion: 'backoff', expected: { schedule: [200, 400, 800], tolerance: 0.25, delaysMs: [200, 400, 800] }, evidenceTotal: 4 });
    expect(f!.evidence[2]!.summary).toMatch(/^attempt 3, 0\.2\d s after attempt 2 \(expected 0\.40 s\)$/);
  });

  it('passes on the fixed demo, as a schedule or as initialMs and factor', async () => {
    await passes(`${sel}expect: { backoff: { schedule: [200, 400, 800] } }`, FIXED);
    await passes(`${sel}expect: { backoff: { initialMs: 200, factor: 2 } }`, FIXED);
    // Past the schedule's end the last entry repeats; capped growth does the same.
    expect((await run(`${sel}expect: { backoff: { initialMs: 200, maxMs: 400 } }`, FIXED)).findings[0]!.summary)
      .toMatch(/where 0\.20 s, 0\.40 s, 0\.40 s ±25 % was expected$/);
    await passes(`${sel}expect: { backoff: { schedule: [200], tolerance: 0.1 } }`, DEMO);
  });

  it('a single call has no delays to judge', async () => {
    await passes('select: \'http[path="/checkout"]\'\nexpect: { backoff: { schedule: [1000] } }', DEMO);
  });
});

describe('missing evidence makes a check inconclusive, not failed', () => {
  /** The demo with its failed payment attempts' responses lost, as a capture gap would lose them. */
  async function lostResponses(): Promise<FlowRecord[]> {
    return (await flows(DEMO)).map((r) => {
      if ((r.response as { status?: number } | undefined)?.status !== 503) return r;
      const { response: _lost, ...rest } = r;
      return { ...rest, end: r.request!.end, incomplete: true, incompleteReason: 'no-response' };
    });
  }
  const spec = (expectYaml: string) => parseSpec(`version: 1\n${SERVICES}checks:\n  - name: c\n    select: 'http[path="/payments"]'\n    expect: ${expectYaml}\n`, 'test.yaml', '.');

  it('backoff over attempts whose ends are unknown', async () => {
    expect(runChecks(spec('{ backoff: { schedule: [200, 400, 800] } }'), await lostResponses()))
      .toEqual({ findings: [], inconclusive: ['check "c": 1 retry sequence with incomplete flows (a lost response moves an attempt\'s end) did not match the schedule'] });
  });

  it('response status and latency of responses not seen', async () => {
    expect(runChecks(spec('{ response: { status: 201 } }'), await lostResponses()))
      .toEqual({ findings: [], inconclusive: ['check "c": response.status could not be judged on 3 flows: response not seen'] });
    // Latency is judged on the one complete exchange; it is fast.
    expect(runChecks(spec('{ latency: { max: 100 } }'), await lostResponses())).toEqual({ findings: [], inconclusive: [] });
  });
});

describe('latency', () => {
  it('fires over max and percentile budgets, with the slow flows as evidence', async () => {
    const { findings: [f] } = await run('select: \'http[path="/checkout"]\'\nexpect: { latency: { max: 500 } }', DEMO);
    expect(f!.summary).toMatch(/^check "c": max latency 0\.\d\d s where at most 0\.50 s was expected \(1 of 1 flows over 0\.50 s\)$/);
    expect(f!.details.assertion).toBe('latency');
    const h2 = await run('select: \'http2[path="/"]\'\nexpect: { latency: { p50: 0.001, p99: 100000 } }', 'pcaps/http2/h2load.pcap', { maxEvidence: 3 });
    expect(h2.findings[0]!.summary).toMatch(/^check "c": p50 latency .* where at most 0\.0 ms was expected \(200 of 200 flows over 0\.0 ms\)$/);
    expect(h2.findings[0]!.evidence).toHaveLength(3);
    expect(h2.findings[0]!.details.evidenceTotal).toBe(200);
  });

  it('passes within budget', async () => {
    await passes('select: \'http[path="/orders/*"]\'\nexpect: { latency: { p95: 50, max: 200 } }', DEMO);
    await passes('select: \'grpc\'\nexpect: { latency: { p90: 1000 } }', 'pcaps/grpc/concurrent.pcap');
  });
});

describe('headers', () => {
  it('present, absent, equals and matches pass on real requests', async () => {
    await passes(`select: 'http[path="/payments"]'
expect:
  request:
    headers:
      X-Request-Id: { present: true }
      x-debug: { absent: true }
      content-type: { equals: application/json }
      authorization: { matches: '^Bearer ' }`, DEMO);
  });

  it('fire per flow, with the problems counted', async () => {
    const { findings: [f, ...rest] } = await run(`select: 'http[service="order-service"]'
expect:
  request:
    headers:
      traceparent: { present: true }
      accept: { equals: text/html }
      host: { absent: true }`, DEMO);
    expect(rest).toEqual([]);
    expect(f!.summary).toBe('check "c": 13 of 13 matched flows break request.headers (expected traceparent present, accept: text/html, no host): traceparent missing (×13), accept is "application/json" (×13), host present ("127.0.0.2:8080") (×13)');
    expect(f!.details.assertion).toBe('request.headers');
  });

  it('a header block only partly decoded is inconclusive, not a failure', async () => {
    const r = await run('select: \'http2[status=200]\'\nexpect: { response: { headers: { content-type: { present: true } } } }', 'pcaps/http2/mid-connection.pcap');
    expect(r.findings).toEqual([]);
    expect(r.inconclusive).toEqual(['check "c": response.headers could not be judged on 13 flows: headers only partly decoded']);
  });
});

describe('response status and body', () => {
  it('status fires on the demo payments and passes where it holds', async () => {
    const { findings: [f] } = await run('select: \'http[path="/payments"]\'\nexpect: { response: { status: 2xx } }', DEMO);
    expect(f!.summary).toBe('check "c": 3 of 4 matched flows break response.status (expected status 2xx): status 503 (×3)');
    expect(f!.evidence.map((e) => e.summary)).toEqual(['status 503', 'status 503', 'status 503']);
    await passes('select: \'http[path="/orders/*"]\'\nexpect: { response: { status: 200 } }', DEMO);
  });

  it('gRPC status', async () => {
    const { findings: [f] } = await run('select: grpc\nexpect: { response: { grpcStatus: 0 } }', 'pcaps/grpc/error-status.pcap');
    expect(f!.summary).toMatch(/^check "c": 4 of 4 matched flows break response\.grpcStatus \(expected gRPC status 0\): /);
    await passes('select: grpc\nexpect: { response: { grpcStatus: 0 } }', 'pcaps/grpc/unary.pcap');
  });

  it('body assertions (body.ts) run on the response as recorded', async () => {
    await passes("select: 'http[path=\"/checkout\"]'\nexpect: { response: { body: { json: [ { path: '$.status', equals: paid } ] } } }", DEMO);
    const { findings: [f] } = await run("select: 'http[path=\"/orders/*\"]'\nexpect: { response: { body: { json: [ { path: '$.id', equals: 43 } ] } } }", DEMO);
    expect(f!.summary).toMatch(/^check "c": 12 of 12 matched flows break response\.body: /);
    expect(f!.details.assertion).toBe('response.body');
  });
});

describe('perRequest', () => {
  it('fires when an inbound request causes more SQL or calls than allowed', async () => {
    const sql = await run('select: \'http[path="/orders/*"]\'\nexpect: { perRequest: { sql: { exactly: 0 } } }', DEMO);
    expect(sql.findings[0]!.summary).toBe('check "c": 12 of 12 matched requests made 1 SQL statement each, where exactly 0 was expected');
    expect(sql.findings[0]!.evidence[0]!.summary).toBe('1 SQL statement: select id, customer, total, status from orders where id = ?');
    const calls = await run('select: \'http[path="/checkout"]\'\nexpect: { perRequest: { calls: { atMost: 1 } } }', DEMO);
    expect(calls.findings[0]!.summary).toBe('check "c": 1 of 1 matched requests made 4 calls each, where at most 1 was expected');
    expect(calls.findings[0]!.details).toMatchObject({ assertion: 'perRequest.calls', expected: { atMost: 1 } });
  });

  it('passes where each request stays within bounds', async () => {
    await passes('select: \'http[path="/orders/*"]\'\nexpect: { perRequest: { sql: { atMost: 1 }, calls: { exactly: 0 } } }', DEMO);
    await passes('select: \'http[path="/orders/*"]\'\nexpect: { perRequest: { sql: { atMost: 1 } } }', FIXED);
    await passes('select: \'http[path="/checkout"]\'\nexpect: { perRequest: { calls: { atLeast: 1, atMost: 4 }, sql: { exactly: 0 } } }', DEMO);
  });
});

describe('order', () => {
  it('passes when each first match starts before the next, fires when not', async () => {
    await passes('order: [\'http[path="/checkout"]:first\', \'http[path="/payments"]:first\']', DEMO);
    await passes('order: [\'http[path="/orders/*"]\', \'postgres:last\', \'http[path="/payments"]:last\']', DEMO);
    const { findings: [f] } = await run('order: [\'http[path="/payments"]\', \'http[path="/checkout"]\']', DEMO);
    expect(f!.summary).toMatch(/^check "c": http\[path="\/checkout"\] started \d+\.\d ms before http\[path="\/payments"\]$/);
    expect(f!.details).toMatchObject({ assertion: 'order', actual: ['http[path="/checkout"]', 'http[path="/payments"]'] });
    expect(f!.evidence).toHaveLength(2);
  });

  it('is inconclusive when a selector matches nothing', async () => {
    expect((await run("order: ['http', 'grpc']", DEMO)).inconclusive).toEqual(['check "c": no matching flows for grpc']);
  });
});

describe('noSecretLeaves', () => {
  it('fires when the token received by order-service leaves it', async () => {
    const { findings: [f] } = await run('severity: warning\nnoSecretLeaves: order-service', DEMO);
    expect(f!.severity).toBe('warning');
    expect(f!.summary).toBe('check "c": credentials received by order-service left it on 4 calls: header authorization sent in header authorization of POST /payments to payment-service (×4)');
    expect(f!.evidence[0]!.summary).toMatch(/^credential from the header authorization of \S+ sent in header authorization to payment-service$/);
  });

  it('passes with the destination allowed, for another service, and is inconclusive for one never seen', async () => {
    await passes('noSecretLeaves: { service: order-service, allowTo: [payment-service] }', DEMO);
    await passes('noSecretLeaves: payment-service', DEMO);
    expect((await run('noSecretLeaves: billing', DEMO)).inconclusive).toEqual(['check "c": no flows to billing']);
  });
});

describe('examples/specs/demo.yaml', () => {
  it('fails on the demo: no backoff, a cache that never hits, and the customer token forwarded', async () => {
    const spec = await loadSpecFile('examples/specs/demo.yaml');
    const r = runChecks(spec, await flows(DEMO));
    expect(r.inconclusive).toEqual([]);
    expect(r.findings.map((f) => [f.details.check, f.details.assertion, f.severity])).toEqual([
      ['payment retries back off', 'backoff', 'error'],
      ['the order cache answers repeated lookups', 'count', 'error'],
      ["the customer's token stays in order-service", 'noSecretLeaves', 'error'],
    ]);
    expect(r.findings[1]!.evidence).toHaveLength(10); // evidence: { max: 10 }
    expect(r.findings[1]!.details.evidenceTotal).toBe(12);
    expect(spec.detectors).toEqual({ 'error-status': { severity: 'info' }, 'redundant-call': { errorCount: 5 }, slow: { budgetMs: 2000 } });
  });

  it('passes on the fixed demo', async () => {
    expect(runChecks(await loadSpecFile('examples/specs/demo.yaml'), await flows(FIXED))).toEqual({ findings: [], inconclusive: [] });
  });
});
