import { describe, expect, it } from 'vitest';
import { fingerprint } from '../../../src/protocols/mysql/fingerprint.js';
import { splitStatements } from '../../../src/protocols/mysql/statements.js';

describe('fingerprint (PostgreSQL normalisation, MySQL lexer)', () => {
  it('turns literals into ? and lower-cases outside backquotes', () => {
    expect(fingerprint("SELECT * FROM `Orders` WHERE id = 42 AND name = 'ann' AND note = \"x\"")).toBe('select * from `Orders` where id = ? and name = ? and note = ?');
    expect(fingerprint('select * from orders where id = ?')).toBe(fingerprint('SELECT  *\nFROM orders WHERE id = 7'));
  });
  it('collapses lists and VALUES tuples', () => {
    expect(fingerprint('SELECT a FROM t WHERE id IN (1, 2, 3)')).toBe('select a from t where id in (?)');
    expect(fingerprint("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')")).toBe('insert into t (a, b) values (?)');
  });
  it('drops comments of the three kinds, hex and bit literals, backslash escapes and charset introducers', () => {
    expect(fingerprint("SELECT 1 -- one\n# two\n/* three */ FROM t WHERE a = X'ff' AND b = 0x1F AND c = b'01' AND d = 'it\\'s' AND e = _utf8mb4'z'"))
      .toBe('select ? from t where a = ? and b = ? and c = ? and d = ? and e = ?');
  });
  it('never throws on unterminated input', () => {
    for (const s of ["SELECT 'open", 'SELECT `x', 'SELECT /* x', "x'", '-', '#']) expect(typeof fingerprint(s)).toBe('string');
  });
});

describe('splitStatements', () => {
  it('splits at top-level semicolons only', () => {
    expect(splitStatements("SELECT 'a;b'; SELECT `c;d` FROM t; -- x;y\nSELECT 3;")).toEqual(["SELECT 'a;b'", 'SELECT `c;d` FROM t', '-- x;y\nSELECT 3']);
  });
});

describe('fingerprint: a C string terminator', () => {
  it('a trailing NUL (mysqlslap sends one) is not part of the statement', () => {
    expect(fingerprint("INSERT INTO t1 VALUES (1,'a')\0")).toBe('insert into t1 values (?)');
  });
});
