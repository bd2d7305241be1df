import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_NAMES } from '../../src/flows/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { ServiceNames } from '../../src/verify/services.js';
import { namedServices, parseSelector, parseSpec, runChecks, selectFlows, SpecError } from '../../src/verify/spec/index.js';
import { redisGlob } from '../../src/verify/spec/glob.js';
import { selectorFromObject } from '../../src/verify/spec/selector.js';

/** Issue 19: the `redis.command`, `redis.key` and `mysql.query` selectors and the `cache` assertion. */

const CLI = 'pcaps/redis/redis-cli.pcap';
const NODE = 'pcaps/redis/redis-node.pcap';
const MYSQL = 'pcaps/mysql/mysql-basic.pcap';

const loaded = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string) => loaded.get(f) ?? loaded.set(f, analyzeFile(f).then((r) => r.records!)).get(f)!;
const names = new ServiceNames({});
const count = async (file: string, sel: string) => selectFlows(parseSelector(sel), await flows(file), names).flows.length;
async function expectCounts(file: string, cases: [string, number][]): Promise<void> {
  for (const [sel, n] of cases) expect(await count(file, sel), sel).toBe(n);
}

const parse = (text: string) => parseSpec(text, 'bad.yaml', '/tmp');
function errorOf(text: string): string {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as SpecError).message;
  }
  throw new Error(`parsed without error:\n${text}`);
}
const check = (body: string) => `version: 1\nchecks:\n  - name: c\n${body.replace(/^/gm, '    ')}\n`;
const cacheSpec = (cache: string) => parse(check(`cache: ${cache}`));
const runOn = async (file: string, cache: string) => runChecks(cacheSpec(cache), await flows(file));

describe('Redis globs (as KEYS and SCAN MATCH read them)', () => {
  it('*, ?, classes, ranges, negation and escapes', () => {
    const m = (glob: string, key: string) => redisGlob(glob).test(key);
    expect(m('order:*', 'order:42:1701')).toBe(true); // `*` crosses ':'
    expect(m('order:*', 'orders:1')).toBe(false);
    expect(m('order:?', 'order:7')).toBe(true);
    expect(m('order:?', 'order:17')).toBe(false);
    expect(m('user:[0-9]*', 'user:42:profile')).toBe(true);
    expect(m('user:[^0-9]*', 'user:42:profile')).toBe(false);
    expect(m('h[ae]llo', 'hallo')).toBe(true);
    expect(m('a\\*b', 'a*b')).toBe(true);
    expect(m('a\\*b', 'axb')).toBe(false);
    expect(m('a.b', 'axb')).toBe(false); // regex characters are literal
    expect(m('[\\]]x', ']x')).toBe(true);
    expect(m('[]x', 'x')).toBe(false); // `]` closes at once: an empty class, as in Redis
    expect(m('[^]x', 'yx')).toBe(true);
    expect(m('Order:*', 'order:1')).toBe(false); // keys are case-sensitive
    expect(redisGlob('get', { ignoreCase: true }).test('GET')).toBe(true);
  });

  it('an unclosed class or a lone backslash is an error that says how to write it', () => {
    expect(() => redisGlob('order:[0-9')).toThrow('glob "order:[0-9" has a "[" at character 7 without its "]" (write "\\[" for a bracket)');
    expect(() => redisGlob('order\\')).toThrow('ends with a lone "\\"');
  });
});

