// Passwords written into SQL text (CREATE/ALTER USER … IDENTIFIED BY, SET PASSWORD, GRANT …
// IDENTIFIED BY, PostgreSQL's ROLE … PASSWORD) become the redactor's keyed tokens in MySQL and
// PostgreSQL records: the scanner on its own, then records built from exchanges (MySQL's from bytes
// fed to its session), their call names and table rows, and a verdict's evidence.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowBuilder } from '../../src/flows/build.js';
import { mysql } from '../../src/flows/protocols/mysql.js';
import { postgres } from '../../src/flows/protocols/postgres.js';
import { redactSqlSecrets, type SqlDialect } from '../../src/flows/protocols/sql-secrets.js';
import { Redactor } from '../../src/flows/redact.js';
import type { MysqlFlow, PostgresFlow } from '../../src/flows/record.js';
import { fingerprint, mysqlFingerprint } from '../../src/protocols/index.js';
import type { PgExchange } from '../../src/protocols/postgres/types.js';
import { verify } from '../../src/verify/verdict.js';
import type { ConnectionInfo } from '../../src/stream/index.js';
import { BASE, feed, greeting, login, OK, packet, query, segments, u16 } from '../protocols/mysql/harness.js';

const T = (v: string) => `<${v}>`;
const my = (sql: string) => redactSqlSecrets(sql, T, 'mysql');
const pg = (sql: string) => redactSqlSecrets(sql, T, 'postgres');

