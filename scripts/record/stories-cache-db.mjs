// Records the verifier stories of Redis and MySQL (issue 19) into pcaps/verify/, from real servers on
// loopback: a throwaway redis-server and a throwaway MariaDB, a Node HTTP service using them through
// the ioredis and mysql2 drivers, and a driver calling that service.
//
//   node scripts/record/stories-cache-db.mjs [OUT_DIR] [capture ...]     (default OUT_DIR: pcaps/verify, all)
//
// Captures (after each, tshark checks that it shows the calls and errors below; each under 1 MB):
//   redis-stories.pcap    shop-api 127.0.0.40:8090 → redis-server 127.0.0.41:18631 (ioredis):
//     GET /carts/7              BUG n-plus-one: SMEMBERS cart:7, then one GET item:{id} per item (12; 2 are misses)
//     GET /carts/7?batched=1    fixed: SMEMBERS, then one MGET
//     GET /users/42             BUG redundant-call: GET user:42 three times (three helpers each load the user)
//     GET /sessions/9           BUG error-status: HGET on a key an older release wrote as a string (WRONGTYPE), twice
//     POST /labels              BUG retry: a Lua script that errors (INCR on a non-integer), retried 4 times 50 ms apart
//     POST /labels?backoff=1    the same, backing off 50, 100, 200 ms (info, not a warning)
//     GET /reports/{day}        slow: a Lua script that sums a day's entries; day 7 is an outlier (~300 ms), day 8
//                               over the 1000 ms budget (~1.6 s), days 1–6 ~1 ms
//     GET /items/{id}           healthy cache reads: GET item:{id}, the same keys read by several requests
//     POST /checkout            healthy: three INCRs (an id per order line), then MULTI, DECRBY, LPUSH, EXEC
//     and, outside any request, a worker on a second connection: BRPOP jobs:pending 1.5 twice, on an
//     empty queue (nil after the wait: a blocking command, not a slow one)
//   (ordinary Redis load, for the stays-quiet tests, is pcaps/redis/redis-benchmark.pcap: scripts/record/cache-demo.mjs)
//   mysql-stories.pcap    orders-api 127.0.0.43:8091 → MariaDB 127.0.0.42:18531 (mysql2):
//     GET /customers/7/orders            BUG n-plus-one: one order_items query per order (12, prepared: execute)
//     GET /customers/7/orders?batched=1  fixed: one query with IN (…)
//     GET /customers/8/orders?prepare=each  the same N+1 as a driver without a statement cache sends it:
//                                        COM_STMT_PREPARE, EXECUTE and CLOSE per order (12 prepares of one statement)
//     GET /products/5                    BUG redundant-call: the same product query three times
//     GET /search?name=…                 BUG unparameterised-sql: the name inlined in the SQL text (4 names)
//     GET /search?name=…&safe=1          fixed: a bind parameter
//     GET /legacy/stats                  BUG error-status: a table that no longer exists (1146)
//     POST /imports/1                    BUG retry + error-status: an INSERT of an existing id (1062), retried 4
//                                        times 50 ms apart
//     GET /reports/{day}                 slow: SELECT SLEEP(?) standing in for a report query: day 7 ~300 ms, day
//                                        8 ~1.2 s, days 1–6 ~1 ms
//     POST /checkout                     healthy: a transaction (START TRANSACTION, UPDATE, INSERT, COMMIT)
//   mysql-slap.pcap       mysqlslap, auto-generated primary-key reads, 4 clients (ordinary load, no service)
//
// The servers start before tcpdump; the service starts inside the capture, so its Redis and MySQL
// connections are whole (login, ioredis' ready check). The service opens its connections from its
// own address, like a pod, so tapwire ties each call to the inbound request it was made for. The
// driver (127.0.0.1) calls one request at a time over one keep-alive connection, 20 ms apart.
// Keys, values, SQL and order are fixed; ports, timing, thread ids and scrambles are not. Needs root
// (tcpdump on lo), redis-server, mariadbd, mariadb-install-db, mysql, mysqlslap and tshark.
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import Redis from 'ioredis';
import mysql from 'mysql2/promise';
import { capture, requireTools, sleep } from './lib.mjs';
import { fromAddress, startMariadb, startRedis } from './servers.mjs';