describe('the redis.command and redis.key selectors on recorded redis-cli and Node traffic', () => {
  it('redis.command: the command name, case-insensitive, as a glob', async () => {
    await expectCounts(CLI, [
      ['redis[redis.command=GET]', 4],
      ['redis[redis.command=get]', 4],
      ['redis[redis.command="H*"]', 2], // HSET, HGETALL
      ['redis[redis.command=SET]', 51], // one SET, and redis-cli --pipe's 50
      ['*[redis.command=AUTH]', 1],
      ['http[redis.command=GET]', 0],
    ]);
    // The four GETs of the pipeline, the queued GET inside MULTI, and the RESP3 connection's two.
    await expectCounts(NODE, [['redis[redis.command=GET]', 14], ['redis[redis.command=PUBLISH]', 3]]);
  });

  it('redis.key: a glob over the key; commands without one never match', async () => {
    await expectCounts(CLI, [
      ['redis[redis.key="user:*"]', 4], // GET miss, SET, GET hit, LPUSH
      ['redis[redis.key="user:*" redis.command=GET]', 2],
      ['redis[redis.key="bulk:*"]', 50],
      ['redis[redis.key="bulk:?"]', 10],
      ['redis[redis.key="bulk:[1-2]?"]', 20],
      ['redis[redis.key="session:7" redis.command="HGETALL"]', 1],
      ['redis[redis.key="*"]', 62 - 1], // every command but COMMAND DOCS and AUTH has a key: 63 records, 2 without
      ['redis[redis.key="*" redis.command=AUTH]', 0],
    ]);
    await expectCounts(NODE, [
      ['redis[redis.key="order:*"]', 21],
      ['redis[redis.key="order:-*"]', 2],
      ['redis[redis.key="stock:1"]', 3], // INCR and GET in one MULTI, SET in the discarded one
    ]);
  });

  it('a pub/sub push has no command: redis.command and redis.key say no, not "unknown"', async () => {
    const fs = await flows(NODE);
    const pushes = fs.filter((r) => r.protocol === 'redis' && !r.request);
    expect(pushes.length).toBeGreaterThan(0);
    for (const sel of ['redis[redis.command=GET]', 'redis[redis.key="*"]']) {
      const { flows: hit, unknown } = selectFlows(parseSelector(sel), fs, names);
      expect(unknown, sel).toEqual([]);
      expect(hit.some((r) => pushes.includes(r))).toBe(false);
    }
  });

  it('a reply whose command was not seen cannot be told', async () => {
    const [get] = (await flows(CLI)).filter((r) => r.protocol === 'redis' && r.request?.command === 'GET');
    const cut = { ...get!, request: undefined, incomplete: true } as FlowRecord;
    const { flows: hit, unknown } = selectFlows(parseSelector('redis[redis.key="user:*"]'), [cut], names);
    expect([hit, unknown]).toEqual([[], [cut]]);
  });

  it('the object form selects what the string form does', async () => {
    const fs = await flows(NODE);
    const obj = selectorFromObject({ protocol: 'redis', 'redis.command': 'get', 'redis.key': 'order:*', pick: 'last' });
    expect(obj.text).toBe('redis[redis.command="get" redis.key="order:*"]:last');
    expect(selectFlows(obj, fs, names).flows).toEqual(selectFlows(parseSelector(obj.text), fs, names).flows);
    expect(selectFlows(obj, fs, names).flows[0]!.request).toMatchObject({ key: 'order:19' });
  });
});

describe('the mysql.query selector on recorded MariaDB traffic', () => {
  it('text in the statement, case-insensitive, MySQL flows only; executes through their prepare', async () => {
    await expectCounts(MYSQL, [
      ['mysql[mysql.query="from orders"]', 8], // 4 queries, a prepare, its 2 executes and its close
      ['*[mysql.query="FROM ORDERS"]', 8],
      ['mysql[mysql.query="insert into orders"]', 4], // a query, a prepare and two executes
      ['mysql[mysql.query="insert into orders" method=COM_STMT_EXECUTE]', 2],
      ['mysql[mysql.query="no_such_table"]', 1],
      ['postgres[mysql.query="orders"]', 0],
    ]);
    // query= reads every SQL protocol; mysql.query only MySQL's: the same on a MySQL-only capture.
    expect(await count(MYSQL, '*[query="from orders"]')).toBe(await count(MYSQL, '*[mysql.query="from orders"]'));
    expect(await count('pcaps/demo/demo.pcap', '*[mysql.query="from orders"]')).toBe(0);
    expect(await count('pcaps/demo/demo.pcap', '*[query="from orders"]')).toBe(12);
  });

  it('method is the MySQL command, and fingerprint works as for PostgreSQL', async () => {
    await expectCounts(MYSQL, [
      ['mysql[method=COM_QUERY]', 10],
      ['mysql[method=com_stmt_execute]', 4],
      ['mysql[fingerprint="select * from orders where id = ?"]', 2],
    ]);
  });
});

