import { describe, expect, it } from 'vitest';
import type { FlowRecord, MysqlFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { DetectorKind } from '../../src/verify/config.js';
import { runDetector } from '../../src/verify/detectors.js';
import type { Finding } from '../../src/verify/types.js';

/**
 * Issue 19: the detectors that apply to MySQL fire on real traffic recorded for them and stay quiet
 * on ordinary MySQL traffic. pcaps/verify/mysql-stories.pcap is a Node service (127.0.0.43, mysql2
 * against MariaDB) with the bugs; mysql-slap.pcap is mysqlslap's load. scripts/record/stories-cache-db.mjs
 * records both and says what each request does.
 */
const cache = new Map<string, Promise<FlowRecord[]>>();
const flows = (f: string): Promise<FlowRecord[]> => {
  let p = cache.get(f);
  if (!p) cache.set(f, (p = analyzeFile(f).then((r) => r.records!)));
  return p;
};
const STORIES = 'pcaps/verify/mysql-stories.pcap';
const SLAP = 'pcaps/verify/mysql-slap.pcap';
const run = async (kind: DetectorKind, file = STORIES): Promise<Finding[]> => runDetector(kind, await flows(file));
const mysql = async (file = STORIES): Promise<MysqlFlow[]> => (await flows(file)).filter((r): r is MysqlFlow => r.protocol === 'mysql');
/** Findings about MySQL calls: the service's own HTTP answers (500s) are judged too, and are not these tests' subject. */
const aboutMysql = (fs: Finding[]) => fs.filter((f) => /mysql/i.test(f.summary));

describe('n-plus-one on MySQL', () => {
  it('fires on one order_items query per order (12 executes), in two requests, an error with each id as evidence', async () => {
    const found = await run('n-plus-one');
    expect(found).toHaveLength(1); // the batched request (one IN (…) query) is not one
    const f = found[0]!;
    expect(f.kind).toBe('n-plus-one');
    expect(f.severity).toBe('error');
    expect(f.summary).toBe('12 calls of mysql "select sku, qty from order_items where order_id = ?" for one GET /customers/{id}/orders request on 127.0.0.43:8091, differing only in a parameter (2 such requests)');
    expect(f.details).toMatchObject({ count: 12, distinctParameters: 12, requests: 2, perRequest: [12, 12], inbound: 'GET /customers/{id}/orders' });
    expect(f.evidence[0]!.summary).toBe('the inbound request');
    expect(f.evidence.slice(1).map((e) => e.summary)).toEqual(Array.from({ length: 12 }, (_, i) => `call ${i + 1} with [${101 + i}]`));
  });
  it('a driver that prepares and closes around each execute: its 12 prepares of one statement are not a finding of their own', async () => {
    const prepares = (await mysql()).filter((r) => r.request?.command === 'COM_STMT_PREPARE' && r.request.query === 'SELECT sku, qty FROM order_items WHERE order_id = ?');
    expect(prepares.length).toBeGreaterThanOrEqual(12);
    const named = new Set([...await run('n-plus-one'), ...await run('redundant-call')].flatMap((f) => f.evidence.map((e) => e.flowId)));
    expect(prepares.filter((r) => named.has(r.id))).toEqual([]);
  });
});

describe('redundant-call on MySQL', () => {
  it('fires on the same product query three times within one request, a warning naming the statement and parameters', async () => {
    const found = await run('redundant-call');
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.severity).toBe('warning');
    expect(f.summary).toBe('3 identical calls: mysql SELECT id, name, price, stock FROM products WHERE id = ? with parameters [5] (within one inbound request)');
    expect(f.details).toMatchObject({ count: 3, inboundRequests: 1 });
    expect(f.evidence).toHaveLength(3);
  });
  it('transaction control (two checkouts: START TRANSACTION … COMMIT) is not redundant', async () => {
    const control = (await mysql()).filter((r) => /^(start transaction|commit)/i.test(r.request?.query ?? ''));
    expect(control).toHaveLength(4);
    expect((await run('redundant-call')).some((f) => /transaction|commit/i.test(f.summary))).toBe(false);
  });
});

describe('unparameterised-sql on MySQL', () => {
  it('fires on a name pasted into the SQL text (4 names, one a quote doubled); the bound and prepared forms are not counted', async () => {
    const found = await run('unparameterised-sql');
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.severity).toBe('warning');
    expect(f.summary).toBe('4 different statements differ only in literals: select id, name from customers where name = ?');
    expect(f.details).toMatchObject({ distinctTexts: 4, count: 4 });
    expect(f.evidence.map((e) => e.summary)).toEqual(['ada', 'brian', 'chen', "o''neil"].map((n) => `SELECT id, name FROM customers WHERE name = '${n}'`));
    // the safe form: prepared once (its text has a placeholder, no parameters), executed three times with one
    const safe = (await mysql()).filter((r) => r.request?.query === 'SELECT id, name FROM customers WHERE name = ?');
    expect(safe.map((r) => r.request!.command)).toEqual(['COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_STMT_EXECUTE', 'COM_STMT_EXECUTE']);
  });
});