const DRIVER = '127.0.0.1';
const REDIS = { host: '127.0.0.41', port: 18631 };
const SHOP_API = { host: '127.0.0.40', port: 8090 };
const MYSQL = { host: '127.0.0.42', port: 18531 };
const ORDERS_API = { host: '127.0.0.43', port: 8091 };
const USER = 'app';
const PASSWORD = 'app-secret';

// ---------------------------------------------------------------------------------------------
// servers

const MYSQL_SEED = `
CREATE DATABASE shop;
CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL);
CREATE TABLE shop.orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2));
CREATE TABLE shop.order_items (order_id INT NOT NULL, sku INT NOT NULL, qty INT NOT NULL, PRIMARY KEY (order_id, sku));
CREATE TABLE shop.products (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2), stock INT NOT NULL);
INSERT INTO shop.customers VALUES ${['ada', 'brian', 'chen', 'dana', 'emil', 'fay', 'gus'].map((n, i) => `(${i + 1}, '${n}')`).join(', ')};
INSERT INTO shop.orders VALUES ${[7, 8].flatMap((c) => Array.from({ length: 12 }, (_, i) => `(${c * 100 - 599 + i}, ${c}, ${(i + 1) * 10}.50)`)).join(', ')}, (1, 1, 5.00);
INSERT INTO shop.order_items VALUES ${[101, 201].flatMap((o) => Array.from({ length: 12 }, (_, i) => `(${o + i}, ${1000 + i}, ${1 + (i % 3)}), (${o + i}, ${1100 + i}, 1)`)).join(', ')};
INSERT INTO shop.products VALUES ${Array.from({ length: 9 }, (_, i) => `(${i + 1}, 'product-${i + 1}', ${(4.5 + i * 1.25).toFixed(2)}, 100)`).join(', ')};
CREATE USER '${USER}'@'127.0.0.%' IDENTIFIED BY '${PASSWORD}';
GRANT ALL ON shop.* TO '${USER}'@'127.0.0.%';
GRANT ALL ON mysqlslap.* TO '${USER}'@'127.0.0.%';
`;

// ---------------------------------------------------------------------------------------------
// the service kit: an HTTP server on its own address, and a driver

function serve({ host, port }, handler) {
  const server = http.createServer(async (req, res) => {
    for await (const _ of req); // the body is not used
    const url = new URL(req.url, `http://${host}:${port}`);
    let status = 200, body;
    try {
      const r = await handler(req.method, url);
      if (r === undefined) { status = 404; body = { error: 'not found' }; } else [status, body] = r;
    } catch (e) {
      status = 500;
      body = { error: String(e.message ?? e) };
    }
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': data.length });
    res.end(data);
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => resolve(server));
  });
}

/** The driver: calls from 127.0.0.1, one at a time over one keep-alive connection, 20 ms apart. */
async function drive(to, calls) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const [method, path, expect] of calls) {
      const req = http.request({ host: to.host, port: to.port, localAddress: DRIVER, method, path, agent });
      req.end();
      const [res] = await once(req, 'response');
      let text = '';
      for await (const c of res) text += c;
      if (res.statusCode !== expect) throw new Error(`${method} ${path} -> ${res.statusCode}, expected ${expect}: ${text}`);
      await sleep(20);
    }
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Redis story

const FromServiceAddress = fromAddress(SHOP_API.host);

const CART = Array.from({ length: 12 }, (_, i) => String(i + 1));
const MISSING = new Set(['4', '9']); // not cached: nil replies, misses, not failures
const INCR_SCRIPT = "return redis.call('INCR', KEYS[1])";
// Sums a day's entries; the entry count (ARGV[1]) stands in for how big the day is.
const SUM_SCRIPT = 'local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + i % 7 end return n';

