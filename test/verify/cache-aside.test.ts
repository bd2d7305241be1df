import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { isDatabaseRead, namePattern } from '../../src/verify/cache-aside.js';
import { cacheKeyStats, keyPattern } from '../../src/verify/cache-hits.js';
import { runDetector } from '../../src/verify/detectors.js';
import type { Finding } from '../../src/verify/types.js';
import { verify } from '../../src/verify/verdict.js';
import { RECORDS } from '../../src/flows/index.js';

/**
 * Issue 19, the cache-aside detector: fires on the recorded cache demo (the key holds Date.now(), so
 * no read ever hits), stays quiet on its fix and on ordinary Redis traffic, and models expiry,
 * deletion and multi-key reads on hand-built records.
 */
const loaded = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string): Promise<FlowRecord[]> => {
  let p = loaded.get(f);
  if (!p) loaded.set(f, (p = analyzeFile(f).then((r) => r.records!)));
  return p;
};
const loud = (fs: Finding[]) => fs.filter((f) => f.severity !== 'info');

describe('cache-aside on the recorded demo (pcaps/demo, scripts/record/cache-demo.mjs)', () => {
  it('cache.pcap: an error naming order:{id}:{timestamp}, with the 40 keys\' misses and SETs as evidence', async () => {
    const found = loud(runDetector('cache-aside', await flows('pcaps/demo/cache.pcap')));
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.kind).toBe('cache-aside');
    expect(f.severity).toBe('error');
    expect(f.summary).toMatch(/^40 cache keys of pattern order:\{id\}:\{timestamp\} on 127\.0\.0\.61:18641 were written after a miss and never read again: \{timestamp\} in the key never repeats/);
    expect(f.details).toMatchObject({ cause: 'keys-never-read', pattern: 'order:{id}:{timestamp}', neverRepeating: ['{timestamp}'], keys: 40, keyPatterns: ['order:{n}:{n}'] });
    const examples = f.details.exampleKeys as string[];
    expect(examples).toHaveLength(5);
    for (const k of examples) expect(k).toMatch(/^order:\d+:\d{13}$/);
    // each key: its GET (a miss) and its SET
    expect(f.evidence).toHaveLength(80);
    expect(f.evidence[0]!.summary).toBe(`GET ${examples[0]}: a miss`);
    expect(f.evidence[1]!.summary).toBe(`SET ${examples[0]}`);
    expect(f.evidence.every((e) => e.frames !== undefined)).toBe(true);
  });

  it('cache.pcap with its inbound requests: 40 fills, hit ratio 0, none served from the cache', async () => {
    const [f] = loud(runDetector('cache-aside', await flows('pcaps/demo/cache.pcap')));
    expect(f!.details).toMatchObject({ reads: 40, hits: 0, misses: 40, sets: 40, hitRatio: 0, fills: 40, servedFromCache: 0 });
  });

  it('the error fails the verdict', async () => {
    const v = verify(await flows('pcaps/demo/cache.pcap'));
    expect(v.verdict).toBe('fail');
    expect(v.findings.some((f) => f.kind === 'cache-aside' && f.severity === 'error')).toBe(true);
  });

  it('cache-fixed.pcap: no warning or error', async () => {
    expect(loud(runDetector('cache-aside', await flows('pcaps/demo/cache-fixed.pcap')))).toEqual([]);
  });

  it('cache-fixed.pcap: the hit ratio of order:{n} as info: 10 fills (miss → SELECT → SET), 30 requests served from the cache', async () => {
    const found = runDetector('cache-aside', await flows('pcaps/demo/cache-fixed.pcap'));
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.severity).toBe('info');
    expect(f.details).toMatchObject({ cause: 'hit-ratio', pattern: 'order:{n}', reads: 40, hits: 30, misses: 10, sets: 10, hitRatio: 0.75, fills: 10, servedFromCache: 30 });
    expect(f.summary).toBe('cache-aside on order:{n}: hit ratio 75% (30 of 40 reads); 10 fills (miss → database → SET), 30 requests answered from the cache with no database call');
        // mysql2's execute: COM_STMT_PREPARE then COM_STMT_EXECUTE on the first miss, both database calls of the fill
    expect(f.evidence.map((e) => e.summary)).toEqual(['a miss', 'the database call on the miss', 'the database call on the miss', 'the SET that fills the cache', 'a hit, in a request with no database call']);
    expect(verify(await flows('pcaps/demo/cache-fixed.pcap')).verdict).toBe('pass');
  });

  it('cacheKeyStats: hit ratio 0 before the fix, 0.75 after', async () => {
    const before = cacheKeyStats(await flows('pcaps/demo/cache.pcap')).find((s) => s.pattern === 'order:{n}:{n}')!;
    expect(before).toMatchObject({ reads: 40, hits: 0, misses: 40, sets: 40, hitRatio: 0, keys: 40, keysNeverReadAfterSet: 40 });
    const after = cacheKeyStats(await flows('pcaps/demo/cache-fixed.pcap')).find((s) => s.pattern === 'order:{n}')!;
    expect(after).toMatchObject({ reads: 40, hits: 30, misses: 10, sets: 10, hitRatio: 0.75, keys: 10, keysNeverReadAfterSet: 0 });
  });
});

