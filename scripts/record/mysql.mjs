// Records the MySQL/MariaDB decoder fixtures in pcaps/mysql/ from real traffic on loopback:
// mysql-basic.pcap, mysql2-node.pcap and mysqlslap.pcap.
//
//   node scripts/record/mysql.mjs [OUT_DIR] [CAPTURE ...]   (default OUT_DIR: pcaps/mysql; default: every capture,
//                                                            or only those named: basic, mysql2, slap)
//
// A throwaway MariaDB (mariadb-install-db into a temp dir, then mariadbd on 127.0.0.1:PORT and a Unix
// socket) is seeded over the socket outside the capture: database `shop`, table `orders`, and a user
// `app` with a real password (mysql_native_password), so logins are real. Then, inside one capture on
// the server's TCP port, one connection after another:
//   1. the `mysql` CLI as `app`: queries with result sets, an error 1146 (no such table), a duplicate
//      key 1062, an UPDATE (affected rows), and a multi-statement query (sent as one COM_QUERY through a
//      DELIMITER change) answered by several result sets (SERVER_MORE_RESULTS_EXISTS);
//   2. the `mysql` CLI with a wrong password: the login fails with ERR 1045;
//   3. the `mysql` CLI with --ssl: an SSLRequest, then TLS (the server has a throwaway self-signed
//      certificate made with openssl);
//   4. a raw-socket client (below; mysql2 is not installed and no dependency is added for this):
//      CLIENT_DEPRECATE_EOF, COM_STMT_PREPARE, two COM_STMT_EXECUTEs with binary parameters (int, string,
//      NULL, double, datetime) and binary result rows, COM_STMT_CLOSE, COM_PING, COM_INIT_DB, COM_QUIT.
// mysql2-node.pcap: the real `mysql2` Node driver (dev dependency), whose execute() speaks the binary
// protocol: executes with int, string, NULL, double and date parameters (one statement executed twice:
// its id maps to its SQL), query() in the text protocol, a transaction (START TRANSACTION … COMMIT), and
// a login with a wrong password (ERR 1045).
// mysqlslap.pcap: mysqlslap's auto-generated load (2 clients, 2 iterations, 100 queries, 20 seed rows), ordinary
// traffic for stays-quiet tests.
// Query texts and data are fixed; scrambles, thread ids, TCP ports and timing differ on every run.
// After the capture, tshark (-d tcp.port==PORT,mysql) checks that it shows what it is for.
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { capture, requireTools, startChild, waitPort } from './lib.mjs';

/** tshark's reading of the capture: commands (by number), error codes, logins, SSL requests. */
function verify(file) {
  const out = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${PORT},mysql`, '-Y', 'mysql', '-T', 'fields',
    '-e', 'mysql.command', '-e', 'mysql.error_code', '-e', 'mysql.user'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const rows = out.split('\n').filter(Boolean).map((l) => l.split('\t'));
  const count = (i, v) => rows.filter((r) => r[i] === v).length;
  const want = [
    ['COM_QUERY', count(0, '3') >= 8], ['COM_STMT_PREPARE x2', count(0, '22') === 2], ['COM_STMT_EXECUTE x4', count(0, '23') === 4],
    ['COM_STMT_CLOSE', count(0, '25') === 1], ['COM_PING', count(0, '14') === 1], ['COM_INIT_DB', count(0, '2') === 1],
    ['COM_QUIT x2', count(0, '1') === 2], ['ERR 1146', count(1, '1146') === 1], ['ERR 1062 x2', count(1, '1062') === 2],
    ['ERR 1045', count(1, '1045') === 1], ['3 logins as app in clear', count(2, 'app') === 3],
  ];
  const bad = want.filter(([, ok]) => !ok).map(([what]) => what);
  if (bad.length) throw new Error(`tshark does not show: ${bad.join(', ')}`);
  console.log(`  tshark: ${want.map(([what]) => what).join(', ')}`);
}

const HOST = '127.0.0.1';
const PORT = 18501;
const USER = 'app';
const PASSWORD = 'app-secret';

const SEED = `
CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY, customer VARCHAR(40) NOT NULL, total DECIMAL(10,2), created DATETIME, note VARCHAR(40));
INSERT INTO shop.orders VALUES ${Array.from({ length: 10 }, (_, i) =>
    `(${i + 1}, 'customer-${String(i + 1).padStart(3, '0')}', ${(i + 1) * 10}.25, '2025-03-0${(i % 9) + 1} 10:00:00', ${i % 3 ? 'NULL' : `'n${i}'`})`).join(', ')};
CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PASSWORD}';
GRANT ALL ON shop.* TO '${USER}'@'127.0.0.1';
GRANT SELECT ON mysql.* TO '${USER}'@'127.0.0.1';
CREATE USER 'slap'@'127.0.0.1' IDENTIFIED BY 'slap-secret';
GRANT ALL ON *.* TO 'slap'@'127.0.0.1';
`;

const CLI_SESSION = `
SELECT id, customer, total FROM orders WHERE id <= 3 ORDER BY id;
SELECT count(*) AS n FROM orders;
SELECT * FROM no_such_table;
INSERT INTO orders (id, customer) VALUES (1, 'duplicate');
UPDATE orders SET note = 'seen' WHERE id IN (2, 3, 4);
DELIMITER //
SELECT id FROM orders WHERE id = 5; SELECT customer FROM orders WHERE id = 6; UPDATE orders SET note = 'multi' WHERE id = 7//
DELIMITER ;
SELECT 1;
`;

function mysqlCli(args, input) {
  // --skip-ssl unless asked: the server offers TLS, and only the TLS case should use it.
  const ssl = args.includes('--ssl') ? [] : ['--skip-ssl'];
  return spawnSync('mysql', ['--no-defaults', ...ssl, '--protocol=TCP', '-h', HOST, '-P', String(PORT), ...args],
    { input, encoding: 'utf8', timeout: 20000 });
}

// ---------------------------------------------------------------------------------------------
// A minimal client of the MySQL client/server protocol, enough for the binary-protocol case.
// Capability flags (PAGE_PROTOCOL.html, "Capabilities Flags").
const CAP = {
  LONG_PASSWORD: 0x1, CONNECT_WITH_DB: 0x8, PROTOCOL_41: 0x200, TRANSACTIONS: 0x2000, SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000, MULTI_RESULTS: 0x20000, PS_MULTI_RESULTS: 0x40000, PLUGIN_AUTH: 0x80000,
  DEPRECATE_EOF: 0x1000000,
};

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))). */
function nativeToken(password, scramble) {
  const sha1 = (...b) => { const h = createHash('sha1'); for (const x of b) h.update(x); return h.digest(); };
  const p1 = sha1(Buffer.from(password));
  const p3 = sha1(scramble, sha1(p1));
  return Buffer.from(p1.map((x, i) => x ^ p3[i]));
}

function lenenc(n) {
  if (n < 251) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
}

class Raw {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.seq = 0;
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  async packet() {
    for (;;) {
      if (this.buf.length >= 4) {
        const len = this.buf.readUIntLE(0, 3);
        if (this.buf.length >= 4 + len) {
          this.seq = (this.buf[3] + 1) & 0xff;
          const p = this.buf.subarray(4, 4 + len);
          this.buf = this.buf.subarray(4 + len);
          return Buffer.from(p);
        }
      }
      if (this.closed) throw new Error('raw client: connection closed');
      await new Promise((r) => this.waiters.push(r));
    }
  }

  send(payload, seq = this.seq) {
    const h = Buffer.alloc(4);
    h.writeUIntLE(payload.length, 0, 3);
    h[3] = seq;
    this.sock.write(Buffer.concat([h, payload]));
  }

  command(payload) { this.send(payload, 0); }

  static async connect(port, database) {
    const sock = net.connect({ host: HOST, port });
    await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
    const w = new Raw(sock);
    const hello = await w.packet();
    if (hello[0] !== 10) throw new Error(`raw client: protocol version ${hello[0]}`);
    let p = hello.indexOf(0, 1) + 1 + 4;
    const s1 = hello.subarray(p, p + 8);
    p += 8 + 1 + 2 + 1 + 2 + 2;
    const authLen = hello[p];
    p += 1 + 10;
    const s2 = hello.subarray(p, p + Math.max(13, authLen - 8) - 1);
    const scramble = Buffer.concat([s1, s2]);
    const caps = CAP.LONG_PASSWORD | CAP.CONNECT_WITH_DB | CAP.PROTOCOL_41 | CAP.TRANSACTIONS | CAP.SECURE_CONNECTION
      | CAP.MULTI_RESULTS | CAP.PS_MULTI_RESULTS | CAP.PLUGIN_AUTH | CAP.DEPRECATE_EOF;
    const head = Buffer.alloc(32);
    head.writeUInt32LE(caps >>> 0, 0);
    head.writeUInt32LE(16 * 1024 * 1024, 4);
    head[8] = 45; // utf8mb4_general_ci
    const token = nativeToken(PASSWORD, scramble);
    w.send(Buffer.concat([head, Buffer.from(`${USER}\0`), Buffer.from([token.length]), token,
      Buffer.from(`${database}\0`), Buffer.from('mysql_native_password\0')]));
    let r = await w.packet();
    if (r[0] === 0xfe) {
      // AuthSwitchRequest: plugin name, then the new scramble (NUL-terminated).
      const nul = r.indexOf(0, 1);
      const plugin = r.subarray(1, nul).toString();
      if (plugin !== 'mysql_native_password') throw new Error(`raw client: server asks for ${plugin}`);
      w.send(nativeToken(PASSWORD, r.subarray(nul + 1, nul + 21)));
      r = await w.packet();
    }
    if (r[0] !== 0) throw new Error(`raw client: login failed: ${r.subarray(9).toString()}`);
    return w;
  }

  /** Column definitions then rows up to the terminating OK (CLIENT_DEPRECATE_EOF): returns the row packets. */
  async resultSet(first) {
    if (first[0] === 0x00 || first[0] === 0xff) return { head: first, rows: [] };
    const n = first[0];
    for (let i = 0; i < n; i++) await this.packet();
    const rows = [];
    for (;;) {
      const p = await this.packet();
      if ((p[0] === 0xfe && p.length < 0xffffff) || p[0] === 0xff) return { head: first, rows, end: p };
      rows.push(p);
    }
  }

  async prepare(sql) {
    this.command(Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)]));
    const ok = await this.packet();
    if (ok[0] !== 0) throw new Error(`prepare failed: ${ok.subarray(9).toString()}`);
    const id = ok.readUInt32LE(1);
    const cols = ok.readUInt16LE(5);
    const params = ok.readUInt16LE(7);
    for (let i = 0; i < params + cols; i++) await this.packet(); // no EOFs with DEPRECATE_EOF
    return { id, params };
  }

  /** values: [type, Buffer|null] pairs (MYSQL_TYPE_* codes). */
  async execute(id, values) {
    const n = values.length;
    const nulls = Buffer.alloc((n + 7) >> 3);
    values.forEach(([, v], i) => { if (v === null) nulls[i >> 3] |= 1 << (i & 7); });
    const head = Buffer.alloc(10);
    head[0] = 0x17;
    head.writeUInt32LE(id, 1);
    head[5] = 0; // CURSOR_TYPE_NO_CURSOR
    head.writeUInt32LE(1, 6);
    const types = Buffer.concat(values.map(([t]) => Buffer.from([t, 0])));
    const data = Buffer.concat(values.filter(([, v]) => v !== null).map(([, v]) => v));
    this.command(Buffer.concat([head, nulls, Buffer.from([1]), types, data]));
    return this.resultSet(await this.packet());
  }
}

const T = { LONGLONG: 8, LONG: 3, VAR_STRING: 253, DOUBLE: 5, DATETIME: 12, NULL: 6 };
const i64 = (n) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(n)); return b; };
const f64 = (n) => { const b = Buffer.alloc(8); b.writeDoubleLE(n); return b; };
const str = (s) => Buffer.concat([lenenc(Buffer.byteLength(s)), Buffer.from(s)]);
const dt = (y, mo, d, h, mi, s) => { const b = Buffer.alloc(8); b[0] = 7; b.writeUInt16LE(y, 1); b[3] = mo; b[4] = d; b[5] = h; b[6] = mi; b[7] = s; return b; };

async function rawSession(port) {
  const w = await Raw.connect(port, 'shop');
  const sel = await w.prepare('SELECT id, customer, total, created, note FROM orders WHERE id = ? OR customer = ?');
  let r = await w.execute(sel.id, [[T.LONGLONG, i64(3)], [T.VAR_STRING, str('customer-005')]]);
  if (r.rows.length !== 2) throw new Error(`raw client: execute 1 returned ${r.rows.length} rows`);
  r = await w.execute(sel.id, [[T.LONGLONG, i64(9)], [T.VAR_STRING, null]]);
  if (r.rows.length !== 1) throw new Error(`raw client: execute 2 returned ${r.rows.length} rows`);
  const ins = await w.prepare('INSERT INTO orders (id, customer, total, created, note) VALUES (?, ?, ?, ?, ?)');
  r = await w.execute(ins.id, [[T.LONG, Buffer.from([11, 0, 0, 0])], [T.VAR_STRING, str('customer-011')], [T.DOUBLE, f64(99.5)],
    [T.DATETIME, dt(2025, 3, 4, 10, 30, 15)], [T.NULL, null]]);
  if (r.head[0] !== 0) throw new Error('raw client: insert failed');
  r = await w.execute(ins.id, [[T.LONG, Buffer.from([11, 0, 0, 0])], [T.VAR_STRING, str('again')], [T.DOUBLE, f64(1)],
    [T.DATETIME, dt(2025, 3, 4, 10, 30, 16)], [T.NULL, null]]);
  if (r.head[0] !== 0xff || r.head.readUInt16LE(1) !== 1062) throw new Error('raw client: expected a duplicate key');
  w.command(Buffer.concat([Buffer.from([0x19]), Buffer.from([sel.id, 0, 0, 0])])); // COM_STMT_CLOSE: no answer
  w.command(Buffer.from([0x0e])); // COM_PING
  if ((await w.packet())[0] !== 0) throw new Error('raw client: ping');
  w.command(Buffer.concat([Buffer.from([0x02]), Buffer.from('mysql')])); // COM_INIT_DB
  if ((await w.packet())[0] !== 0) throw new Error('raw client: init db');
  w.command(Buffer.concat([Buffer.from([0x03]), Buffer.from('SELECT 1 + 1 AS two')]));
  await w.resultSet(await w.packet());
  w.command(Buffer.from([0x01])); // COM_QUIT
  await new Promise((res) => { w.sock.once('close', res); w.sock.end(); });
}

// ---------------------------------------------------------------------------------------------
// The mysql2 driver, as a Node service would use it.
async function mysql2Session(port) {
  const mysql = (await import('mysql2/promise')).default;
  const opts = { host: HOST, port, user: USER, password: PASSWORD, database: 'shop', timezone: 'Z' };
  const c = await mysql.createConnection(opts);
  const sel = 'SELECT id, customer, total, created, note FROM orders WHERE id = ? OR customer = ?';
  let [rows] = await c.execute(sel, [3, 'customer-005']);
  if (rows.length !== 2) throw new Error(`mysql2: execute 1 returned ${rows.length} rows`);
  [rows] = await c.execute(sel, [9, null]); // the same statement again: its id, not its text, goes on the wire
  if (rows.length !== 1) throw new Error(`mysql2: execute 2 returned ${rows.length} rows`);
  await c.execute('INSERT INTO orders (id, customer, total, created, note) VALUES (?, ?, ?, ?, ?)',
    [201, 'node-201', 12.5, new Date(Date.UTC(2025, 2, 4, 10, 30, 15)), null]);
  [rows] = await c.query('SELECT count(*) AS n FROM orders');
  if (Number(rows[0].n) < 11) throw new Error('mysql2: count');
  await c.query('SELECT customer FROM orders WHERE id = 201');
  await c.beginTransaction();
  await c.execute('UPDATE orders SET note = ? WHERE id = ?', ['in-tx', 201]);
  await c.commit();
  await c.end();
  try {
    const bad = await mysql.createConnection({ ...opts, password: 'wrong-password' });
    await bad.end();
    throw new Error('mysql2: a wrong password logged in');
  } catch (e) {
    if (e.errno !== 1045) throw e;
  }
}

/** mysqlslap's auto-generated load, small. */
function slap(port) {
  const r = spawnSync('mysqlslap', ['--no-defaults', '--protocol=TCP', '-h', HOST, '-P', String(port), '-u', 'slap', '-pslap-secret',
    '--skip-ssl', '--concurrency=2', '--iterations=2', '--auto-generate-sql', '--number-of-queries=100',
    // Fewer seed rows and columns than the defaults (100 rows, one INT and one VARCHAR(128) column are kept): the capture stays under 1 MB.
    '--auto-generate-sql-write-number=20', '--number-int-cols=1', '--number-char-cols=1'], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`mysqlslap:\n${r.stdout}\n${r.stderr}`);
}

/** tshark's reading of the mysql2 capture: prepares, executes, queries, the failed login. */
function verifyMysql2(file) {
  const out = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${PORT},mysql`, '-Y', 'mysql', '-T', 'fields',
    '-e', 'mysql.command', '-e', 'mysql.error_code'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const rows = out.split('\n').filter(Boolean).map((l) => l.split('\t'));
  const count = (i, v) => rows.filter((r) => r[i] === v).length;
  const want = [
    ['COM_STMT_PREPARE x3', count(0, '22') === 3], ['COM_STMT_EXECUTE x4', count(0, '23') === 4],
    ['COM_QUERY', count(0, '3') >= 4], ['ERR 1045', count(1, '1045') === 1],
  ];
  const bad = want.filter(([, ok]) => !ok).map(([what]) => what);
  if (bad.length) throw new Error(`tshark does not show in ${file}: ${bad.join(', ')}`);
  console.log(`  tshark: ${want.map(([what]) => what).join(', ')}`);
}