describe('error-status on MySQL', () => {
  it('fires per error code, naming the statement: 1146 (a dropped table) and 1062 (duplicate key, 4 times)', async () => {
    const found = aboutMysql(await run('error-status'));
    expect(found.map((f) => f.summary)).toEqual([
      "1 × MySQL error 1146 (SQLSTATE 42S02) (Table 'shop.order_archive' doesn't exist) from mysql SELECT count(*) AS n FROM order_archive",
      "4 × MySQL error 1062 (SQLSTATE 23000) (Duplicate entry '1' for key 'PRIMARY') from mysql INSERT INTO orders (id, customer_id, total) VALUES (?, ?, ?)",
    ]);
    expect(found.every((f) => f.kind === 'error-status' && f.severity === 'warning')).toBe(true);
    expect(found.map((f) => f.evidence.length)).toEqual([1, 4]);
  });
});

describe('retry on MySQL', () => {
  it('fires on the duplicate-key INSERT retried at a fixed 50 ms, an error', async () => {
    const found = aboutMysql(await run('retry'));
    expect(found).toHaveLength(1);
    const f = found[0]!;
    expect(f.severity).toBe('error');
    expect(f.summary).toMatch(/^4 attempts of mysql INSERT INTO orders \(id, customer_id, total\) VALUES \(\?, \?, \?\); retries at (0\.0[56] s, ){2}0\.0[56] s \(constant: delays do not grow\); the last attempt failed too$/);
    expect(f.details).toMatchObject({ attempts: 4, pattern: 'constant', succeeded: false, connections: 1 });
    for (const d of f.details.delaysMs as number[]) expect(d).toBeGreaterThanOrEqual(49);
    expect(f.evidence.map((e) => e.summary)).toEqual(['attempt 1, failed', 'attempt 2, failed', 'attempt 3, failed', 'attempt 4, failed']);
  });
});

describe('slow on MySQL', () => {
  it('flags SELECT SLEEP(1.2) over the budget and SLEEP(0.3) as an outlier among the fast days', async () => {
    const found = await run('slow');
    expect(found).toHaveLength(2); // the slow HTTP requests are not a second finding
    const budget = found.find((f) => f.details.cause === 'budget')!;
    expect(budget.summary).toMatch(/^1 of 8 calls to mysql "select sleep \(\?\) as waited, \? as day" on 127\.0\.0\.42:18531 took longer than the 1000 ms budget \(12\d\d(\.\d)? ms\), making 1 inbound request slow too$/);
    const outlier = found.find((f) => f.details.cause === 'outlier')!;
    expect(outlier.details).toMatchObject({ count: 1, calls: 8 });
    expect(outlier.details.maxMs).toBeGreaterThan(290);
    expect(found.every((f) => f.kind === 'slow' && f.severity === 'warning')).toBe(true);
  });
});

describe('stays quiet on ordinary MySQL traffic', () => {
  it('mysqlslap (4 clients, primary-key reads): nothing but unparameterised-sql, which its generated SQL is', async () => {
    const fs = await mysql(SLAP);
    expect(fs.filter((r) => r.request && r.response).length).toBeGreaterThanOrEqual(400);
    for (const kind of ['redundant-call', 'n-plus-one', 'error-status', 'slow', 'retry'] as const) expect(await run(kind, SLAP), kind).toEqual([]);
    // mysqlslap builds every statement with its literals in the text, as pgbench -M simple does:
    // a true finding, a warning and never an error (test/verify/detectors.test.ts has pgbench's).
    const sql = await run('unparameterised-sql', SLAP);
    // mysqlslap ends its SQL with a NUL byte (the C string's terminator): not part of the statement.
    expect(sql.map((f) => f.details.fingerprint)).toEqual(['insert into t1 values (null, ?, ?)', 'select intcol1, charcol1 from t1 where id = ?']);
    expect(sql.every((f) => f.severity === 'warning')).toBe(true);
  });
  it('the story\'s healthy requests: the batched query, the bound search and the checkout transaction are in no finding', async () => {
    const all = (['redundant-call', 'n-plus-one', 'error-status', 'slow', 'retry', 'unparameterised-sql'] as const);
    const found = (await Promise.all(all.map((k) => run(k)))).flat();
    const healthy = (await mysql()).filter((r) => /order_id IN|name = \?|^(start transaction|commit)|UPDATE products|ON DUPLICATE KEY/i.test(r.request?.query ?? ''));
    expect(healthy.length).toBeGreaterThanOrEqual(10);
    const named = new Set(found.flatMap((f) => f.evidence.map((e) => e.flowId)));
    expect(healthy.filter((r) => named.has(r.id))).toEqual([]);
  });
});
