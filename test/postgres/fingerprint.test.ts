import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/protocols/postgres/fingerprint.js';

/** Spec cases as data: input → fingerprint. */
const CASES: [string, string][] = [
  ['SELECT id, total FROM orders WHERE id = 42', 'select id, total from orders where id = ?'],
  ['select ID,total  from ORDERS\n where id=$1', 'select id, total from orders where id = ?'],
  ["SELECT * FROM users WHERE name = 'O''Brien' AND age > 30", 'select * from users where name = ? and age > ?'],
  ["SELECT * FROM t WHERE a = E'it\\'s' AND b = B'1010' AND c = X'ff'", 'select * from t where a = ? and b = ? and c = ?'],
  ['SELECT $$dollar $ quoted$$, $tag$x$tag$', 'select ?, ?'],
  ['SELECT * FROM orders WHERE id IN (1, 2, 3, 4)', 'select * from orders where id in (?)'],
  ['SELECT * FROM orders WHERE id IN ($1, $2)', 'select * from orders where id in (?)'],
  ['INSERT INTO t (a, b) VALUES (1, 2), (3, 4), (5, 6)', 'insert into t (a, b) values (?)'],
  ['SELECT "MixedCase" FROM "My Table" -- trailing comment', 'select "MixedCase" from "My Table"'],
  ['SELECT /* c /* nested */ still */ 1', 'select ?'],
  ['SELECT price * -1.5e3, x - 1 FROM t', 'select price * ?, x - ? from t'],
  ['SELECT a::int, b->>\'k\' FROM t WHERE x=-1 AND y<>2', 'select a::int, b ->> ? from t where x = ? and y <> ?'],
  ['SELECT 1, 2', 'select ?, ?'],
  ['SELECT col1, t2.col3 FROM t2', 'select col1, t2.col3 from t2'],
];

describe('query fingerprint', () => {
  for (const [sql, want] of CASES) it(JSON.stringify(sql), () => expect(fingerprint(sql)).toBe(want));

  it('statements that differ only in literals share a fingerprint; different shapes do not', () => {
    expect(fingerprint("SELECT * FROM orders WHERE id = 42 AND status = 'paid'"))
      .toBe(fingerprint("select *   from orders where id = 7 and status = 'open'"));
    expect(fingerprint('SELECT * FROM orders WHERE id = 42')).not.toBe(fingerprint('SELECT * FROM orders WHERE customer = 42'));
    expect(fingerprint('SELECT 1')).not.toBe(fingerprint('SELECT 1, 2'));
  });

  it('never throws, and is idempotent on its own output', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => {
      const f = fingerprint(s);
      expect(typeof f).toBe('string');
    }), { numRuns: 3000 });
    for (const [sql] of CASES) expect(fingerprint(fingerprint(sql))).toBe(fingerprint(sql));
  });

  it('literals of every kind map to the same placeholder (property)', () => {
    const lit = fc.oneof(fc.integer().map(String), fc.double({ noNaN: true, noDefaultInfinity: true, min: 0 }).map(String),
      fc.string({ maxLength: 20 }).map((s) => `'${s.replace(/'/g, "''")}'`));
    fc.assert(fc.property(lit, lit, (a, b) => {
      expect(fingerprint(`SELECT * FROM t WHERE x = ${a}`)).toBe(fingerprint(`SELECT * FROM t WHERE x = ${b}`));
    }), { numRuns: 2000 });
  });
});