describe('spec errors for the new selectors and the cache assertion', () => {
  it('a selector key that does not exist names the keys, with its character', () => {
    const sel = (s: string) => errorOf(check(`select: '${s}'\nexpect: { count: { atMost: 1 } }`));
    expect(sel('redis[redis.cmd=GET]')).toMatch(/^bad\.yaml: checks\[0\]\.select: bad selector 'redis\[redis\.cmd=GET\]' at character 7: unknown key "redis\.cmd" \(keys: .*redis\.command, redis\.key, mysql\.query/);
    expect(sel('redis[redis.key="order:[0-9"]')).toMatch(/at character 17: glob "order:\[0-9" has a "\[" at character 7 without its "\]"/);
    expect(sel('redis[redis.key]')).toMatch(/at character 16: expected "=" after redis\.key/);
    expect(sel('redis[redis.key>"a"]')).toMatch(/">" compares only status and grpcStatus; write redis\.key="…"/);
  });

  it('the object form: a typo gets a suggestion; a value of the wrong type is named', () => {
    expect(errorOf(check("select: { protocol: redis, redis.kye: 'order:*' }\nexpect: { count: { atMost: 1 } }")))
      .toMatch(/checks\[0\]\.select\["redis\.kye"\]: unknown key \(did you mean redis\.key\?\)/);
    expect(errorOf(check("select: { protocol: redis, redis.command: 5 }\nexpect: { count: { atMost: 1 } }")))
      .toBe('bad.yaml: checks[0].select["redis.command"]: must be a non-empty string, got number 5 (line 4)');
    expect(errorOf(check("select: { protocol: mysql, mysql.query: '' }\nexpect: { count: { atMost: 1 } }"))).toMatch(/checks\[0\]\.select\["mysql\.query"\]: must be a non-empty string, got string ""/);
    expect(errorOf(check("select: { protocol: redis, redis.key: 'a[' }\nexpect: { count: { atMost: 1 } }")))
      .toMatch(/checks\[0\]\.select\["redis\.key"\]: glob "a\[" has a "\[" at character 2 without its "\]"/);
  });

  it('cache: the field and what is wrong, with the line', () => {
    expect(errorOf(check("cache: { key: 'order:*', minHitRatio: 1.5 }"))).toBe('bad.yaml: checks[0].cache.minHitRatio: must be a number ≥ 0 and ≤ 1, got number 1.5 (line 4)');
    expect(errorOf(check("cache: { key: 'order:*', minHitRatio: -0.1 }"))).toMatch(/cache\.minHitRatio: must be a number ≥ 0 and ≤ 1, got number -0\.1/);
    expect(errorOf(check("cache: { key: 'order:*', minHitRatio: '80%' }"))).toMatch(/cache\.minHitRatio: must be a number ≥ 0 and ≤ 1, got string "80%"/);
    expect(errorOf(check('cache: { key: 5, minHitRatio: 0.8 }'))).toBe('bad.yaml: checks[0].cache.key: must be a non-empty string, got number 5 (line 4)');
    expect(errorOf(check('cache: { minHitRatio: 0.8 }'))).toMatch(/checks\[0\]\.cache\.key: missing \(required\)/);
    expect(errorOf(check("cache: { key: 'order:*' }"))).toMatch(/checks\[0\]\.cache\.minHitRatio: missing \(required\)/);
    expect(errorOf(check("cache: { key: 'order:*', minHitRate: 0.8 }"))).toMatch(/checks\[0\]\.cache\.minHitRate: unknown key \(did you mean minHitRatio\?\); allowed here: key, minHitRatio, service/);
    expect(errorOf(check("cache: { key: 'order:[', minHitRatio: 0.8 }"))).toMatch(/checks\[0\]\.cache\.key: glob "order:\[" has a "\[" at character 7 without its "\]" .*\(line 4\)/);
    expect(errorOf(check("cache: 'order:*'"))).toMatch(/checks\[0\]\.cache: must be \{ key, minHitRatio, service \}, got string "order:\*"/);
    expect(errorOf(check("cache: { key: 'a', minHitRatio: 1 }\nnoSecretLeaves: x"))).toMatch(/checks\[0\]: has noSecretLeaves and cache: a check is one of select \(with expect\), noSecretLeaves, order or cache/);
    expect(errorOf(check("select: redis\ncache: { key: 'a', minHitRatio: 1 }"))).toMatch(/checks\[0\]: has select and cache/);
  });

  it('a good cache check compiles; its service counts as a service the spec names', () => {
    const spec = parse('version: 1\nservices: { cache: ["127.0.0.1:6379"] }\nchecks:\n  - name: c\n    severity: warning\n    cache: { key: "order:*", minHitRatio: 0.8, service: cache }\n');
    expect(spec.checks[0]!.cache).toMatchObject({ key: 'order:*', minHitRatio: 0.8, service: 'cache' });
    expect(spec.checks[0]!.severity).toBe('warning');
    expect(namedServices(parse(check("cache: { key: 'a', minHitRatio: 1, service: '10.0.0.9:6379' }")))).toEqual(['10.0.0.9:6379']);
  });

  it('the schema lists every protocol and every selector key the parser knows', () => {
    const schema = JSON.parse(readFileSync('schema/tapwire-spec.schema.json', 'utf8'));
    expect(schema.$defs.selectorObject.properties.protocol.enum).toEqual([...PROTOCOL_NAMES, '*']);
    const keys = Object.keys(schema.$defs.selectorObject.properties).filter((k) => k !== 'protocol' && k !== 'pick');
    for (const k of keys) expect(() => selectorFromObject({ [k]: k === 'path' ? '/x' : k.endsWith('tatus') ? '1' : 'x' }), k).not.toThrow();
    const text = schema.$defs.selector.oneOf[0].description as string;
    for (const k of keys) expect(text, k).toContain(k);
    for (const p of PROTOCOL_NAMES) expect(text, p).toContain(p);
  });
});

describe('the cache assertion on recorded Redis traffic', () => {
  it('fails below the ratio: pattern, hits of reads, ratio, and the misses as evidence', async () => {
    // redis-cli.pcap: GET user:42:profile misses, SET, GET hits.
    const r = await runOn(CLI, "{ key: 'user:*', minHitRatio: 0.8 }");
    expect(r.inconclusive).toEqual([]);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0]!;
    expect(f).toMatchObject({ kind: 'check', severity: 'error' });
    expect(f.summary).toBe('check "c": hit ratio 0.5 (1 hit of 2 reads) of Redis keys matching "user:*", where at least 0.8 was expected');
    expect(f.details).toMatchObject({ assertion: 'cache', expected: { key: 'user:*', minHitRatio: 0.8 }, actual: { reads: 2, hits: 1, misses: 1, hitRatio: 0.5, writes: 1 }, evidenceTotal: 1 });
    expect(f.evidence).toHaveLength(1);
    expect(f.evidence[0]).toMatchObject({ flowId: '658bb7ce2445-2', summary: 'GET user:42:profile: miss (nil reply)' });
  });

  it('passes at or above the ratio', async () => {
    for (const min of [0, 0.5]) expect((await runOn(CLI, `{ key: 'user:*', minHitRatio: ${min} }`)).findings, String(min)).toEqual([]);
    // The Node client's pipeline: 8 hits and 3 misses of order:* (the queued GET in MULTI is stock:1).
    expect((await runOn(NODE, "{ key: 'order:*', minHitRatio: 0.7 }")).findings).toEqual([]);
    const [f] = (await runOn(NODE, "{ key: 'order:*', minHitRatio: 0.75 }")).findings;
    expect(f!.summary).toMatch(/hit ratio 0\.727 \(8 hits of 11 reads\) of Redis keys matching "order:\*"/);
    expect(f!.evidence.map((e) => e.summary)).toEqual(['GET order:-2: miss (nil reply)', 'GET order:-1: miss (nil reply)', 'GET order:19: miss (nil reply)']);
  });

  it('no read of a matching key fails, and says what was read or written instead', async () => {
    // redis-cli --pipe wrote bulk:0 … bulk:49; nothing read them.
    const [bulk] = (await runOn(CLI, "{ key: 'bulk:*', minHitRatio: 0.5 }")).findings;
    expect(bulk!.summary).toMatch(/^check "c": no reads of Redis keys matching "bulk:\*" were seen \(50 writes, never read\): the cache this check names was never used \(keys read: /);
    expect(bulk!.details).toMatchObject({ actual: { reads: 0, writes: 50 }, evidenceTotal: 50 });
    expect(bulk!.evidence[0]!.summary).toBe('SET bulk:0: written, never read');
    const [typo] = (await runOn(NODE, "{ key: 'orders:*', minHitRatio: 0.5 }")).findings;
    expect(typo!.summary).toMatch(/no reads of Redis keys matching "orders:\*" were seen: the cache this check names was never used \(keys read: order:\{n\} ×\d+/);
    // No Redis at all.
    const [none] = (await runOn('pcaps/demo/demo.pcap', "{ key: 'order:*', minHitRatio: 0.5 }")).findings;
    expect(none!.summary).toMatch(/no reads of Redis keys matching "order:\*" were seen: the cache this check names was never used \(no Redis cache commands in the capture\)$/);
  });

  it('service limits the reads to one Redis server', async () => {
    const fs = await flows(CLI);
    const server = `${fs[0]!.dst.ip}:${fs[0]!.dst.port}`;
    const on = (svc: string) => runChecks(parse(check(`cache: { key: 'user:*', minHitRatio: 0.8, service: '${svc}' }`)), fs).findings[0]!.summary;
    expect(on(server)).toMatch(/hit ratio 0\.5 .* matching "user:\*" on 127\.0\.0\.1:18601,/);
    expect(on('10.9.9.9:6379')).toMatch(/no reads of Redis keys matching "user:\*" on 10\.9\.9\.9:6379 were seen: the cache this check names was never used \(no Redis cache commands to 10\.9\.9\.9:6379\)$/);
  });

  it('reads whose reply was not seen: inconclusive when they could make up the difference', async () => {
    const fs = await flows(NODE);
    // Lose the replies of five of the eight hits: 3 hits of 6 known reads, 5 unknown.
    let lost = 0;
    const cut = fs.map((r) => (r.protocol === 'redis' && r.request?.command === 'GET' && r.response?.type === 'bulk' && r.request.key?.startsWith('order:') && lost++ < 5
      ? { ...r, response: undefined, incomplete: true } as FlowRecord : r));
    const spec = cacheSpec("{ key: 'order:*', minHitRatio: 0.7 }");
    const r = runChecks(spec, cut);
    expect(r.findings).toEqual([]);
    expect(r.inconclusive).toEqual(['check "c": hit ratio 0.5 (3/6) of Redis keys matching "order:*" is under 0.7, but 5 reads without a reply seen could make up the difference']);
    // Even if every unseen read hit, 0.9 could not be reached: that fails.
    expect(runChecks(cacheSpec("{ key: 'order:*', minHitRatio: 0.9 }"), cut).findings[0]!.details).toMatchObject({ actual: { reads: 6, hits: 3, readsWithoutReply: 5 } });
    const onlyUnseen = cut.filter((r) => r.protocol === 'redis' && r.request?.key?.startsWith('order:') && !r.response);
    expect(runChecks(spec, onlyUnseen).inconclusive).toEqual(['check "c": 5 reads of Redis keys matching "order:*", none with its reply seen']);
  });
});
