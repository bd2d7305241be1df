import { describe, expect, it } from 'vitest';
import type { FlowRecord, RedisFlow } from '../../src/flows/record.js';
import { RECORDS } from '../../src/flows/protocols/index.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { DetectorKind } from '../../src/verify/config.js';
import { runDetector } from '../../src/verify/detectors.js';
import type { Finding } from '../../src/verify/types.js';

/**
 * Issue 19: the detectors that apply to Redis fire on real traffic recorded for them and stay quiet
 * on ordinary Redis traffic. pcaps/verify/redis-stories.pcap is a Node service (127.0.0.40, ioredis)
 * with the bugs (scripts/record/stories-cache-db.mjs records it and says what each request does);
 * pcaps/redis/*.pcap are the decoder's captures and redis-benchmark's load.
 */
const cache = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string): Promise<FlowRecord[]> => {
  let p = cache.get(f);
  if (!p) cache.set(f, (p = analyzeFile(f).then((r) => r.records!)));
  return p;
};
const STORIES = 'pcaps/verify/redis-stories.pcap';
const run = async (kind: DetectorKind, file = STORIES): Promise<Finding[]> => runDetector(kind, await flows(file));
const redis = async (file = STORIES): Promise<RedisFlow[]> => (await flows(file)).filter((r): r is RedisFlow => r.protocol === 'redis');
/** Findings about Redis calls: the service's own HTTP answers (500s) are judged too, and are not these tests' subject. */
const aboutRedis = (fs: Finding[]) => fs.filter((f) => /redis/i.test(f.summary));

describe('n-plus-one on Redis', () => {
  it('fires on one GET per cart item (12 keys item:{n}), an error naming the call, with each key as evidence', async () => {
    const found = await run('n-plus-one');
    expect(found).toHaveLength(1); // the batched request (one MGET) is not one
    const f = found[0]!;
    expect(f.kind).toBe('n-plus-one');
    expect(f.severity).toBe('error');
    expect(f.summary).toMatch(/^12 calls of redis GET item:\{n\} for one GET \/carts\/\{id\} request on 127\.0\.0\.40:8090, differing only in a parameter$/);
    expect(f.details).toMatchObject({ count: 12, distinctParameters: 12, requests: 1, operation: 'GET item:{n}', inbound: 'GET /carts/{id}' });
    expect(f.evidence[0]!.summary).toBe('the inbound request');
    expect(f.evidence.slice(1).map((e) => e.summary)).toEqual(Array.from({ length: 12 }, (_, i) => `call ${i + 1} with ["item:${i + 1}"]`));
  });
});

describe('what a Redis call is, for grouping', () => {
  it('keys differing in a number, a UUID or a long hex id are one operation', () => {
    const op = (key: string) => RECORDS.redis.operation({ protocol: 'redis', request: { command: 'GET', args: [key], key } } as never);
    expect(op('item:12')).toBe('GET item:{n}');
    expect(op('session:3f2b8c1e-9a4d-4e6f-8b7a-0c1d2e3f4a5b')).toBe('GET session:{id}');
    expect(op('session:0b9e7d6c-1a2b-4c3d-9e8f-7a6b5c4d3e2f')).toBe('GET session:{id}');
    expect(op('doc:3f9a0c1b2d3e4f5a:v2')).toBe('GET doc:{id}:v{n}');
  });
});

describe('redundant-call on Redis', () => {
  it('fires on GET user:42 three times within one request, as a warning naming the key', async () => {
    const found = await run('redundant-call');
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.severity).toBe('warning');
    expect(f.summary).toBe('3 identical calls: redis GET user:42 (within one inbound request)');
    expect(f.details).toMatchObject({ count: 3, inboundRequests: 1 });
    expect(f.evidence).toHaveLength(3);
  });
  it('a key read again by later requests is the cache at work, and three INCRs in a request are three ids', async () => {
    const rs = await redis();
    // GET item:1 was read by three /items/1 requests (and the N+1), with the same answer each time
    expect(rs.filter((r) => r.request?.command === 'GET' && r.request.key === 'item:1').length).toBeGreaterThanOrEqual(4);
    // each /checkout allocates three order-line ids: INCR order-line:seq three times, answers 1, 2, 3 …
    const incr = rs.filter((r) => r.request?.command === 'INCR');
    expect(incr.map((r) => r.response?.value)).toEqual(['1', '2', '3', '4', '5', '6']);
    const found = await run('redundant-call');
    expect(found.some((f) => /item:1|INCR/.test(f.summary))).toBe(false);
  });
});

describe('error-status on Redis', () => {
  it('fires per command and error code: WRONGTYPE on HGET, the Lua script\'s ERR on EVAL', async () => {
    const found = aboutRedis(await run('error-status'));
    expect(found.map((f) => [f.details.count, f.summary.replace(/\).*$/, ')')])).toEqual([
      [2, '2 × Redis WRONGTYPE (WRONGTYPE Operation against a key holding the wrong kind of value)'],
      [8, '8 × Redis ERR (ERR value is not an integer or out of range script: 61636018f4e6b5817b89791bbed242f93fa089e3, on @user_script:1.)'],
    ]);
    expect(found[0]!.summary).toMatch(/from redis HGET session:9 user$/);
    expect(found[1]!.summary).toMatch(/from redis EVAL return redis\.call\('INCR', KEYS\[1\]\) 1 labels:next$/);
    expect(found.every((f) => f.kind === 'error-status' && f.severity === 'warning')).toBe(true);
    expect(found[0]!.evidence).toHaveLength(2);
  });
  it('a nil reply is a miss, not an error; ioredis\' CLIENT SETINFO probe, refused by Redis 7.0, is not a problem', async () => {
    const rs = await redis();
    expect(rs.filter((r) => r.request?.key?.startsWith('item:') && r.response?.type === 'nil').length).toBeGreaterThanOrEqual(2);
    const setinfo = rs.filter((r) => r.request?.command === 'CLIENT' && r.request.args[0] === 'SETINFO');
    expect(setinfo.length).toBeGreaterThanOrEqual(2);
    expect(setinfo.every((r) => r.response?.type === 'error')).toBe(true);
    const found = await run('error-status');
    expect(found.some((f) => /SETINFO|GET item/.test(f.summary))).toBe(false);
  });
});

