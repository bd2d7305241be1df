// Records a large capture of real MySQL-protocol traffic (MariaDB, mysql2 and mysqlslap) for the benchmarks
// (git-ignored: bench/.cache/).
//
//   node bench/record-mysql.mjs [--min-mb 50] [--out bench/.cache/mysql-50m.pcap]
//
// A throwaway MariaDB (Debian's; mariadb-install-db into a temp dir, mariadbd on 127.0.0.1:18940 and a
// Unix socket, as scripts/record/mysql.mjs does) is seeded over the socket, outside the capture:
// database `bench`, table `items` (1 000 rows), table `events`, and a user `bench` with a password
// (mysql_native_password, so logins are real). Then tcpdump -s 0 records that port on lo while one load
// process (this file with --load) runs two clients at once:
//   - mysql2 (the Node driver), 4 connections, each in a loop: `execute` (the binary protocol:
//     COM_STMT_PREPARE once per connection and statement, then COM_STMT_EXECUTE with binary parameters
//     and binary result rows) of a point SELECT, an UPDATE and an INSERT; `query` (COM_QUERY, text
//     protocol) of a 10-row range SELECT; and every 50th round a duplicate-key INSERT (ERR 1062);
//   - mysqlslap, 2 connections, auto-generated SQL, mixed load (key SELECTs and INSERTs on an
//     auto-increment table), its iterations repeated (each creates and drops its own schema).
// The capture starts before the clients connect (handshakes, logins and prepares are inside) and is
// stopped as soon as the file reaches --min-mb (MiB): it ends mid-stream. An existing file already at
// least that large is reused. tshark decodes it with: tshark -r FILE -d tcp.port==18940,mysql -Y mysql
// Needs root (tcpdump), tcpdump, capinfos (tshark package), mariadb-server, mariadb-client (mysql,
// mysqlslap), npm ci (mysql2).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, sleep, startChild, waitPort } from '../scripts/record/lib.mjs';
import { benchArgs, captureUntilSize, reuse, summary } from '../scripts/record/bench-capture.mjs';

const HOST = '127.0.0.1';
const PORT = 18940;
const USER = 'bench';
const PASSWORD = 'bench-secret';
const ROWS = 1000;

const SEED = `
CREATE DATABASE bench;
CREATE TABLE bench.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2), stock INT, updated DATETIME);
INSERT INTO bench.items VALUES ${Array.from({ length: ROWS }, (_, i) =>
    `(${i + 1}, 'item-${String(i + 1).padStart(5, '0')}', ${(i % 97) + 1}.99, ${i % 50}, '2026-12-0${(i % 7) + 1} 12:00:00')`).join(', ')};
CREATE TABLE bench.events (id BIGINT AUTO_INCREMENT PRIMARY KEY, item INT, kind VARCHAR(16), at DATETIME);
CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PASSWORD}';
GRANT ALL ON *.* TO '${USER}'@'127.0.0.1';
`;

/** The load process: mysql2 workers and mysqlslap, until stopped with SIGINT. */
async function load() {
  const { default: mysql } = await import('mysql2/promise');
  const slap = () => startChild('mysqlslap', ['--no-defaults', '--skip-ssl', '--protocol=TCP', '-h', HOST, '-P', String(PORT),
    '-u', USER, `-p${PASSWORD}`, '--auto-generate-sql', '--auto-generate-sql-load-type=mixed',
    '--auto-generate-sql-add-autoincrement', '--concurrency=2', '--number-of-queries=4000', '--iterations=1000', '--silent']);
  let stopping = false;
  process.on('SIGINT', () => { stopping = true; });
  (async () => {
    while (!stopping) await slap().exited;
  })();
  const worker = async (w) => {
    const c = await mysql.createConnection({ host: HOST, port: PORT, user: USER, password: PASSWORD, database: 'bench' });
    for (let i = 0; !stopping; i++) {
      const id = ((i * 37 + w * 101) % ROWS) + 1;
      await c.execute('SELECT id, name, price, stock, updated FROM items WHERE id = ?', [id]);
      await c.execute('UPDATE items SET stock = stock + ?, updated = ? WHERE id = ?', [1, new Date(Date.UTC(2026, 11, 7, 20, i % 60)), id]);
      await c.execute('INSERT INTO events (item, kind, at) VALUES (?, ?, NOW())', [id, i % 2 ? 'view' : 'buy']);
      await c.query(`SELECT id, name, price FROM items WHERE id BETWEEN ${id} AND ${id + 9} ORDER BY id`);
      if (i % 50 === 49) await c.query(`INSERT INTO items (id, name) VALUES (${id}, 'duplicate')`).catch(() => {});
    }
    await c.end();
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  await sleep(100);
  process.exit(0);
}

async function main() {
  const { minMb, out } = benchArgs('bench/record-mysql', process.argv.slice(2), { minMb: 50, prefix: 'mysql' });
  if (reuse(out, minMb)) return;
  requireTools('tcpdump', 'capinfos', 'mariadbd', 'mariadb-install-db', 'mysql', 'mysqlslap');
  if (process.getuid?.() !== 0) {
    console.error('bench/record-mysql: must run as root (tcpdump on lo)');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-mysql-'));
  const sock = join(dir, 'mysqld.sock');
  try {
    execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--skip-test-db',
      '--auth-root-authentication-method=socket', '--user=root'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // No binary log, a small buffer pool, no fsync per commit: the server should not be the bottleneck.
    const server = startChild('mariadbd', ['--no-defaults', `--datadir=${join(dir, 'data')}`, `--socket=${sock}`,
      `--port=${PORT}`, `--bind-address=${HOST}`, `--pid-file=${join(dir, 'pid')}`, '--skip-log-bin', '--user=root',
      '--innodb-buffer-pool-size=64M', '--innodb-flush-log-at-trx-commit=0', '--max-connections=50'],
    { ready: 'ready for connections', timeoutMs: 30000 });
    try {
      await server.ready;
      await waitPort(PORT, HOST);
      execFileSync('mysql', ['--no-defaults', `--socket=${sock}`, '-uroot'], { input: SEED, stdio: ['pipe', 'pipe', 'pipe'] });
      const r = await captureUntilSize({
        out, minMb, filter: `tcp port ${PORT} and host ${HOST}`, watch: [['mariadbd', server]],
        startLoad: () => startChild(process.execPath, [process.argv[1], '--load']),
      });
      summary(out, r, 'mysql2 execute/query x4 and mysqlslap mixed x2');
    } finally {
      await server.stop('SIGTERM', 15000);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const run = process.argv[2] === '--load' ? load : main;
run().then(() => process.exit(0), (e) => {
  console.error(`bench/record-mysql: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