async function main() {
  requireTools('tcpdump', 'capinfos', 'tshark', 'mariadbd', 'mariadb-install-db', 'mysql', 'mysqlslap', 'openssl');
  const outDir = process.argv[2] ?? 'pcaps/mysql';
  const named = process.argv.slice(3);
  const want = (c) => named.length === 0 || named.includes(c);
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-mysql-'));
  const sock = join(dir, 'mysqld.sock');
  const root = process.getuid?.() === 0 ? ['--user=root'] : [];
  try {
    // A throwaway certificate, so the server offers CLIENT_SSL and a client can send an SSLRequest.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: ['ignore', 'pipe', 'pipe'] });
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--skip-test-db',
      '--auth-root-authentication-method=socket', ...root], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = startChild('mariadbd', ['--no-defaults', `--datadir=${join(dir, 'data')}`, `--socket=${sock}`,
      `--port=${PORT}`, `--bind-address=${HOST}`, `--pid-file=${join(dir, 'pid')}`, '--skip-log-bin',
      '--innodb-buffer-pool-size=16M',
      `--ssl-cert=${join(dir, 'cert.pem')}`, `--ssl-key=${join(dir, 'key.pem')}`, ...root], { ready: 'ready for connections', timeoutMs: 30000 });
    try {
      await server.ready;
      await waitPort(PORT, HOST);
      execFileSync('mysql', ['--no-defaults', `--socket=${sock}`, '-uroot'], { input: SEED, stdio: ['pipe', 'pipe', 'pipe'] });
      if (want('basic')) await capture(join(outDir, 'mysql-basic.pcap'), `tcp port ${PORT} and host ${HOST}`, async () => {
        const ok = mysqlCli(['-u', USER, `-p${PASSWORD}`, '--force', '--table', 'shop'], CLI_SESSION);
        // --force: carry on after the two expected errors; the exit status is 1 because of them.
        if (!/1146/.test(ok.stderr) || !/1062/.test(ok.stderr)) throw new Error(`mysql session:\n${ok.stdout}\n${ok.stderr}`);
        const bad = mysqlCli(['-u', USER, '-pwrong-password', 'shop', '-e', 'SELECT 1']);
        if (!/1045/.test(bad.stderr)) throw new Error(`failed login: expected 1045, got:\n${bad.stderr}`);
        const tls = mysqlCli(['-u', USER, `-p${PASSWORD}`, '--ssl', '--ssl-verify-server-cert=0', 'shop', '-e', 'SELECT 1']);
        if (tls.status !== 0) throw new Error(`TLS login:\n${tls.stderr}`);
        await rawSession(PORT);
      });
      if (want('mysql2')) await capture(join(outDir, 'mysql2-node.pcap'), `tcp port ${PORT} and host ${HOST}`, () => mysql2Session(PORT));
      if (want('slap')) await capture(join(outDir, 'mysqlslap.pcap'), `tcp port ${PORT} and host ${HOST}`, async () => slap(PORT));
    } finally {
      await server.stop('SIGTERM', 10000);
    }
    if (want('basic')) verify(join(outDir, 'mysql-basic.pcap'));
    if (want('mysql2')) verifyMysql2(join(outDir, 'mysql2-node.pcap'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record mysql: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