describe('retry on Redis', () => {
  it('fires on a failing Lua script retried at a fixed 50 ms, an error; the backing-off one is info', async () => {
    const found = aboutRedis(await run('retry'));
    expect(found).toHaveLength(2);
    const [fixed, backoff] = found;
    expect(fixed!.severity).toBe('error');
    expect(fixed!.summary).toMatch(/^4 attempts of redis EVAL return redis\.call\('INCR', KEYS\[1\]\) 1 labels:next; retries at (0\.0[56] s, ){2}0\.0[56] s \(constant: delays do not grow\); the last attempt failed too$/);
    expect(fixed!.details).toMatchObject({ attempts: 4, pattern: 'constant', succeeded: false, connections: 1 });
    for (const d of fixed!.details.delaysMs as number[]) expect(d).toBeGreaterThanOrEqual(49);
    expect(fixed!.evidence.map((e) => e.summary)).toEqual(['attempt 1, failed', 'attempt 2, failed', 'attempt 3, failed', 'attempt 4, failed']);
    expect(backoff!.severity).toBe('info');
    expect(backoff!.details.pattern).toBe('exponential');
  });
  it('the same failing HGET made once for each of two requests is not a retry', async () => {
    const hget = (await redis()).filter((r) => r.request?.command === 'HGET');
    expect(hget).toHaveLength(2);
    expect((await run('retry')).some((f) => /HGET/.test(f.summary))).toBe(false);
  });
});

describe('slow on Redis', () => {
  it('flags the Lua script over the budget and the outlier day, naming the call', async () => {
    const found = await run('slow');
    const budget = found.find((f) => f.details.cause === 'budget')!;
    expect(budget.summary).toMatch(/^1 of 8 calls to redis EVAL report:\{n\} on 127\.0\.0\.41:18631 took longer than the 1000 ms budget \(\d+(\.\d)? ms\), making 1 inbound request slow too$/);
    expect(budget.details.maxMs).toBeGreaterThan(1000);
    const outlier = found.find((f) => f.details.cause === 'outlier')!;
    expect(outlier.summary).toMatch(/^1 of 8 calls to redis EVAL report:\{n\}/);
    expect(outlier.details.maxMs).toBeGreaterThan(150);
    expect(found.every((f) => f.kind === 'slow' && f.severity === 'warning' && f.evidence.length === 1)).toBe(true);
    expect(found).toHaveLength(2); // the slow HTTP requests are not a second finding
  });
  it('a BRPOP that waited its 1.5 s timeout on an empty queue is blocking, not slow', async () => {
    const brpop = (await redis()).filter((r) => r.request?.command === 'BRPOP');
    expect(brpop).toHaveLength(2);
    expect(brpop.every((r) => r.durationMs > 1400 && r.response?.type === 'nil')).toBe(true);
    expect((await run('slow')).some((f) => /BRPOP/.test(f.summary))).toBe(false);
  });
});

describe('unparameterised-sql', () => {
  it('does not apply to Redis: nothing on its stories', async () => {
    expect(await run('unparameterised-sql')).toEqual([]);
  });
});

describe('stays quiet on ordinary Redis traffic', () => {
  const KINDS: DetectorKind[] = ['redundant-call', 'n-plus-one', 'error-status', 'slow', 'retry', 'unparameterised-sql'];
  it('redis-benchmark: not even info', async () => {
    const fs = await redis('pcaps/redis/redis-benchmark.pcap');
    expect(fs.filter((r) => r.request && r.response).length).toBeGreaterThanOrEqual(2000);
    for (const kind of KINDS) expect(await run(kind, 'pcaps/redis/redis-benchmark.pcap'), kind).toEqual([]);
  });
  it('a working cache-aside (pcaps/demo/cache-fixed.pcap: the same order:{n} keys read by request after request): nothing', async () => {
    const f = 'pcaps/demo/cache-fixed.pcap';
    const gets = (await redis(f)).filter((r) => r.request?.command === 'GET' && r.response?.type === 'bulk');
    expect(gets.length).toBeGreaterThanOrEqual(20);
    for (const kind of KINDS) expect(await run(kind, f), kind).toEqual([]);
  });
  it('the decoder\'s captures (redis-cli, a Node client with MULTI, pub/sub, RESP3): only the errors they were recorded with', async () => {
    for (const f of ['pcaps/redis/redis-cli.pcap', 'pcaps/redis/redis-node.pcap']) {
      expect((await redis(f)).filter((r) => r.request && r.response).length, f).toBeGreaterThanOrEqual(40);
      for (const kind of KINDS.filter((k) => k !== 'error-status')) expect(await run(kind, f), `${kind} on ${f}`).toEqual([]);
    }
    const cli = await run('error-status', 'pcaps/redis/redis-cli.pcap');
    expect(cli.map((f) => f.summary.replace(/ \(.*$/, ''))).toEqual(['1 × Redis WRONGTYPE', '1 × Redis ERR']);
    const node = await run('error-status', 'pcaps/redis/redis-node.pcap');
    expect(node.map((f) => f.summary.replace(/ \(.*$/, ''))).toEqual(['1 × Redis ERR']);
    expect([...cli, ...node].every((f) => f.severity === 'warning')).toBe(true);
  });
});