async function seedRedis() {
  const r = new Redis({ host: REDIS.host, port: REDIS.port, lazyConnect: true });
  await r.connect();
  await r.sadd('cart:7', ...CART);
  for (const id of CART) if (!MISSING.has(id)) await r.set(`item:${id}`, JSON.stringify({ id: Number(id), name: `item ${id}`, price: 3 + Number(id) }));
  await r.set('user:42', JSON.stringify({ id: 42, name: 'Ada', plan: 'pro' }));
  await r.hset('prefs:42', 'theme', 'dark', 'lang', 'en');
  await r.set('session:9', 'user=ada;exp=1767225600'); // an older release wrote sessions as strings
  await r.set('labels:next', 'A-100'); // not an integer: INCR fails
  await r.set('stock:1', '50');
  // How many loop steps the Lua script does per millisecond here, so the report days take about the
  // time they should: the fastest of three runs (the machine is shared).
  let perMs = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    await r.eval(SUM_SCRIPT, 1, 'report:0', 5_000_000);
    perMs = Math.max(perMs, 5_000_000 / (Number(process.hrtime.bigint() - t0) / 1e6));
  }
  r.disconnect();
  return perMs;
}

async function shopApi(perMs) {
  const redis = new Redis({ host: REDIS.host, port: REDIS.port, Connector: FromServiceAddress, connectionName: 'shop-api', maxRetriesPerRequest: 0 });
  await once(redis, 'ready');
  // A job worker: a blocking pop on its own connection (it holds the connection while it waits).
  const worker = new Redis({ host: REDIS.host, port: REDIS.port, Connector: FromServiceAddress, connectionName: 'shop-worker', maxRetriesPerRequest: 0 });
  await once(worker, 'ready');
  const jobs = (async () => { for (let i = 0; i < 2; i++) await worker.brpop('jobs:pending', 1.5); })();
  const loadUser = (id) => redis.get(`user:${id}`).then((v) => JSON.parse(v));
  const server = await serve(SHOP_API, async (method, url) => {
    const p = url.pathname;
    let m;
    if (method === 'GET' && (m = /^\/carts\/(\d+)$/.exec(p))) {
      const ids = (await redis.smembers(`cart:${m[1]}`)).sort((a, b) => a - b);
      // BUG: one round trip per item; MGET takes them all at once
      const items = url.searchParams.get('batched') === '1'
        ? await redis.mget(ids.map((id) => `item:${id}`))
        : await ids.reduce(async (acc, id) => [...await acc, await redis.get(`item:${id}`)], []);
      return [200, { cart: Number(m[1]), items: items.map((v) => (v ? JSON.parse(v) : null)) }];
    }
    if (method === 'GET' && (m = /^\/users\/(\d+)$/.exec(p))) {
      // BUG: three helpers each load the user themselves
      const name = (await loadUser(m[1])).name;
      const plan = (await loadUser(m[1])).plan;
      const id = (await loadUser(m[1])).id;
      return [200, { id, name, plan, prefs: await redis.hgetall(`prefs:${m[1]}`) }];
    }
    if (method === 'GET' && (m = /^\/sessions\/(\d+)$/.exec(p))) {
      return [200, { user: await redis.hget(`session:${m[1]}`, 'user') }]; // WRONGTYPE: answers 500
    }
    if (method === 'POST' && p === '/labels') {
      const backoff = url.searchParams.get('backoff') === '1';
      for (let attempt = 1; ; attempt++) {
        try {
          return [201, { label: await redis.eval(INCR_SCRIPT, 1, 'labels:next') }];
        } catch (e) {
          // BUG (without ?backoff=1): the same delay before every attempt
          if (attempt === 4) return [503, { error: e.message }];
          await sleep(backoff ? 50 * 2 ** (attempt - 1) : 50);
        }
      }
    }
    if (method === 'GET' && (m = /^\/reports\/(\d+)$/.exec(p))) {
      const day = Number(m[1]);
      const ms = day === 8 ? 1600 : day === 7 ? 300 : 1;
      return [200, { day, sum: await redis.eval(SUM_SCRIPT, 1, `report:${day}`, Math.round(ms * perMs)) }];
    }
    if (method === 'GET' && (m = /^\/items\/(\d+)$/.exec(p))) {
      const v = await redis.get(`item:${m[1]}`);
      return v ? [200, JSON.parse(v)] : [404, { error: 'no such item' }];
    }
    if (method === 'POST' && p === '/checkout') {
      // Three order lines, an id each: three identical INCRs are work (each answer differs), not redundant.
      const lines = [];
      for (let i = 0; i < 3; i++) lines.push(await redis.incr('order-line:seq'));
      const res = await redis.multi().decrby('stock:1', 1).lpush('orders:recent', 'order-1').exec();
      return [201, { stock: res[0][1], lines }];
    }
    return undefined;
  });
  return { async stop() { await jobs; server.closeAllConnections(); server.close(); redis.disconnect(); worker.disconnect(); } };
}

