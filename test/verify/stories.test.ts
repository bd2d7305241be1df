import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { DetectorKind } from '../../src/verify/config.js';
import { runDetector } from '../../src/verify/detectors.js';
import { verify } from '../../src/verify/verdict.js';

/**
 * Issue 5: every detector fires on a capture of real traffic recorded for it (pcaps/verify, see
 * its README for each story) and reports nothing at error severity on unrelated real traffic.
 */
const cache = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string): Promise<FlowRecord[]> => {
  let p = cache.get(f);
  if (!p) cache.set(f, (p = analyzeFile(f).then((r) => r.records!)));
  return p;
};
const story = (name: string) => flows(`pcaps/verify/${name}.pcap`);
const run = async (kind: DetectorKind, name: string, setting = {}) => runDetector(kind, await story(name), setting);

describe('n-plus-one', () => {
  it('fires on 12 order_items queries per /customers/7/orders request, an error with count 12', async () => {
    const found = await run('n-plus-one', 'n-plus-one');
    const sql = found.find((f) => (f.details.operation as string).includes('order_items'))!;
    expect(sql.severity).toBe('error');
    expect(sql.details.count).toBe(12);
    expect(sql.details.distinctParameters).toBe(12);
    expect(sql.details.requests).toBe(3);
    expect(sql.summary).toMatch(/^12 calls of postgres "select sku, qty from order_items where order_id = \?" for one GET \/customers\/\{id\}\/orders request/i);
    // the evidence names the inbound request first, then each call with its parameter
    expect(sql.evidence[0]!.summary).toBe('the inbound request');
    expect(sql.evidence.length).toBe(13);
  });
  it('fires on 6 catalog calls per cart as a warning; the batched endpoint is not flagged', async () => {
    const found = await run('n-plus-one', 'n-plus-one');
    const http = found.find((f) => f.details.operation === 'GET /products/{id}')!;
    expect(http.severity).toBe('warning');
    expect(http.details.count).toBe(6);
    expect(found).toHaveLength(3);
  });
  it('calls that differ in a slug, not an id, are one operation too', async () => {
    const found = await run('n-plus-one', 'n-plus-one');
    const slug = found.find((f) => f.details.operation === 'GET /products/by-name/{param}')!;
    expect(slug.details).toMatchObject({ count: 5, distinctParameters: 5, requests: 1, inbound: 'GET /wishlists/{id}' });
    expect(slug.severity).toBe('warning');
  });
  it('a spec threshold changes when it is an error', async () => {
    const found = await run('n-plus-one', 'n-plus-one', { errorCount: 5 });
    expect(found.every((f) => f.severity === 'error')).toBe(true);
  });
});

describe('slow', () => {
  it('flags the two ~1.2 s index calls as over budget, and no fast call', async () => {
    const found = await run('slow', 'slow');
    const budget = found.filter((f) => f.details.cause === 'budget');
    expect(budget).toHaveLength(1);
    expect(budget[0]!.details.count).toBe(2);
    expect(budget[0]!.summary).toMatch(/^2 of 30 calls to GET \/index on 127\.0\.0\.23:8081 took longer than the 1000 ms budget/);
    expect(found.every((f) => f.severity === 'warning')).toBe(true);
  });
  it('with a 300 ms budget the 400 ms reports are flagged too', async () => {
    const found = await run('slow', 'slow', { budgetMs: 300 });
    expect(found.some((f) => f.details.cause === 'budget' && /GET \/report/.test(f.summary) && f.details.count === 3)).toBe(true);
  });
  it('outliers: calls far above their endpoint median, under the budget', async () => {
    const found = await run('slow', 'slow', { budgetMs: 5000 });
    const out = found.find((f) => f.details.cause === 'outlier' && /GET \/index/.test(f.summary))!;
    expect(out.details.count).toBe(2);
  });
});

