import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPostgres, type PgFlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { splitStatements, UNKNOWN_PREPARED } from '../../src/protocols/postgres/session.js';

/** What issue 4 asks of PostgreSQL records, checked on captures of real traffic (pcaps/postgres). */
async function pg(file: string): Promise<PgFlowRecord[]> {
  const r = await analyzeFile(file);
  expect(r.pipeline.violations.total, JSON.stringify(r.pipeline.violations.toJSON())).toBe(0);
  return r.records!.filter(isPostgres);
}

describe('PostgreSQL records', () => {
  it('the demo: 12 identical queries for one order id share SQL, fingerprint and parameter', async () => {
    const rs = (await pg('pcaps/demo/demo.pcap')).filter((r) => r.request?.query?.includes('FROM orders'));
    expect(rs).toHaveLength(12);
    expect(new Set(rs.map((r) => r.request!.fingerprint)).size).toBe(1);
    expect(rs.every((r) => r.request!.params?.[0] === '42' && r.response!.command === 'SELECT 1' && r.response!.rows === 1)).toBe(true);
    expect(rs[0]!.postgres).toMatchObject({ database: expect.any(String), user: expect.any(String) });
    const fixed = (await pg('pcaps/demo/demo-fixed.pcap')).filter((r) => r.request?.query?.includes('FROM orders'));
    expect(fixed).toHaveLength(1);
  });

  it('pg client: parameters text and binary, a named statement reused with its SQL, errors, transactions, NOTIFY', async () => {
    const rs = await pg('pcaps/postgres/pg-client.pcap');
    const named = rs.filter((r) => r.request?.statement === 'order_by_id');
    expect(named).toHaveLength(5);
    expect(named.every((r) => r.request!.query!.startsWith('SELECT') && r.request!.message === 'Execute')).toBe(true);
    expect(named.map((r) => r.request!.params![0])).toEqual(['3', '7', '1', '12', '5']);
    const first = rs[0]!.request!;
    expect(first.params!.slice(0, 3)).toEqual(['42', 'hello, wire', 'true']);
    const errs = rs.filter((r) => r.response?.error).map((r) => [r.response!.error!.code, r.response!.error!.severity]);
    expect(errs).toEqual([['22012', 'ERROR'], ['23505', 'ERROR']]);
    const div = rs.find((r) => r.response?.error?.code === '22012')!;
    expect(div.request!.query).toMatch(/100 \/ \$1/);
    expect(div.request!.params).toEqual(['0']);
    expect(rs.map((r) => r.response?.command).filter((c) => c === 'BEGIN' || c === 'COMMIT' || c === 'ROLLBACK')).toEqual(['BEGIN', 'COMMIT', 'BEGIN', 'ROLLBACK']);
    // Transaction status is the one the server reported before each statement.
    expect(rs.find((r) => r.response?.command === 'COMMIT')!.postgres!.transaction).toBe('transaction');
    expect(rs.find((r) => r.response?.command === 'ROLLBACK')!.postgres!.transaction).toBe('failed');
    const note = rs.find((r) => r.postgres?.notification)!;
    expect(note.postgres!.notification).toMatchObject({ channel: 'order_events', payload: 'order 21 created' });
  });

  it('pipelines: many Bind/Execute before one Sync; an error skips the rest to Sync; row limits suspend', async () => {
    const rs = await pg('pcaps/postgres/pg-pipeline.pcap');
    expect(rs.filter((r) => r.response?.command === 'INSERT 0 1')).toHaveLength(9);
    const failed = rs.findIndex((r) => r.response?.error?.code === '23514');
    expect(failed).toBeGreaterThan(0);
    expect(rs.slice(failed + 1, failed + 3).map((r) => r.incompleteReason)).toEqual(['skipped-after-error', 'skipped-after-error']);
    const suspended = rs.filter((r) => r.response?.suspended);
    expect(suspended.map((r) => r.response!.rows)).toEqual([4, 4]);
  });

  it('psql: SSLRequest answered N, multi-statement queries split, COPY in and out counted, empty query, notice', async () => {
    const rs = await pg('pcaps/postgres/psql.pcap');
    const multi = rs.filter((r) => ['SELECT 1 AS one', "SELECT 'two' AS two"].includes(r.request!.query!) || r.request!.query!.startsWith('UPDATE stock'));
    expect(multi.map((r) => r.response!.command)).toEqual(['SELECT 1', 'SELECT 1', 'UPDATE 1']);
    const copyIn = rs.find((r) => r.response?.copy?.direction === 'in')!;
    const copyOut = rs.find((r) => r.response?.copy?.direction === 'out')!;
    expect(copyIn.response!.copy!.rows).toBe(4);
    expect(copyOut.response!.copy!.rows).toBe(7); // the server's "COPY 7": the CSV header line is not a row
    expect(copyOut.response!.copy!.bytes).toBeGreaterThan(20);
    expect(rs.find((r) => r.request!.query === ';')!.response!.empty).toBe(true);
    expect(rs.find((r) => r.response?.notices?.length)!.response!.notices![0]!.severity).toBe('NOTICE');
    expect(rs.find((r) => r.response?.error)!.response!.error).toMatchObject({ code: '22012', message: 'division by zero' });
  });

  it('auth: mechanisms recorded; passwords, hashes and SCRAM proofs never appear in any record', async () => {
    const md5 = await pg('pcaps/postgres/md5-auth.pcap');
    const scram = await pg('pcaps/postgres/scram-auth.pcap');
    expect(md5.some((r) => r.postgres!.auth === 'md5')).toBe(true);
    expect(scram.some((r) => r.postgres!.auth === 'SCRAM-SHA-256')).toBe(true);
    expect([...md5, ...scram].some((r) => r.response?.error?.code === '28P01')).toBe(true);
    const text = JSON.stringify([...md5, ...scram]);
    expect(text).not.toMatch(/md5[0-9a-f]{32}/);
    expect(text).not.toMatch(/n,,n=|c=biws|p=[A-Za-z0-9+/=]{20,}/);
  });

  it('cancel: the CancelRequest and the query it stopped (57014)', async () => {
    const rs = await pg('pcaps/postgres/cancel.pcap');
    expect(rs.find((r) => r.request?.message === 'CancelRequest')!.request!.pid).toBeGreaterThan(0);
    expect(rs.find((r) => r.request?.query === 'SELECT pg_sleep(5)')!.response!.error!.code).toBe('57014');
  });

  it('pgbench simple and extended: every transaction statement decoded', async () => {
    for (const f of ['pcaps/postgres/pgbench-simple.pcap', 'pcaps/postgres/pgbench-extended.pcap']) {
      const rs = await pg(f);
      expect(rs.length).toBeGreaterThan(600);
      expect(rs.filter((r) => r.response?.command?.startsWith('UPDATE')).length).toBeGreaterThan(250);
      expect(rs.every((r) => !r.response?.error)).toBe(true);
    }
  });

  it('MySQL on port 5432 is not decoded as PostgreSQL: content, not the port, says it is MySQL', async () => {
    const r = await analyzeFile('pcaps/postgres/mysql-on-5432.pcap');
    expect(r.records!.length).toBeGreaterThan(0);
    expect(r.records!.every((f) => f.protocol === 'mysql')).toBe(true);
    expect(r.pipeline.dispatcher.stats.byProtocol.postgres).toBeUndefined();
  });

  it('a statement prepared before the capture started is marked as such', async () => {
    // Cut the pg client capture after the Parse of order_by_id: its later Executes have no SQL.
    const src = readFileSync('pcaps/postgres/pg-client.pcap');
    const out = [src.subarray(0, 24)];
    let p = 24, n = 0, cutAt = -1;
    while (p + 16 <= src.length) {
      const len = src.readUInt32LE(p + 8);
      const pkt = src.subarray(p, p + 16 + len);
      if (cutAt < 0 && pkt.includes(Buffer.from('order_by_id'))) cutAt = n + 2; // past the Parse and its answer
      if (cutAt >= 0 && n >= cutAt) out.push(pkt);
      p += 16 + len;
      n++;
    }
    const f = join(mkdtempSync(join(tmpdir(), 'tapwire-pg-')), 'cut.pcap');
    writeFileSync(f, Buffer.concat(out));
    const rs: PgFlowRecord[] = ((await analyzeFile(f)).records ?? []).filter(isPostgres);
    const unknown = rs.filter((r) => r.incompleteReason === UNKNOWN_PREPARED);
    expect(unknown.length).toBeGreaterThan(0);
    expect(unknown.every((r) => r.request!.statement === 'order_by_id' && r.request!.query === undefined)).toBe(true);
  });

  it('--redact-params replaces parameters with keyed tokens', () => {
    const run = (extra: string[]) => execFileSync(process.execPath, ['dist/cli/main.js', 'analyze', 'pcaps/demo/demo.pcap', '--format', 'jsonl', ...extra],
      { env: { ...process.env, TAPWIRE_REDACT_KEY: 'k' }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.protocol === 'postgres');
    expect(run([])[0].request.params).toEqual(['42']);
    const red = run(['--redact-params']);
    expect(red[0].request.params[0]).toMatch(/^\[redacted:[0-9a-f]{12}\]$/);
    expect(new Set(red.map((r) => r.request.params[0])).size).toBe(1); // same value, same token
  });

  it('splits multi-statement strings outside quotes, comments and dollar quotes', () => {
    expect(splitStatements("SELECT 1; SELECT ';' AS x; -- c;\nSELECT $$a;b$$; ")).toEqual(['SELECT 1', "SELECT ';' AS x", '-- c;\nSELECT $$a;b$$']);
  });
});