describe('redactSqlSecrets', () => {
  it('MySQL: the literal after IDENTIFIED BY / WITH … BY|AS, REPLACE, PASSWORD, PASSWORD(, PASSWORD [FOR u] =', () => {
    expect(my("CREATE USER 'app'@'%' IDENTIFIED BY 'pw1'")).toBe("CREATE USER 'app'@'%' IDENTIFIED BY '<pw1>'");
    expect(my("alter user app identified by 'pw1' replace 'old' retain current password")).toBe("alter user app identified by '<pw1>' replace '<old>' retain current password");
    expect(my("CREATE USER u IDENTIFIED WITH caching_sha2_password BY 'pw2', v IDENTIFIED WITH 'mysql_native_password' AS '*ABC'"))
      .toBe("CREATE USER u IDENTIFIED WITH caching_sha2_password BY '<pw2>', v IDENTIFIED WITH 'mysql_native_password' AS '<*ABC>'");
    expect(my("GRANT ALL ON shop.* TO 'app'@'localhost' IDENTIFIED BY 'pw3' WITH GRANT OPTION"))
      .toBe("GRANT ALL ON shop.* TO 'app'@'localhost' IDENTIFIED BY '<pw3>' WITH GRANT OPTION");
    expect(my("SET PASSWORD = 'pw4'")).toBe("SET PASSWORD = '<pw4>'");
    expect(my("SET PASSWORD FOR 'app'@'%' = PASSWORD('pw5')")).toBe("SET PASSWORD FOR 'app'@'%' = PASSWORD('<pw5>')");
    expect(my('SET PASSWORD FOR app@localhost = "pw6"')).toBe("SET PASSWORD FOR app@localhost = '<pw6>'");
    expect(my("CREATE USER u IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'")).toBe("CREATE USER u IDENTIFIED BY PASSWORD '<*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29>'");
    expect(my("ALTER USER u IDENTIFIED BY _utf8mb4'pw7'")).toBe("ALTER USER u IDENTIFIED BY _utf8mb4'<pw7>'");
  });

  it("MySQL quoting: '' and \"\" doubled, backslash escapes; the value is unescaped before it is hashed", () => {
    expect(my("ALTER USER u IDENTIFIED BY 'it''s'")).toBe("ALTER USER u IDENTIFIED BY '<it's>'");
    expect(my(String.raw`ALTER USER u IDENTIFIED BY 'it\'s\\' COMMENT 'x'`)).toBe("ALTER USER u IDENTIFIED BY '<it's\\>' COMMENT 'x'");
    expect(my('ALTER USER u IDENTIFIED BY "say ""hi"""')).toBe("ALTER USER u IDENTIFIED BY '<say \"hi\">'");
    // The same password however it was quoted: the same token.
    expect(my(`SET PASSWORD = "it's"`)).toBe("SET PASSWORD = '<it's>'");
  });

  it('PostgreSQL: [ENCRYPTED] PASSWORD, E-strings, dollar quoting; "x" is an identifier and a backslash is a character', () => {
    expect(pg("CREATE ROLE app WITH LOGIN PASSWORD 'pw1' VALID UNTIL '2030-01-01'")).toBe("CREATE ROLE app WITH LOGIN PASSWORD '<pw1>' VALID UNTIL '2030-01-01'");
    expect(pg("ALTER USER \"App\" ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:abc'")).toBe("ALTER USER \"App\" ENCRYPTED PASSWORD '<SCRAM-SHA-256$4096:abc>'");
    expect(pg(String.raw`ALTER ROLE app PASSWORD 'a\' LOGIN`)).toBe("ALTER ROLE app PASSWORD '<a\\>' LOGIN");
    expect(pg("ALTER ROLE app PASSWORD 'it''s'")).toBe("ALTER ROLE app PASSWORD '<it's>'");
    expect(pg(String.raw`ALTER ROLE app PASSWORD E'it\'s'`)).toBe("ALTER ROLE app PASSWORD '<it's>'");
    expect(pg('ALTER ROLE app PASSWORD $q$pw$2$q$')).toBe("ALTER ROLE app PASSWORD '<pw$2>'");
    expect(pg('ALTER ROLE app PASSWORD "pw"')).toBe('ALTER ROLE app PASSWORD "pw"'); // an identifier: no literal to hide
  });

  it('leaves alone what is not a password literal', () => {
    for (const sql of [
      "SELECT password FROM users WHERE name = 'bob'",
      "INSERT INTO users (name, password) VALUES ('bob', ?)",
      "ALTER USER u PASSWORD EXPIRE INTERVAL 90 DAY COMMENT 'x'",
      "ALTER ROLE app PASSWORD NULL VALID UNTIL 'infinity'",
      "SELECT 'IDENTIFIED BY' AS a, 'x' -- PASSWORD 'y'\n, 'z'",
      "SELECT /* SET PASSWORD = 'a' */ 'b' # PASSWORD 'c'",
      "CREATE USER u IDENTIFIED WITH auth_socket COMMENT 'not a secret'",
      'SELECT caching_sha2_password, `password` FROM t',
      "ALTER USER u IDENTIFIED BY RANDOM PASSWORD, v ACCOUNT LOCK COMMENT 'x'",
    ]) expect(my(sql), sql).toBe(sql);
    expect(pg("SELECT \"password\" = 'x' FROM t")).toBe("SELECT \"password\" = 'x' FROM t");
    expect(pg("COMMENT ON ROLE r IS $$PASSWORD 'x'$$")).toBe("COMMENT ON ROLE r IS $$PASSWORD 'x'$$");
  });

  it('an unterminated literal (SQL cut at the decoder limit) is a secret to the end; odd text never throws', () => {
    expect(my("ALTER USER u IDENTIFIED BY 'pw-cut")).toBe("ALTER USER u IDENTIFIED BY '<pw-cut>'");
    expect(my("ALTER USER u IDENTIFIED BY 'pw\\")).toBe("ALTER USER u IDENTIFIED BY '<pw\\>'");
    expect(pg('ALTER ROLE r PASSWORD $t$pw')).toBe("ALTER ROLE r PASSWORD '<pw>'");
    for (const s of ['PASSWORD', 'PASSWORD(', "PASSWORD FOR '", 'IDENTIFIED WITH', '/* PASSWORD', '`', '"', '$', 'E', 'PASSWORD = E']) {
      expect(() => my(s)).not.toThrow();
      expect(() => pg(s)).not.toThrow();
    }
  });

  it('property: never throws, and text without either keyword comes back unchanged', () => {
    const words = fc.constantFrom('PASSWORD', 'IDENTIFIED', 'BY', 'WITH', 'AS', 'FOR', 'REPLACE', '=', '(', ')', "'", '"', '\\', '`', '$', '$$', '--', '#', '/*', '*/', '\n', ' ', ',', ';', 'x', 'E', '_utf8', '@');
    fc.assert(fc.property(fc.array(words, { maxLength: 30 }), fc.constantFrom<SqlDialect>('mysql', 'postgres'), (ws, d) => {
      const sql = ws.join(' ');
      expect(typeof redactSqlSecrets(sql, T, d)).toBe('string');
      expect(redactSqlSecrets(sql.replace(/password|identified/gi, 'word'), T, d)).toBe(sql.replace(/password|identified/gi, 'word'));
    }));
  });
});

