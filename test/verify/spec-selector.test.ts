import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { ServiceNames } from '../../src/verify/services.js';
import { parseSelector, selectFlows } from '../../src/verify/spec/index.js';
import { selectorFromObject } from '../../src/verify/spec/selector.js';

/** Selectors on real records from the recorded captures. */
const cache = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string) => cache.get(f) ?? cache.set(f, analyzeFile(f).then((r) => r.records!)).get(f)!;
const names = new ServiceNames({ 'order-service': ['127.0.0.2'], 'payment-service': ['127.0.0.3:8081'], postgres: ['127.0.0.4:5432'] });
const pick = async (file: string, sel: string) => selectFlows(parseSelector(sel), await flows(file), names).flows;
const count = async (file: string, sel: string) => (await pick(file, sel)).length;
/** How many flows each selector matches in a capture. */
async function expectCounts(file: string, cases: [string, number][]): Promise<void> {
  for (const [sel, n] of cases) expect(await count(file, sel), sel).toBe(n);
}
const path = (r: FlowRecord) => (r.request as { path?: string } | undefined)?.path;

describe('selectors on the demo capture (HTTP/1.x and PostgreSQL)', () => {
  const demo = 'pcaps/demo/demo.pcap';

  it('protocol, service (server side) and client (calling side) by the services map', async () => {
    await expectCounts(demo, [
      ['http', 17],
      ['*', 29],
      ['postgres', 12],
      ['http2', 0],
      ['http[service="order-service"]', 13],
      ['http[client="order-service"]', 4],
      ['*[client="order-service" service="postgres"]', 12],
      ['http[service="127.0.0.3:8081"]', 4], // an address works without a name
    ]);
  });

  it('method and path: globs, templates and regexes', async () => {
    await expectCounts(demo, [
      ['http[method=POST]', 5],
      ['http[method=post path="/payments"]', 4],
      ['http[path="/orders/*"]', 12],
      ['http[path="/orders/{id}"]', 12],
      ['http[path="/**"]', 17],
      ['http[path="/orders"]', 0],
      ['http[path=/^\\/orders\\/\\d+$/]', 12],
      ["http[path='/check*']", 1],
    ]);
  });

  it('status: exact, class and comparisons', async () => {
    await expectCounts(demo, [
      ['http[status=503]', 3],
      ['http[status="5xx"]', 3],
      ['http[status>=500]', 3],
      ['http[status="<300"]', 14],
      ['http[path="/payments" status!=503]', 1],
      ['postgres[status=200]', 0],
    ]);
  });

  it('request headers: presence and value', async () => {
    await expectCounts(demo, [
      ['http[header.authorization]', 17],
      ['http[header.X-Request-Id="req-0013"]', 5], // the checkout and its four payment attempts
      ['http[header.traceparent]', 0],
    ]);
  });

  it('SQL: fingerprint glob (case-insensitive) and query text', async () => {
    await expectCounts(demo, [
      ['postgres[fingerprint="select * from orders where id = ?"]', 12],
      ['postgres[fingerprint="SELECT id, customer, * FROM orders *"]', 12],
      ['postgres[query="FROM orders"]', 12],
      ['postgres[method=execute]', 12],
      ['postgres[fingerprint="update *"]', 0],
    ]);
  });

  it(':first, :last and :nth(n) pick in time order', async () => {
    const all = await pick(demo, 'http[path="/payments"]');
    expect(all.map((r) => r.start)).toEqual([...all.map((r) => r.start)].sort((a, b) => a - b));
    expect(await pick(demo, 'http[path="/payments"]:first')).toEqual([all[0]]);
    expect(await pick(demo, 'http[path="/payments"]:last')).toEqual([all[3]]);
    expect(await pick(demo, 'http[path="/payments"]:nth(2)')).toEqual([all[1]]);
    expect(await pick(demo, 'http[path="/payments"]:nth(5)')).toEqual([]);
    expect((await pick(demo, 'http[path="/payments"]:last'))[0]!.response).toMatchObject({ status: 201 });
  });

  it('the object form selects what the string form does', async () => {
    const fs = await flows(demo);
    const obj = selectorFromObject({ protocol: 'http', service: 'payment-service', method: 'POST', status: 503, 'header.x-request-id': 'req-0013', pick: 'last' });
    expect(obj.text).toBe('http[service="payment-service" method="POST" status="503" header.x-request-id="req-0013"]:last');
    expect(selectFlows(obj, fs, names).flows).toEqual(await pick(demo, obj.text));
    expect(selectFlows(obj, fs, names).flows).toHaveLength(1);
    expect(selectFlows(selectorFromObject({ 'header.authorization': true }), fs, names).flows).toHaveLength(17);
  });
});

describe('selectors on HTTP/2, gRPC and PostgreSQL captures', () => {
  it('HTTP/2 (h2load): http means HTTP/1.x only', async () => {
    await expectCounts('pcaps/http2/h2load.pcap', [
      ['http2[method=GET path="/" status=200]', 200],
      ['http', 0],
    ]);
  });

  it('gRPC: service, method, path and status', async () => {
    await expectCounts('pcaps/grpc/unary.pcap', [
      ['grpc[grpcService="tapwire.demo.Orders" grpcMethod="GetOrder"]', 4],
      ['grpc[path="/tapwire.demo.Orders/*"]', 5],
      ['grpc[grpcStatus=0]', 5],
    ]);
    await expectCounts('pcaps/grpc/error-status.pcap', [
      ['grpc[grpcStatus!=0]', 4],
      ['grpc[grpcMethod=GetOrder grpcStatus=5]', 2],
    ]);
    await expectCounts('pcaps/grpc/deadline.pcap', [['grpc[grpcStatus=4]', 1]]); // DEADLINE_EXCEEDED
  });

  it('PostgreSQL (pgbench, extended protocol): fingerprints with placeholders', async () => {
    const pg = 'pcaps/postgres/pgbench-extended.pcap';
    await expectCounts(pg, [
      ['postgres[fingerprint="update pgbench_accounts set *"]', 100],
      ['postgres[fingerprint="update pgbench_* set *"]', 300],
      ['postgres[method=Execute]', 700],
    ]);
    // The 100 inserts, and the TRUNCATE before them.
    expect(await count(pg, 'postgres[query="pgbench_history"]')).toBeGreaterThanOrEqual(101);
  });

  it('a flow whose request was not seen might match a path: unknown, not a miss', async () => {
    const fs = await flows('pcaps/http1/mid-stream.pcap');
    const { flows: hit, unknown } = selectFlows(parseSelector('http[path="/api/**"]'), fs, names);
    expect(unknown.map((r) => r.incompleteReason)).toEqual(['no-request-seen']);
    expect(hit.every((r) => path(r)?.startsWith('/api/'))).toBe(true);
    // A test the record can answer (its status) still decides.
    expect(selectFlows(parseSelector('http[status=200]'), fs, names).unknown).toEqual([]);
  });
});
