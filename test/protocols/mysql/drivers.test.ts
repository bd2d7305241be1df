// Real drivers against a real MariaDB (scripts/record/mysql.mjs): the mysql2 Node driver, whose
// execute() speaks the binary protocol, and mysqlslap's generated load. What the decoder reads from
// them, as records: logins (a failed one with 1045, never auth data), executes with their SQL found
// through the statement id and their parameters decoded, the transaction, and nothing undecoded.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyzeFile } from '../../../src/pipeline/analyze.js';
import type { MysqlFlow } from '../../../src/flows/record.js';
import { parseColumn } from '../../../src/protocols/mysql/messages.js';
import { connections } from './harness.js';

const MYSQL2 = 'pcaps/mysql/mysql2-node.pcap';
const SLAP = 'pcaps/mysql/mysqlslap.pcap';

async function records(file: string) {
  const { pipeline, records: out } = await analyzeFile(file);
  return { flows: out as MysqlFlow[], coverage: pipeline.coverage() };
}

describe.skipIf(!existsSync(MYSQL2))('mysql2 (Node driver) against MariaDB: pcaps/mysql/mysql2-node.pcap', () => {
  it('every exchange is a mysql record, nothing undecoded, no decode problem', async () => {
    const { flows, coverage } = await records(MYSQL2);
    expect(flows.every((f) => f.protocol === 'mysql')).toBe(true);
    expect(coverage).toMatchObject({ connections: 0, byReason: {} });
    expect(flows.map((f) => f.request?.command)).toEqual([
      'COM_CONNECT', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_STMT_EXECUTE', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE',
      'COM_QUERY', 'COM_QUERY', 'COM_QUERY', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_QUERY', 'COM_QUIT', 'COM_CONNECT',
    ]);
  });

  it('executes carry their SQL through the statement id, and their binary parameters decoded (int, string, NULL, double, date)', async () => {
    const { flows } = await records(MYSQL2);
    const sel = 'SELECT id, customer, total, created, note FROM orders WHERE id = ? OR customer = ?';
    const prep = flows.find((f) => f.request?.command === 'COM_STMT_PREPARE' && f.request.query === sel)!;
    expect(prep.response).toMatchObject({ paramCount: 2, columnCount: 5 });
    const id = prep.request!.statementId!;
    const execs = flows.filter((f) => f.request?.command === 'COM_STMT_EXECUTE' && f.request.statementId === id);
    // Executed twice: one prepare, its id on both executes, each with its own parameters and rows.
    expect(execs.map((f) => [f.request!.query, f.request!.params, f.response!.rows])).toEqual([[sel, [3, 'customer-005'], 2], [sel, [9, null], 1]]);
    expect(execs[0]!.request!.fingerprint).toBe('select id, customer, total, created, note from orders where id = ? or customer = ?');
    // Binary rows decoded by column type (MariaDB's extended column metadata read over).
    expect(execs[0]!.response!.preview).toEqual([[3, 'customer-003', '30.25', '2025-03-03 10:00:00', null], [5, 'customer-005', '50.25', '2025-03-05 10:00:00', null]]);
    const ins = flows.find((f) => f.request?.command === 'COM_STMT_EXECUTE' && f.request.query?.startsWith('INSERT'))!;
    // mysql2 sends a Date as DATETIME with microseconds (11 bytes).
    expect(ins.request!.params).toEqual([201, 'node-201', 12.5, '2025-03-04 10:30:15.000000', null]);
    expect(ins.response).toMatchObject({ affectedRows: 1 });
  });

  it('query() is the text protocol; the transaction is START TRANSACTION … COMMIT, counted as transaction control', async () => {
    const { flows } = await records(MYSQL2);
    const count = flows.find((f) => f.request?.query === 'SELECT count(*) AS n FROM orders')!;
    expect(count.request!.command).toBe('COM_QUERY');
    expect(count.response).toMatchObject({ columns: ['n'], rows: 1 });
    const texts = flows.map((f) => f.request?.query);
    const begin = texts.indexOf('START TRANSACTION'), commit = texts.indexOf('COMMIT');
    expect(begin).toBeGreaterThan(0);
    expect(texts.slice(begin, commit + 1)).toContain('UPDATE orders SET note = ? WHERE id = ?');
    const { RECORDS } = await import('../../../src/flows/protocols/index.js');
    expect(RECORDS.mysql.routine(flows[begin]!)).toBe('transaction-control');
    expect(RECORDS.mysql.routine(flows[commit]!)).toBe('transaction-control');
  });

  it('logins are records: user and database, a wrong password gives error 1045; no auth data anywhere', async () => {
    const { flows } = await records(MYSQL2);
    const logins = flows.filter((f) => f.request?.command === 'COM_CONNECT');
    expect(logins.map((f) => [f.request!.user, f.request!.database, f.response?.error?.code ?? null])).toEqual([['app', 'shop', null], ['app', 'shop', 1045]]);
    expect(logins[1]!.response!.error).toMatchObject({ sqlstate: '28000' });
    expect(RECORD_KEYS(logins[0]!)).toEqual(['command', 'database', 'end', 'frames', 'size', 'start', 'user']);
    // The client's auth response (the scrambled password) appears in no record, in any encoding.
    const text = JSON.stringify(flows);
    for (const segs of await connections(MYSQL2)) {
      const login = segs.find((s) => s.dir === 0)!.bytes;
      const user = login.indexOf(Buffer.from('app\0'), 36);
      const auth = login.subarray(user + 5, user + 5 + login[user + 4]!);
      expect(auth.length).toBe(20);
      for (const enc of ['hex', 'base64', 'latin1'] as const) expect(text).not.toContain(auth.toString(enc));
    }
    expect(text).not.toContain('app-secret');
    expect(text).not.toContain('wrong-password');
  });
});