const red = new Redactor({ key: Buffer.from('k') });
const conn = (port: number): ConnectionInfo => ({
  id: `c${port}`, client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port }, family: 4,
  startTime: 0, firstFrame: 1, handshakeSeen: false, midStream: true,
});

describe('MySQL records', () => {
  const SQL = "ALTER USER 'app'@'%' IDENTIFIED BY 's3cret-pw'";
  const caps = BASE;
  // The server refuses (1396): an error-status finding names the call.
  const err = packet(1, Buffer.concat([Buffer.from([0xff]), u16(1396), Buffer.from("#HY000Operation ALTER USER failed for 'app'@'%'")]));
  const segs = segments([[1, greeting(caps)], [0, login(caps, 'root')], [1, OK(2)],
    [0, query(SQL)], [1, err], [0, query(SQL)], [1, err], [0, query(SQL)], [1, err]]);
  const records = (redactor?: Redactor): MysqlFlow[] => {
    const b = new FlowBuilder({ bodyLimit: 64, frames: true, redactor });
    const c = conn(3306);
    return feed(segs).out.map((x) => b.build(x, c) as MysqlFlow);
  };

  it('the password is the keyed token in query, fingerprint, call name, table row and a verdict; with --no-redact it is kept', () => {
    const rs = records(red).filter((r) => r.request?.command === 'COM_QUERY');
    expect(rs).toHaveLength(3);
    const r = rs[0]!;
    expect(r.request!.query).toBe(`ALTER USER 'app'@'%' IDENTIFIED BY '${red.token('s3cret-pw')}'`);
    expect(r.request!.fingerprint).toBe(mysqlFingerprint(SQL));
    expect(mysql.callName(r, '10.0.0.2:3306', true)).toContain(red.token('s3cret-pw'));
    const found = verify(records(red)).findings.filter((f) => f.kind === 'error-status');
    expect(found).toHaveLength(1);
    expect(found[0]!.summary).toContain(red.token('s3cret-pw'));
    const shown = JSON.stringify([records(red), rs.map((x) => [mysql.callName(x, 's', true), mysql.table(x), mysql.rowCall(x)]), found]);
    expect(shown).not.toContain('s3cret-pw');
    expect(JSON.stringify(records(undefined))).toContain("IDENTIFIED BY 's3cret-pw'");
  });
});

describe('PostgreSQL records', () => {
  const pgTx = (sql: string): PgExchange => ({
    protocol: 'postgres',
    postgres: {
      request: { start: 1, end: 1.001, frames: [4, 4], size: sql.length + 5, message: 'Query', query: sql },
      response: { start: 1.002, end: 1.003, frames: [5, 5], size: 20, error: { severity: 'ERROR', code: '42704', message: 'role "app" does not exist' } },
      session: { user: 'postgres', database: 'shop' },
    },
  } as PgExchange);
  const SQL = "ALTER ROLE app WITH LOGIN ENCRYPTED PASSWORD 'pg-s3cret'";
  const build = (redactor?: Redactor): PostgresFlow[] => {
    const b = new FlowBuilder({ bodyLimit: 64, frames: true, redactor });
    const c = conn(5432);
    return [1, 2, 3].map(() => b.build(pgTx(SQL), c) as PostgresFlow);
  };

  it('the password is the keyed token in query, call name, table row and a verdict; the fingerprint is unchanged; --no-redact keeps it', () => {
    const [r] = build(red);
    expect(r!.request!.query).toBe(`ALTER ROLE app WITH LOGIN ENCRYPTED PASSWORD '${red.token('pg-s3cret')}'`);
    expect(r!.request!.fingerprint).toBe(fingerprint(SQL));
    expect(postgres.callName(r!, '10.0.0.2:5432', true)).toContain(red.token('pg-s3cret'));
    const found = verify(build(red)).findings.filter((f) => f.kind === 'error-status');
    expect(found).toHaveLength(1);
    expect(found[0]!.summary).toContain(red.token('pg-s3cret'));
    expect(JSON.stringify([build(red), postgres.table(r!), postgres.rowCall(r!), found])).not.toContain('pg-s3cret');
    expect(build(undefined)[0]!.request!.query).toBe(SQL);
  });
});