describe('secret-forwarded', () => {
  it('fires, as an error, when gateway sends the user token on to analytics; its own service token to users-service is fine', async () => {
    const found = await run('secret-forwarded', 'secret-forwarded');
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.severity).toBe('error');
    expect(f.details.count).toBe(4);
    expect(f.details.destination).toBe('127.0.0.26:8082');
    expect(f.details.arrivedIn).toBe('header authorization');
    expect(f.summary).toMatch(/POST \/events on 127\.0\.0\.26:8082/);
  });
  it('redaction does not hide it, and neither does reading without redaction', async () => {
    const { Redactor } = await import('../../src/flows/redact.js');
    const redacted: FlowRecord[] = [];
    await analyzeFile('pcaps/verify/secret-forwarded.pcap', { redactor: new Redactor({ key: Buffer.from('k') }), onRecord: (r) => redacted.push(r) });
    expect(JSON.stringify(redacted)).not.toMatch(/Bearer [A-Za-z0-9._-]{20,}"/);
    expect(runDetector('secret-forwarded', redacted)[0]?.details.count).toBe(4);
  });
  it('allowTo lets a trusted destination receive it', async () => {
    expect(await run('secret-forwarded', 'secret-forwarded', { allowTo: ['127.0.0.26'] })).toEqual([]);
  });
});

describe('missing-propagation', () => {
  it('fires on the shipping calls that drop traceparent and x-request-id; inventory keeps them', async () => {
    const found = await run('missing-propagation', 'missing-propagation');
    expect(found).toHaveLength(1);
    expect(found[0]!.details).toMatchObject({ count: 5, calls: 5, destination: '127.0.0.29:8082' });
    expect(found[0]!.details.headers).toEqual(expect.arrayContaining(['traceparent', 'x-request-id']));
  });
});

describe('cache', () => {
  it('fires on /config fetched again while fresh (max-age=300), not on /prices (no Cache-Control)', async () => {
    const found = await run('cache', 'cache');
    expect(found).toHaveLength(1);
    expect(found[0]!.details).toMatchObject({ cause: 'refetch-while-fresh', count: 8, refetches: 7, path: '/config' });
  });
  it('with requireCacheControl, /prices responses lacking it are reported', async () => {
    const found = await run('cache', 'cache', { requireCacheControl: ['/prices'] });
    expect(found.find((f) => f.details.cause === 'missing-cache-control')?.details.count).toBe(8);
  });
});

describe('payload-shape', () => {
  it('fires on the id that is once a string, the dates in three formats, and the HTML body under application/json', async () => {
    const found = await run('payload-shape', 'payload-shape');
    const by = (path: string) => found.find((f) => f.details.path === path);
    expect(by('$.id')!.details.types).toEqual({ integer: 8, string: 1 });
    expect(by('$.created')!.details.types).toMatchObject({ 'string(date-iso8601)': 7, integer: 1, 'string(date-other)': 1 });
    const html = found.find((f) => f.details.cause === 'unparseable-body')!;
    expect(html.details.count).toBe(1);
    expect(found.every((f) => f.severity === 'warning')).toBe(true);
  });
});

describe('connection-churn', () => {
  it('fires on a new connection per pricing call; the pooled rates calls share one', async () => {
    const found = await run('connection-churn', 'connection-churn');
    const churn = found.filter((f) => f.details.cause === 'new-connection-per-call');
    expect(churn).toHaveLength(1);
    expect(churn[0]!.summary).toMatch(/to 127\.0\.0\.34:8081 used 11 TCP connections/);
    expect(churn[0]!.details.meanConnectMs).toBeGreaterThan(0);
    const resets = found.filter((f) => f.details.cause === 'reset');
    expect(resets).toHaveLength(1);
    expect(resets[0]!.details.count).toBe(1);
  });
});

describe('every detector stays quiet at error severity on unrelated real traffic', () => {
  const unrelated = ['pcaps/http1/mix.pcap', 'pcaps/http2/h2load.pcap', 'pcaps/postgres/pgbench-extended.pcap', 'pcaps/postgres/pgbench-simple.pcap', 'pcaps/grpc/concurrent.pcap', 'pcaps/http1/many-connections.pcap'];
  for (const f of unrelated) {
    it(f, async () => {
      const v = verify(await flows(f));
      expect(v.findings.filter((x) => x.severity === 'error')).toEqual([]);
      expect(v.verdict).not.toBe('fail');
    });
  }
});
