// The decoder on real MariaDB traffic: pcaps/mysql/mysql-basic.pcap (scripts/record/mysql.mjs) holds
// the `mysql` CLI session, a failed login, a TLS login and a raw binary-protocol client, one connection each.
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { connections, feed, type Seg, strip } from './harness.js';
import type { MysqlExchange } from '../../../src/protocols/mysql/types.js';

const FILE = 'pcaps/mysql/mysql-basic.pcap';
const have = existsSync(FILE);
if (!have) console.log(`skipped: ${FILE} is missing (node scripts/record/mysql.mjs records it)`);

let conns: Seg[][] = [];
const req = (x: MysqlExchange) => x.mysql.request!;
const resp = (x: MysqlExchange) => x.mysql.response!;

describe.runIf(have)('recorded MariaDB traffic', () => {
  beforeAll(async () => {
    conns = await connections(FILE);
    expect(conns).toHaveLength(4);
  });

  it('the mysql CLI: login, result sets, errors 1146 and 1062, affected rows, a multi-statement query, COM_QUIT', () => {
    const { out, violations } = feed(conns[0]!);
    expect(violations).toEqual([]);
    expect(out.every((x) => x.protocol === 'mysql' && !x.incomplete)).toBe(true);
    const [login, q1, count, e1146, e1062, upd, m0, m1, m2, one, quit] = out;
    expect(out).toHaveLength(11);
    expect(req(login!)).toMatchObject({ command: 'COM_CONNECT', user: 'app', database: 'shop' });
    expect(resp(login!).error).toBeUndefined();
    expect(login!.mysql.session.serverVersion).toMatch(/MariaDB/);
    expect(req(q1!)).toMatchObject({ command: 'COM_QUERY', query: 'SELECT id, customer, total FROM orders WHERE id <= 3 ORDER BY id' });
    expect(resp(q1!)).toMatchObject({ columns: ['id', 'customer', 'total'], rows: 3 });
    expect(resp(q1!).preview![0]).toEqual(['1', 'customer-001', '10.25']);
    expect(resp(count!)).toMatchObject({ columns: ['n'], rows: 1, preview: [['10']] });
    expect(resp(e1146!).error).toEqual({ code: 1146, sqlstate: '42S02', message: "Table 'shop.no_such_table' doesn't exist" });
    expect(resp(e1062!).error).toMatchObject({ code: 1062, sqlstate: '23000' });
    expect(resp(upd!).affectedRows).toBe(3);
    // One COM_QUERY with three statements: three results (SERVER_MORE_RESULTS_EXISTS), each with its SQL.
    expect([m0, m1, m2].map((x) => [req(x!).part, req(x!).query])).toEqual([
      [0, 'SELECT id FROM orders WHERE id = 5'], [1, 'SELECT customer FROM orders WHERE id = 6'], [2, "UPDATE orders SET note = 'multi' WHERE id = 7"],
    ]);
    expect(resp(m1!).preview).toEqual([['customer-006']]);
    expect(resp(m2!).affectedRows).toBe(1);
    expect(req(one!).part).toBeUndefined();
    expect(req(quit!).command).toBe('COM_QUIT');
    expect(quit!.mysql.response).toBeUndefined();
  });

  it('a failed login is a record with error 1045 and no auth data', () => {
    const { out, violations } = feed(conns[1]!);
    expect(violations).toEqual([]);
    expect(out).toHaveLength(1);
    expect(req(out[0]!)).toEqual(expect.objectContaining({ command: 'COM_CONNECT', user: 'app', database: 'shop' }));
    expect(resp(out[0]!).error).toMatchObject({ code: 1045, sqlstate: '28000' });
    // Only these keys: nothing of the auth response or the scramble.
    expect(Object.keys(req(out[0]!)).sort()).toEqual(['command', 'database', 'end', 'frames', 'size', 'start', 'user']);
  });

  it('a TLS login: the SSLRequest is noted, and nothing after it is read', () => {
    const { out, violations } = feed(conns[2]!);
    expect(violations).toEqual([]);
    expect(out).toHaveLength(1);
    expect(out[0]!.incomplete).toBe('encrypted');
    expect(req(out[0]!)).toMatchObject({ command: 'COM_CONNECT', ssl: true });
    expect(req(out[0]!).user).toBeUndefined(); // the user name travels inside TLS
    expect(out[0]!.mysql.session).toMatchObject({ ssl: true, serverVersion: expect.stringMatching(/MariaDB/) });
  });

  it('the binary protocol: prepare, executes with decoded parameters and binary rows, close, ping, init db', () => {
    const { out, violations } = feed(conns[3]!);
    expect(violations).toEqual([]);
    const cmds = out.map((x) => req(x).command);
    expect(cmds).toEqual(['COM_CONNECT', 'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_STMT_EXECUTE', 'COM_STMT_PREPARE',
      'COM_STMT_EXECUTE', 'COM_STMT_EXECUTE', 'COM_STMT_CLOSE', 'COM_PING', 'COM_INIT_DB', 'COM_QUERY', 'COM_QUIT']);
    const sel = 'SELECT id, customer, total, created, note FROM orders WHERE id = ? OR customer = ?';
    expect(req(out[1]!)).toMatchObject({ query: sel, statementId: 1 });
    expect(resp(out[1]!)).toMatchObject({ paramCount: 2, columnCount: 5 });
    expect(req(out[2]!)).toMatchObject({ query: sel, statementId: 1, params: [3, 'customer-005'] });
    expect(resp(out[2]!).rows).toBe(2);
    expect(resp(out[2]!).preview![1]).toEqual([5, 'customer-005', '50.25', '2025-03-05 10:00:00', null]);
    expect(req(out[3]!).params).toEqual([9, null]);
    expect(req(out[5]!).params).toEqual([11, 'customer-011', 99.5, '2025-03-04 10:30:15', null]);
    expect(resp(out[5]!).affectedRows).toBe(1);
    expect(resp(out[6]!).error).toMatchObject({ code: 1062, sqlstate: '23000' });
    expect(req(out[7]!)).toMatchObject({ statementId: 1, query: sel });
    expect(req(out[9]!).database).toBe('mysql');
    expect(out[10]!.mysql.session.database).toBe('mysql');
  });

  it('gives the same exchanges with every segment split at every byte', () => {
    for (const segs of conns) {
      const whole = strip(feed(segs));
      const longest = Math.max(...segs.map((s) => s.bytes.length));
      for (let k = 1; k < longest; k++) expect(strip(feed(segs, { cut: k }))).toBe(whole);
    }
  });

  it('a lost server segment: that answer is reported lost, the next ones pair again', () => {
    const segs = conns[0]!;
    // The answer to the count(*) query (the 2nd COM_QUERY's response).
    const queries = segs.filter((s) => s.dir === 0 && s.bytes[4] === 0x03);
    const answer = segs.find((s) => s.dir === 1 && s.off >= 0 && s.ack >= queries[1]!.off + queries[1]!.bytes.length)!;
    const { out } = feed(segs, { drop: new Set([answer.frame]) });
    const lost = out.find((x) => req(x).query === 'SELECT count(*) AS n FROM orders')!;
    expect(lost.incomplete).toBe('response-lost-in-gap');
    const after = out.find((x) => req(x).query === 'SELECT * FROM no_such_table')!;
    expect(after.incomplete).toBeUndefined();
    expect(resp(after).error?.code).toBe(1146);
  });

  it('a lost client command: its answer is reported alone, not given to the next command', () => {
    const segs = conns[0]!;
    const queries = segs.filter((s) => s.dir === 0 && s.bytes[4] === 0x03);
    const { out } = feed(segs, { drop: new Set([queries[2]!.frame]) }); // SELECT * FROM no_such_table
    const orphan = out.find((x) => x.incomplete === 'no-request-seen')!;
    expect(orphan.mysql.request).toBeUndefined();
    expect(orphan.mysql.response?.error?.code).toBe(1146);
    const dup = out.find((x) => req(x)?.query?.startsWith('INSERT'))!;
    expect(resp(dup).error?.code).toBe(1062);
  });

  it('caught mid-connection: resumes at a command and reads executes without their statement', () => {
    const segs = conns[3]!;
    const firstExec = segs.findIndex((s) => s.dir === 0 && s.bytes[4] === 0x17);
    const { out } = feed(segs.slice(firstExec), { mid: true });
    const exec = out.find((x) => req(x)?.command === 'COM_STMT_EXECUTE')!;
    expect(exec.incomplete).toBe('statement-unknown');
    expect(req(exec).statementId).toBe(1);
    expect(resp(exec).rows).toBe(2);
    expect(out.find((x) => req(x)?.command === 'COM_INIT_DB')).toBeDefined();
  });
});