const REDIS_CALLS = [
  ['GET', '/carts/7', 200], ['GET', '/carts/7?batched=1', 200],
  ['GET', '/users/42', 200],
  ['GET', '/items/1', 200], ['GET', '/items/2', 200], ['GET', '/items/1', 200],
  ['GET', '/sessions/9', 500], ['GET', '/sessions/9', 500],
  ['POST', '/labels', 503], ['GET', '/items/1', 200], ['POST', '/labels?backoff=1', 503],
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((d) => ['GET', `/reports/${d}`, 200]),
  ['POST', '/checkout', 201], ['POST', '/checkout', 201], ['GET', '/items/2', 200],
];

async function recordRedisStories(file) {
  const srv = await startRedis(REDIS);
  try {
    const perMs = await seedRedis();
    await capture(file, `tcp and host ${SHOP_API.host}`, async () => {
      const api = await shopApi(perMs);
      try {
        await drive(SHOP_API, REDIS_CALLS);
      } finally {
        await sleep(50);
        await api.stop();
      }
    });
  } finally {
    await srv.stop();
  }
}

/** A load capture with packets the kernel dropped is not whole: record it again (the machine may be busy). */
async function withoutDrops(record) {
  for (let i = 1; ; i++) {
    const { dropped } = await record();
    if (!dropped) return;
    if (i === 3) throw new Error(`the kernel dropped ${dropped} packets on each of 3 tries`);
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL story

async function ordersApi() {
  // mysql2 keeps but does not use its localAddress option: a stream factory opens the socket from the service's address.
  const db = await mysql.createConnection({ user: USER, password: PASSWORD, database: 'shop',
    stream: () => net.connect({ host: MYSQL.host, port: MYSQL.port, localAddress: ORDERS_API.host }) });
  const product = (id) => db.execute('SELECT id, name, price, stock FROM products WHERE id = ?', [id]).then(([rows]) => rows[0]);
  const server = await serve(ORDERS_API, async (method, url) => {
    const p = url.pathname;
    let m;
    if (method === 'GET' && (m = /^\/customers\/(\d+)\/orders$/.exec(p))) {
      const [orders] = await db.execute('SELECT id FROM orders WHERE customer_id = ? ORDER BY id', [Number(m[1])]);
      const ids = orders.map((o) => o.id);
      const items = new Map(ids.map((id) => [id, []]));
      if (url.searchParams.get('prepare') === 'each') {
        // BUG too, as drivers without a statement cache send it: prepare, execute and close per order
        // (unprepare: mysql2's close keeps the statement in its cache, and a cached id would be used again)
        const sql = 'SELECT sku, qty FROM order_items WHERE order_id = ?';
        db.unprepare(sql);
        for (const id of ids) {
          const stmt = await db.prepare(sql);
          items.set(id, (await stmt.execute([id]))[0]);
          db.unprepare(sql);
        }
      } else if (url.searchParams.get('batched') === '1') {
        const [rows] = await db.execute(`SELECT order_id, sku, qty FROM order_items WHERE order_id IN (${ids.map(() => '?').join(', ')})`, ids);
        for (const r of rows) items.get(r.order_id).push({ sku: r.sku, qty: r.qty });
      } else {
        // BUG: one round trip per order
        for (const id of ids) items.set(id, (await db.execute('SELECT sku, qty FROM order_items WHERE order_id = ?', [id]))[0]);
      }
      return [200, ids.map((id) => ({ id, items: items.get(id) }))];
    }
    if (method === 'GET' && (m = /^\/products\/(\d+)$/.exec(p))) {
      // BUG: price, stock and name each look the product up again
      const price = (await product(Number(m[1]))).price;
      const stock = (await product(Number(m[1]))).stock;
      const name = (await product(Number(m[1]))).name;
      return [200, { name, price, stock }];
    }
    if (method === 'GET' && p === '/search') {
      const name = url.searchParams.get('name') ?? '';
      if (url.searchParams.get('safe') === '1') return [200, (await db.execute('SELECT id, name FROM customers WHERE name = ?', [name]))[0]];
      // BUG: the name pasted into the SQL text (quotes doubled, as a hand-rolled escape would)
      return [200, (await db.query(`SELECT id, name FROM customers WHERE name = '${name.replace(/'/g, "''")}'`))[0]];
    }
    if (method === 'GET' && p === '/legacy/stats') {
      return [200, (await db.query('SELECT count(*) AS n FROM order_archive'))[0]]; // dropped last release: 1146
    }
    if (method === 'POST' && (m = /^\/imports\/(\d+)$/.exec(p))) {
      for (let attempt = 1; ; attempt++) {
        try {
          await db.execute('INSERT INTO orders (id, customer_id, total) VALUES (?, ?, ?)', [Number(m[1]), 1, '5.00']);
          return [201, { id: Number(m[1]) }];
        } catch (e) {
          // BUG: retries a duplicate key (1062), which no retry can fix, with the same delay each time
          if (attempt === 4) return [409, { error: e.message }];
          await sleep(50);
        }
      }
    }
    if (method === 'GET' && (m = /^\/reports\/(\d+)$/.exec(p))) {
      const day = Number(m[1]);
      const seconds = day === 8 ? 1.2 : day === 7 ? 0.3 : 0.001;
      return [200, (await db.execute('SELECT SLEEP(?) AS waited, ? AS day', [seconds, day]))[0]];
    }
    if (method === 'POST' && p === '/checkout') {
      await db.beginTransaction();
      await db.execute('UPDATE products SET stock = stock - 1 WHERE id = ?', [1]);
      await db.execute('INSERT INTO order_items (order_id, sku, qty) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE qty = qty + 1', [1, 1, 1]);
      await db.commit();
      return [201, { ok: true }];
    }
    return undefined;
  });
  return { async stop() { server.closeAllConnections(); server.close(); await db.end(); } };
}

const MYSQL_CALLS = [
  ['GET', '/customers/7/orders', 200], ['GET', '/customers/7/orders?batched=1', 200],
  ['GET', '/products/5', 200], ['GET', '/customers/8/orders?prepare=each', 200],
  ...['ada', 'brian', 'chen', "o'neil"].map((n) => ['GET', `/search?name=${encodeURIComponent(n)}`, 200]),
  ...['ada', 'brian', 'chen'].map((n) => ['GET', `/search?name=${n}&safe=1`, 200]),
  ['GET', '/legacy/stats', 500],
  ['POST', '/imports/1', 409],
  ...[1, 2, 3, 4, 5, 6, 7, 8].map((d) => ['GET', `/reports/${d}`, 200]),
  ['POST', '/checkout', 201], ['POST', '/checkout', 201],
];

async function recordMysqlStories(file) {
  const srv = await startMariadb({ ...MYSQL, seed: MYSQL_SEED });
  try {
    await capture(file, `tcp and host ${ORDERS_API.host}`, async () => {
      const api = await ordersApi();
      try {
        await drive(ORDERS_API, MYSQL_CALLS);
      } finally {
        await sleep(50);
        await api.stop();
      }
    });
  } finally {
    await srv.stop();
  }
}

async function recordMysqlSlap(file) {
  const srv = await startMariadb({ ...MYSQL, seed: MYSQL_SEED });
  try {
    await withoutDrops(() => capture(file, `tcp and host ${MYSQL.host} and port ${MYSQL.port}`, async () => {
      // Ordinary load: mysqlslap's own schema, 50 rows, then auto-generated primary-key reads, 4 clients.
      execFileSync('mysqlslap', ['--no-defaults', '--protocol=TCP', '-h', MYSQL.host, '-P', String(MYSQL.port), '-u', USER,
        `-p${PASSWORD}`, '--concurrency=4', '--iterations=1', '--number-of-queries=400', '--auto-generate-sql',
        '--auto-generate-sql-load-type=key', '--auto-generate-sql-add-autoincrement', '--auto-generate-sql-write-number=50'], { stdio: ['ignore', 'pipe', 'pipe'] });
    }));
  } finally {
    await srv.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// checks: what tshark (the oracle) shows

function tshark(file, port, proto, fields, filter = proto) {
  const out = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},${proto}`, '-Y', filter, '-T', 'fields',
    '-E', 'occurrence=a', '-E', 'aggregator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

function must(file, facts) {
  const bad = facts.filter(([, ok]) => !ok).map(([what]) => what);
  if (bad.length) throw new Error(`${file}: tshark does not show: ${bad.join(', ')}`);
  if (statSync(file).size >= 1 << 20) throw new Error(`${file}: ${statSync(file).size} bytes, over 1 MB`);
  console.log(`  tshark: ${facts.map(([what]) => what).join(', ')}`);
}

/** RESP bulk strings in the capture, in order: commands are arrays of them, so this shows command words and keys. */
function respStrings(file) {
  // tshark shows the values as hex; ioredis sends command names in lower case.
  return tshark(file, REDIS.port, 'resp', ['resp.bulk_string.value']).flatMap(([v]) => (v ? v.split('|') : []))
    .map((h) => Buffer.from(h, 'hex').toString('latin1'));
}

const CHECKS = {
  'redis-stories'(file) {
    const words = ` ${respStrings(file).join(' ').toUpperCase()} `;
    const errors = tshark(file, REDIS.port, 'resp', ['resp.error']).flat().join('|');
    const count = (re) => (words.match(re) ?? []).length;
    must(file, [
      ['GET item:1..12 (n-plus-one)', CART.every((id) => words.includes(` GET ITEM:${id} `))],
      ['MGET', count(/ MGET(?= )/g) === 1], ['GET user:42 x3', count(/ GET USER:42(?= )/g) === 3],
      ['WRONGTYPE x2', (errors.match(/WRONGTYPE/g) ?? []).length === 2],
      ['EVAL … labels:next x8', count(/ 1 LABELS:NEXT(?= )/g) === 8],
      ['MULTI/EXEC x2', count(/ MULTI(?= )/g) === 2 && count(/ EXEC(?= )/g) === 2], ['BRPOP x2', count(/ BRPOP JOBS:PENDING(?= )/g) === 2],
    ]);
  },
  'mysql-stories'(file) {
    const rows = tshark(file, MYSQL.port, 'mysql', ['mysql.command', 'mysql.query', 'mysql.error_code']);
    const queries = rows.map((r) => r[1]).filter(Boolean);
    const errs = rows.map((r) => r[2]).filter(Boolean);
    must(file, [
      ['prepares of order_items per order', queries.some((q) => /order_items WHERE order_id = \?/.test(q))],
      ['4 inlined searches', queries.filter((q) => /WHERE name = '/.test(q)).length === 4],
      ['ERR 1146', errs.filter((e) => e === '1146').length === 1], ['ERR 1062 x4', errs.filter((e) => e === '1062').length === 4],
      ['COM_STMT_EXECUTE', rows.filter((r) => r[0] === '23').length >= 30],
    ]);
  },
  'mysql-slap'(file) {
    const rows = tshark(file, MYSQL.port, 'mysql', ['mysql.command', 'mysql.query']);
    must(file, [['COM_QUERY x400+', rows.filter((r) => r[0] === '3').length >= 400], ['INSERT INTO t1', rows.some((r) => /INSERT INTO t1/.test(r[1] ?? ''))]]);
  },
};

const RECORDERS = { 'redis-stories': recordRedisStories, 'mysql-stories': recordMysqlStories, 'mysql-slap': recordMysqlSlap };

async function main() {
  requireTools('tcpdump', 'capinfos', 'tshark', 'redis-server', 'mariadbd', 'mariadb-install-db', 'mysql', 'mysqlslap');
  const args = process.argv.slice(2);
  const outDir = args.length && !RECORDERS[args[0]] ? args.shift() : 'pcaps/verify';
  const names = args.length ? args : Object.keys(RECORDERS);
  const unknown = names.filter((n) => !RECORDERS[n]);
  if (unknown.length) throw new Error(`unknown capture ${unknown.join(', ')} (captures: ${Object.keys(RECORDERS).join(', ')})`);
  for (const name of names) {
    const file = join(outDir, `${name}.pcap`);
    await RECORDERS[name](file);
    CHECKS[name](file);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record stories-cache-db: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