describe('cache-aside stays quiet on ordinary Redis traffic', () => {
  // the detector stories of the other detectors too: a service reading Redis (hits, misses with no SET,
  // N+1 GETs, MGET) and one querying MariaDB, neither filling a cache
  for (const f of ['pcaps/redis/redis-cli.pcap', 'pcaps/redis/redis-node.pcap', 'pcaps/verify/redis-stories.pcap', 'pcaps/verify/mysql-stories.pcap']) {
    it(f, async () => {
      const all = await flows(f);
      expect(all.length).toBeGreaterThan(20);
      expect(runDetector('cache-aside', all)).toEqual([]);
    });
  }
  it('pcaps/redis/redis-benchmark.pcap: 2000 SETs then 2000 GETs of 1000 random keys, some misses, no SET after them', async () => {
    const all = await flows('pcaps/redis/redis-benchmark.pcap');
    const s = cacheKeyStats(all).find((x) => x.pattern === 'key:{n}')!;
    // redis-benchmark -r 1000: key:000000000000 … key:000000000999, read back by the GET test (most hit)
    expect(s.sets).toBe(2000);
    expect(s.reads).toBe(2000);
    expect(s.misses).toBeGreaterThan(0);
    expect(s.hitRatio).toBeGreaterThan(0.5);
    expect(runDetector('cache-aside', all)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// hand-built records

const SERVICE = '10.0.0.2', REDIS = { ip: '10.0.0.3', port: 6379 }, DB = { ip: '10.0.0.4', port: 5432 };
const T0 = 1_800_000_000; // capture seconds
let seq = 0;

function redis(at: number, command: string, args: string[], type: string, value?: string, length?: number): FlowRecord {
  const n = ++seq;
  return {
    id: `r-${n}`, protocol: 'redis', connectionId: 'r', src: { ip: SERVICE, port: 40000 }, dst: REDIS, start: at, end: at + 0.0005, durationMs: 0.5,
    request: { start: at, end: at, size: 10, command, args, ...(args[0] !== undefined ? { key: args[0] } : {}) },
    response: { start: at + 0.0005, end: at + 0.0005, size: 5, type, ...(value !== undefined ? { value } : {}), ...(length !== undefined ? { length } : {}) },
    redis: { resp: 2 },
  } as FlowRecord;
}

function sql(at: number, query: string): FlowRecord {
  return {
    id: `q-${++seq}`, protocol: 'postgres', connectionId: 'q', src: { ip: SERVICE, port: 40001 }, dst: DB, start: at, end: at + 0.001, durationMs: 1,
    request: { start: at, end: at, size: 20, message: 'Query', query, fingerprint: query },
    response: { start: at + 0.001, end: at + 0.001, size: 20, command: 'SELECT 1', rows: 1 },
  } as FlowRecord;
}

function inbound(at: number, ms: number, path: string): FlowRecord {
  return {
    id: `h-${++seq}`, protocol: 'http', connectionId: 'h', src: { ip: '10.0.0.1', port: 50000 }, dst: { ip: SERVICE, port: 8080 }, start: at, end: at + ms / 1000, durationMs: ms,
    request: { method: 'GET', path, version: '1.1', start: at, end: at, size: 40, headers: {}, bodySize: 0 },
    response: { status: 200, reason: 'OK', version: '1.1', start: at + ms / 1000, end: at + ms / 1000, size: 60, headers: {}, bodySize: 0 },
  } as FlowRecord;
}

const get = (at: number, key: string, value?: string) => redis(at, 'GET', [key], value === undefined ? 'nil' : 'bulk', value);
const set = (at: number, key: string, ...opts: string[]) => redis(at, 'SET', [key, 'v', ...opts], 'simple', 'OK');
/** A GET whose reply was not seen: neither a hit nor a miss. */
const unseen = (at: number, key: string): FlowRecord => {
  const r = redis(at, 'GET', [key], 'nil');
  delete (r as { response?: unknown }).response;
  return r;
};

/** A request that misses, queries and fills; with `read: false` it queries and writes without reading first. */
function fill(at: number, key: string, { read = true, ex = '60' } = {}): FlowRecord[] {
  return [inbound(at, 10, `/orders/${key}`), ...(read ? [get(at + 0.001, key)] : []), sql(at + 0.002, `select * from orders where id = '${key}'`), set(at + 0.005, key, 'EX', ex)];
}
const dbAfterSet = (fs: FlowRecord[], setting = { minDbAfterSet: 1 }) => runDetector('cache-aside', fs, setting).filter((f) => f.details.cause === 'db-after-set');

describe('namePattern: the varying parts of keys named', () => {
  it('epoch ms and seconds near the write are {timestamp}; other numbers {id}; a constant part stays', () => {
    const keys = ['v2:order:1:1800000000123', 'v2:order:2:1800000000456', 'v2:order:1:1800000001789'];
    expect(namePattern(keys, [T0, T0, T0 + 1])).toEqual({ pattern: 'v2:order:{id}:{timestamp}', neverRepeating: ['{timestamp}'] });
    expect(namePattern(['s:7:1800000000', 's:8:1800000005'], [T0, T0 + 5]).pattern).toBe('s:{id}:{timestamp}');
    // ids far from the capture time are not timestamps, whatever their size
    expect(namePattern(['user:1500000000', 'user:1200000000'], [T0, T0])).toEqual({ pattern: 'user:{id}', neverRepeating: [] });
  });
  it('uuids and hex runs; a per-request id never repeats only when the same entity was written again under a new key (same value)', () => {
    const u = (n: number) => `0e8c6f1a-1b2c-4d5e-8f90-${String(n).padStart(12, '0')}`;
    const cart = [`cart:1:${u(1)}`, `cart:1:${u(2)}`, `cart:2:${u(3)}`];
    // the key structure alone proves nothing
    expect(namePattern(cart)).toEqual({ pattern: 'cart:{id}:{uuid}', neverRepeating: [] });
    // cart 1's data written twice under two keys: the uuid is what makes each key new
    expect(namePattern(cart, [], ['{"items":[1,2]}', '{"items":[1,2]}', '{"items":[7]}'])).toEqual({ pattern: 'cart:{id}:{uuid}', neverRepeating: ['{uuid}'] });
    // different data for the same entity part: different things (idem:{user}:{uuid}, tenant:{id}:user:{id})
    expect(namePattern(cart, [], ['{"items":[1,2]}', '{"items":[3,4]}', '{"items":[7]}']).neverRepeating).toEqual([]);
    // a marker value ("1", "OK") is not an entity's data
    expect(namePattern(cart, [], ['1', '1', '1']).neverRepeating).toEqual([]);
    expect(namePattern(['doc:3f9a0c1b2d3e4f5a', 'doc:aa9a0c1b2d3e4f5b']).pattern).toBe('doc:{hex}');
    const order = ['order:1:1', 'order:1:2', 'order:2:3'];
    expect(namePattern(order)).toEqual({ pattern: 'order:{id}:{id}', neverRepeating: [] });
    expect(namePattern(order, [], ['{"id":1,"total":5}', '{"id":1,"total":5}', '{"id":2,"total":9}'])).toEqual({ pattern: 'order:{id}:{id}', neverRepeating: ['{id}'] });
    // composite keys whose parts all repeat (price per product and store), each read once: nothing never repeats
    expect(namePattern(['price:1:2', 'price:1:3', 'price:2:2'], [], ['{"p":100.5}', '{"p":100.5}', '{"p":100.5}']).neverRepeating).toEqual([]);
  });
  it('keyPattern matches the Redis module\'s operation names', () => {
    for (const k of ['order:1:1796676337619', 'sess:0e8c6f1a1b2c4d5e8f90', 'session:0e8c6f1a-1b2c-4d5e-8f90-000000000001', 'plain']) {
      const op = RECORDS.redis.operation(redis(T0, 'GET', [k], 'nil') as never);
      expect(op).toBe(`GET ${keyPattern(k)}`);
    }
  });
});

describe('keys written after a miss and never read again (Redis alone)', () => {
  const broken = (n: number) => Array.from({ length: n }, (_, i) => {
    const at = T0 + i, key = `order:${(i % 3) + 1}:${Math.round(at * 1000)}`;
    return [get(at, key), set(at + 0.001, key, 'EX', '60')];
  }).flat();
  it('an error at 10 keys, a warning at 3, nothing at 2 (thresholds from the spec)', () => {
    expect(runDetector('cache-aside', broken(10)).map((f) => f.severity)).toEqual(['error']);
    expect(runDetector('cache-aside', broken(3)).map((f) => f.severity)).toEqual(['warning']);
    expect(runDetector('cache-aside', broken(2))).toEqual([]);
    expect(runDetector('cache-aside', broken(5), { minKeys: 6 })).toEqual([]);
    expect(runDetector('cache-aside', broken(5), { errorKeys: 5 }).map((f) => f.severity)).toEqual(['error']);
  });
  it('a healthy cache read once per id (a short capture) is not the bug: no part never repeats', () => {
    const once = Array.from({ length: 12 }, (_, i) => [get(T0 + i, `order:${i + 1}`), set(T0 + i + 0.001, `order:${i + 1}`, 'EX', '60')]).flat();
    expect(runDetector('cache-aside', once)).toEqual([]);
  });
  it('a key read again after its SET is not an orphan, even when it later expires and is filled again', () => {
    const fs = [get(T0, 'o:1:1800000000000'), set(T0 + 0.1, 'o:1:1800000000000', 'EX', '1'), get(T0 + 0.5, 'o:1:1800000000000', 'v')];
    for (let i = 2; i < 12; i++) fs.push(get(T0 + i, `o:${i}:${1800000000000 + i}`, 'v'));
    expect(runDetector('cache-aside', fs)).toEqual([]);
  });
  it('a warm-up walking tenant:{1..3}:user:{1..12} once each is quiet: the tenant repeats, but no user is cached twice', () => {
    const fs = Array.from({ length: 12 }, (_, i) => {
      const at = T0 + i, key = `tenant:${(i % 3) + 1}:user:${i + 1}`;
      return [get(at, key), redis(at + 0.001, 'SET', [key, `{"id":${i + 1},"name":"user-${i + 1}"}`, 'EX', '600'], 'simple', 'OK')];
    }).flat();
    expect(runDetector('cache-aside', fs)).toEqual([]);
  });
  it('idempotency keys idem:{user}:{uuid}, each request its own uuid, are quiet', () => {
    const u = (n: number) => `0e8c6f1a-1b2c-4d5e-8f90-${String(n).padStart(12, '0')}`;
    const fs = Array.from({ length: 12 }, (_, i) => {
      const at = T0 + i, key = `idem:${(i % 2) + 1}:${u(i)}`;
      return [get(at, key), redis(at + 0.001, 'SET', [key, `{"status":201,"payment":${1000 + i}}`, 'EX', '86400'], 'simple', 'OK'), redis(at + 0.002, 'SET', [`lock:${u(i)}`, '1', 'NX'], 'simple', 'OK')];
    }).flat();
    expect(runDetector('cache-aside', fs)).toEqual([]);
  });
  it('a request counter in the key fires when the same order is written again under a new key', () => {
    const fs = Array.from({ length: 12 }, (_, i) => {
      const at = T0 + i, id = (i % 3) + 1, key = `order:${id}:${i + 1}`;
      return [get(at, key), redis(at + 0.001, 'SET', [key, `{"id":${id},"total":"10.50"}`, 'EX', '60'], 'simple', 'OK')];
    }).flat();
    const found = runDetector('cache-aside', fs);
    expect(found.map((f) => [f.severity, f.details.pattern, f.details.neverRepeating])).toEqual([['error', 'order:{id}:{id}', ['{id}']]]);
  });
});

describe('cache stats: what a hit is', () => {
  it('MGET counts a hit or a miss per key; HGETALL empty and EXISTS 0 are misses; a failed SET NX and a discarded MULTI write nothing', () => {
    const fs = [
      redis(T0, 'MGET', ['item:1', 'item:2', 'item:3'], 'array', '["a", "(nil)", "c"]', 3),
      redis(T0 + 1, 'HGETALL', ['user:1'], 'array', '[]', 0),
      redis(T0 + 2, 'HGETALL', ['user:2'], 'map', '["name", "ada"]', 1),
      redis(T0 + 3, 'EXISTS', ['user:3'], 'integer', '0'),
      redis(T0 + 4, 'SET', ['item:9', 'v', 'NX'], 'nil'),
      redis(T0 + 5, 'SET', ['item:8', 'v'], 'simple', 'QUEUED'),
      redis(T0 + 6, 'GET', ['item:7'], 'error'),
    ];
    const by = Object.fromEntries(cacheKeyStats(fs).map((s) => [s.pattern, s]));
    expect(by['item:{n}']).toMatchObject({ reads: 3, hits: 2, misses: 1, sets: 0, hitRatio: 0.667 });
    expect(by['user:{n}']).toMatchObject({ reads: 3, hits: 1, misses: 2, hitRatio: 0.333 });
  });
  it('an MGET reply preview cut short leaves the keys past the cut unknown', () => {
    const s = cacheKeyStats([redis(T0, 'MGET', ['k:1', 'k:2', 'k:3'], 'array', '["x", "(ni…', 3), redis(T0 + 1, 'MGET', ['k:4', 'k:5'], 'array', '["(nil)", "long valu…", …]', 2)]);
    expect(s[0]).toMatchObject({ reads: 3, hits: 2, misses: 1 });
  });
});

describe('database reads for a key just set (with inbound requests)', () => {
  /** A request that read `key` (hit: a value; unseen: no reply), queried the database, and wrote the key again. */
  const refill = (at: number, key: string, read: 'hit' | 'unseen' = 'hit', then = key): FlowRecord[] => [
    inbound(at, 10, `/orders/${key}`), read === 'hit' ? get(at + 0.001, key, 'v') : unseen(at + 0.001, key),
    sql(at + 0.002, `select * from orders where id = '${key}'`), set(at + 0.003, then, 'EX', '60'),
  ];
  it('hit → SELECT → SET of the same key: reported, with the SET, the hit, the query and the rewrite as evidence', () => {
    const fs = [...fill(T0, 'a'), ...refill(T0 + 1, 'a')];
    const [f] = dbAfterSet(fs);
    expect(f).toMatchObject({ severity: 'warning', details: { cause: 'db-after-set', pattern: 'a', count: 1, afterHit: 1, reads: 2, hits: 1, fills: 1 } });
    // its hit ratio is in the warning, not in an info finding beside it
    expect(runDetector('cache-aside', fs, { minDbAfterSet: 1 })).toHaveLength(1);
    expect(f!.evidence.map((e) => e.summary)).toEqual(['SET a', 'GET a: a hit', 'database read for a', 'SET a after the database read']);
    // the default needs 2 such calls
    expect(dbAfterSet(fs, {} as never)).toEqual([]);
    // a key of the same pattern written after the read counts too
    expect(dbAfterSet([...fill(T0, 'o:1'), ...refill(T0 + 1, 'o:1', 'hit', 'o:2')]).map((x) => x.details.keys)).toEqual([['o:1']]);
  });
  it('a hit followed by a SELECT with no rewrite of its key is not reported: a session read, then orders from the database', () => {
    const fs = [...fill(T0, 'session:1')];
    for (let i = 1; i <= 12; i++) {
      fs.push(inbound(T0 + i, 10, '/orders'), get(T0 + i + 0.001, 'session:1', '{"user":1}'), sql(T0 + i + 0.002, 'select * from orders where user_id = 1'));
      // writing a key of another pattern afterwards ties nothing to the session
      if (i % 2) fs.push(set(T0 + i + 0.003, `orders:list:${i}`, 'EX', '30'));
    }
    expect(dbAfterSet(fs)).toEqual([]);
    expect(runDetector('cache-aside', fs).filter((f) => f.severity !== 'info')).toEqual([]);
  });
  it('write-through (UPDATE, then SET of the fresh key) and invalidation (hit, UPDATE, DEL) are not reported', () => {
    const through = [...fill(T0, 'order:1')];
    for (let i = 1; i <= 12; i++) through.push(inbound(T0 + i, 10, '/orders/1'), sql(T0 + i + 0.001, "update orders set total = 5 where id = 1"), set(T0 + i + 0.002, 'order:1', 'EX', '600'));
    expect(dbAfterSet(through)).toEqual([]);
    // even after a read of the key: the call is a write, not a read
    const rmw = [...fill(T0, 'order:1'), inbound(T0 + 1, 10, '/orders/1'), get(T0 + 1.001, 'order:1', 'v'), sql(T0 + 1.002, 'UPDATE orders SET total = 5 WHERE id = 1'), set(T0 + 1.003, 'order:1', 'EX', '600')];
    expect(dbAfterSet(rmw)).toEqual([]);
    const invalidate = [...fill(T0, 'order:1')];
    for (let i = 1; i <= 12; i++) invalidate.push(inbound(T0 + i, 10, '/orders/1'), get(T0 + i + 0.001, 'order:1', 'v'), sql(T0 + i + 0.002, 'update orders set total = 5 where id = 1'), redis(T0 + i + 0.003, 'DEL', ['order:1'], 'integer', '1'));
    expect(dbAfterSet(invalidate)).toEqual([]);
    expect(runDetector('cache-aside', invalidate).filter((f) => f.severity !== 'info')).toEqual([]);
  });
  it('isDatabaseRead: SELECT, (SELECT …), WITH … SELECT; not DML, CALL, FOR UPDATE; with no SQL, a result with rows', () => {
    for (const q of ['select 1', '  /* hint */ SELECT * FROM t', '(select a from t) union (select b from u)', 'with x as (select 1) select * from x']) expect(isDatabaseRead(sql(T0, q))).toBe(true);
    for (const q of ['insert into t values (1)', 'UPDATE t SET a = 1', 'delete from t', 'replace into t values (1)', 'call refresh()', 'with x as (delete from t returning *) select * from x', 'select * from t where id = 1 for update', 'begin']) expect(isDatabaseRead(sql(T0, q))).toBe(false);
    const bare = (response: object) => ({ ...sql(T0, ''), request: { start: T0, end: T0, size: 20, message: 'Execute' }, response: { start: T0, end: T0, size: 20, ...response } }) as FlowRecord;
    expect(isDatabaseRead(bare({ command: 'SELECT 3', rows: 3 }))).toBe(true);
    expect(isDatabaseRead(bare({ command: 'UPDATE 1' }))).toBe(false);
    expect(isDatabaseRead(bare({ command: 'DELETE 2', rows: 2 }))).toBe(false);
    expect(isDatabaseRead(get(T0, 'k'))).toBe(false);
  });
  it('a read whose reply was not seen counts while SET … EX keeps the key fresh; after EX runs out it does not', () => {
    expect(dbAfterSet([...fill(T0, 'k:1'), ...refill(T0 + 30, 'k:1', 'unseen')])).toHaveLength(1);
    expect(dbAfterSet([...fill(T0, 'k:1'), ...refill(T0 + 61, 'k:1', 'unseen')])).toEqual([]);
    // PX is milliseconds
    expect(dbAfterSet([inbound(T0, 10, '/'), sql(T0 + 0.001, 'select 1'), set(T0 + 0.002, 'k:1', 'PX', '500'), ...refill(T0 + 1, 'k:1', 'unseen')])).toEqual([]);
    // a miss is never this (a key evicted early): it is a fill
    expect(dbAfterSet([...fill(T0, 'k:1'), ...fill(T0 + 30, 'k:1')])).toEqual([]);
  });
  it('EXPIRE shortens a key\'s life, PERSIST ends it; DEL and FLUSHDB remove the key', () => {
    const base = () => [inbound(T0, 10, '/'), sql(T0 + 0.001, 'select 1'), set(T0 + 0.002, 'k:1')]; // no expiry
    expect(dbAfterSet([...base(), ...refill(T0 + 100, 'k:1', 'unseen')])).toHaveLength(1);
    expect(dbAfterSet([...base(), redis(T0 + 1, 'EXPIRE', ['k:1', '5'], 'integer', '1'), ...refill(T0 + 10, 'k:1', 'unseen')])).toEqual([]);
    expect(dbAfterSet([...base(), redis(T0 + 1, 'EXPIRE', ['k:1', '5'], 'integer', '1'), redis(T0 + 2, 'PERSIST', ['k:1'], 'integer', '1'), ...refill(T0 + 10, 'k:1', 'unseen')])).toHaveLength(1);
    // EXPIRE answered 0 changed nothing (no such key, or a condition failed)
    expect(dbAfterSet([...base(), redis(T0 + 1, 'EXPIRE', ['k:1', '5', 'NX'], 'integer', '0'), ...refill(T0 + 10, 'k:1', 'unseen')])).toHaveLength(1);
    expect(dbAfterSet([...base(), redis(T0 + 1, 'DEL', ['k:0', 'k:1'], 'integer', '1'), ...refill(T0 + 10, 'k:1', 'unseen')])).toEqual([]);
    expect(dbAfterSet([...base(), redis(T0 + 1, 'FLUSHDB', [], 'simple', 'OK'), ...refill(T0 + 10, 'k:1', 'unseen')])).toEqual([]);
  });
  it('the miss → query → SET of a working cache-aside is a fill, not a call after SET; the hit ratio is info', () => {
    // the last request reads its key twice: one request answered from the cache, two hits
    const fs = [...fill(T0, 'o:1'), inbound(T0 + 1, 5, '/orders/o:1'), get(T0 + 1.001, 'o:1', 'v'), ...fill(T0 + 2, 'o:2'), inbound(T0 + 3, 5, '/orders/o:2'), get(T0 + 3.001, 'o:2', 'v'), get(T0 + 3.002, 'o:2', 'v')];
    const found = runDetector('cache-aside', fs, { minDbAfterSet: 1 });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ severity: 'info', details: { cause: 'hit-ratio', pattern: 'o:{n}', reads: 5, hits: 3, hitRatio: 0.6, fills: 2, servedFromCache: 2 } });
  });
  it('ten hit → SELECT → SET requests make an error', () => {
    const fs = [...fill(T0, 'p')];
    for (let i = 1; i <= 10; i++) fs.push(...refill(T0 + i, 'p'));
    expect(dbAfterSet(fs, {} as never).map((f) => [f.severity, f.details.count])).toEqual([['error', 10]]);
  });
});