const RECORD_KEYS = (f: MysqlFlow) => Object.keys(f.request!).sort();

describe.skipIf(!existsSync(SLAP))('mysqlslap against MariaDB: pcaps/mysql/mysqlslap.pcap', () => {
  it('every connection decoded: logins, the generated statements with their results, no incomplete record', async () => {
    const { flows, coverage } = await records(SLAP);
    expect(coverage).toMatchObject({ connections: 0, byReason: {} });
    expect(flows.filter((f) => f.incomplete)).toEqual([]);
    const logins = flows.filter((f) => f.request?.command === 'COM_CONNECT');
    expect(logins.length).toBeGreaterThanOrEqual(4);
    expect(logins.every((f) => f.request!.user === 'slap' && !f.response?.error)).toBe(true);
    const queries = flows.filter((f) => f.request?.command === 'COM_QUERY');
    expect(queries.filter((f) => /^INSERT INTO t1/.test(f.request!.query!)).length).toBeGreaterThan(20);
    expect(queries.filter((f) => /^SELECT/.test(f.request!.query!) && f.response?.rows !== undefined).length).toBeGreaterThan(20);
    // mysqlslap sends each query's C string terminator: not part of the SQL.
    expect(queries.some((f) => f.request!.query!.includes('\0'))).toBe(false);
    // The generated INSERTs differ only in literals: one fingerprint for them all.
    expect(queries.find((f) => /^INSERT INTO t1/.test(f.request!.query!))!.request!.fingerprint).toBe('insert into t1 values (?)');
    expect(new Set(queries.filter((f) => /^INSERT INTO t1/.test(f.request!.query!)).map((f) => f.request!.fingerprint)).size).toBe(1);
  });
});

describe('MariaDB extended column metadata (MARIADB_CLIENT_EXTENDED_METADATA)', () => {
  const lenstr = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);
  const fixed = Buffer.from([0x0c, 0x3f, 0, 11, 0, 0, 0, 3, 0x03, 0x50, 0, 0, 0]);
  const def = (ext?: string) => Buffer.concat([lenstr('def'), lenstr('shop'), lenstr('t'), lenstr('t'), lenstr('id'), lenstr('id'),
    ...(ext === undefined ? [] : [lenstr(ext)]), fixed]);
  it('reads the type after an extended-metadata string, agreed or not (a byte other than 0x0c says it is there)', () => {
    const want = { name: 'id', type: 3, flags: 0x5003, charset: 63 };
    expect(parseColumn(def())).toEqual(want);
    expect(parseColumn(def(''), true)).toEqual(want);
    expect(parseColumn(def(''))).toEqual(want);
    expect(parseColumn(def('json'), true)).toEqual(want);
    // Twelve bytes of it: only the login's agreement tells it from the fixed fields' length.
    expect(parseColumn(def('abcdefghijkl'), true)).toEqual(want);
  });
});
for (const f of [MYSQL2, SLAP]) if (!existsSync(f)) console.warn(`test/protocols/mysql/drivers.test.ts: ${f} cases skipped: the capture is missing (node scripts/record/mysql.mjs records it)`);
