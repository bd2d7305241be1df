// Records the cache story of issue 19 (the seed's first story: a cache that never hits because its key
// holds a timestamp) from real servers on loopback, and the fix beside it, plus a redis-benchmark capture
// (ordinary Redis load, the cache-aside detector's stays-quiet case):
//
//   node scripts/record/cache-demo.mjs [OUT_DIR] [capture ...]    (default OUT_DIR: pcaps; all captures)
//
//   OUT_DIR/demo/cache.pcap         order-api with the bug: the cache key is `order:${id}:${Date.now()}`
//   OUT_DIR/demo/cache-fixed.pcap   the fix: the key is `order:${id}`
//   OUT_DIR/redis/redis-benchmark.pcap   redis-benchmark -q -n 2000 -r 1000 -t get,set (no service)
//
// Addresses (each has its own, like a pod):
//   driver      127.0.0.1 (client only)
//   order-api   127.0.0.60:8096 (node:http; its Redis and MariaDB connections also leave from 127.0.0.60)
//   Redis       127.0.0.61:18641 (Debian's redis-server, `--save '' --appendonly no`, a temp dir)
//   MariaDB     127.0.0.62:18541 (mariadb-install-db into a temp dir, then mariadbd, as scripts/record/mysql.mjs does;
//               database `shop`, table `orders` with ids 1–10, user `app`)
// order-api serves GET /orders/:id with cache-aside through ioredis and mysql2: GET the key; on a miss
// SELECT the order (mysql2 `execute`: a prepared statement) and SET the key with EX 60. Both builds are
// the same code except the key. The driver makes 40 requests, one at a time over one keep-alive connection,
// 10 ms apart: ids 1–10, then 30 more drawn from 1–10 by a fixed sequence, so the fixed build hits 30 of 40.
// The capture (tcpdump on lo, `tcp and host 127.0.0.60`) holds the service's inbound and outbound traffic;
// the servers start before it, the service inside it (its Redis and MariaDB logins are in the capture).
// Keys, ids and the order of requests are fixed; timestamps, ports and timing are not.
//
// scripts/record-pcaps.sh runs this as the `cache` group. Re-record with:
//   node scripts/record/cache-demo.mjs                 (all three)
//   node scripts/record/cache-demo.mjs pcaps cache     (one: cache, cache-fixed or redis-benchmark)
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
const API = { host: '127.0.0.60', port: 8096 };
const REDIS = { host: '127.0.0.61', port: 18641 };
const MYSQL = { host: '127.0.0.62', port: 18541 };
const USER = 'app';
const PASSWORD = 'app-secret';
const IDS = 10;
/** 40 requests: every id once (all misses in both builds), then 30 repeats in a fixed order. */
const REQUESTS = [...Array.from({ length: IDS }, (_, i) => i + 1), ...Array.from({ length: 30 }, (_, i) => ((i * 7 + 3) % IDS) + 1)];

// ---------------------------------------------------------------------------------------------
// servers

const MYSQL_SEED = `
CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY, customer VARCHAR(40) NOT NULL, total DECIMAL(10,2));
INSERT INTO shop.orders VALUES ${Array.from({ length: IDS }, (_, i) => `(${i + 1}, 'customer-${i + 1}', ${(i + 1) * 10}.50)`).join(', ')};
CREATE USER '${USER}'@'127.0.0.%' IDENTIFIED BY '${PASSWORD}';
GRANT ALL ON shop.* TO '${USER}'@'127.0.0.%';
`;

// ---------------------------------------------------------------------------------------------
// order-api

const FromServiceAddress = fromAddress(API.host);

/** The service. `fixed` is the only difference between the builds: what the cache key holds. */
async function orderApi(fixed) {
  const redis = new Redis({ host: REDIS.host, port: REDIS.port, Connector: FromServiceAddress, maxRetriesPerRequest: 0 });
  await once(redis, 'ready');
  // mysql2 keeps but does not use its localAddress option: a stream factory opens the socket from the service's address.
  const db = await mysql.createConnection({ user: USER, password: PASSWORD, database: 'shop',
    stream: () => net.connect({ host: MYSQL.host, port: MYSQL.port, localAddress: API.host }) });
  const server = http.createServer(async (req, res) => {
    const m = /^\/orders\/(\d+)$/.exec(req.url ?? '');
    let status = 200, body;
    try {
      if (req.method !== 'GET' || !m) {
        status = 404;
        body = JSON.stringify({ error: 'not found' });
      } else {
        const id = Number(m[1]);
        // THE BUG: a timestamp in the key makes every key new, so no read ever finds what was written.
        const key = fixed ? `order:${id}` : `order:${id}:${Date.now()}`;
        body = await redis.get(key);
        if (body === null) {
          const [rows] = await db.execute('SELECT id, customer, total FROM orders WHERE id = ?', [id]);
          body = JSON.stringify(rows[0] ?? null);
          await redis.set(key, body, 'EX', 60);
        }
      }
    } catch (e) {
      status = 500;
      body = JSON.stringify({ error: String(e.message ?? e) });
    }
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: API.host, port: API.port, exclusive: true }, resolve);
  });
  return {
    async stop() {
      server.closeAllConnections();
      server.close();
      redis.disconnect();
      await db.end();
    },
  };
}

/** The driver: GET /orders/:id for each id of REQUESTS, from 127.0.0.1, over one keep-alive connection. */
async function drive() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (const id of REQUESTS) {
      const req = http.request({ host: API.host, port: API.port, localAddress: DRIVER, path: `/orders/${id}`, agent });
      req.end();
      const [res] = await once(req, 'response');
      let text = '';
      for await (const c of res) text += c;
      if (res.statusCode !== 200 || JSON.parse(text)?.id !== id) throw new Error(`GET /orders/${id} -> ${res.statusCode}: ${text}`);
      await sleep(10);
    }
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// captures

async function recordDemo(file, fixed) {
  const rs = await startRedis(REDIS);
  try {
    const ms = await startMariadb({ ...MYSQL, seed: MYSQL_SEED });
    try {
      await capture(file, `tcp and host ${API.host}`, async () => {
        const api = await orderApi(fixed);
        try {
          await drive();
        } finally {
          await sleep(50);
          await api.stop();
        }
      });
    } finally {
      await ms.stop();
    }
  } finally {
    await rs.stop();
  }
}

/** Ordinary load with no service: SETs of random keys key:000000000000…key:000000000999, then GETs of them. */
async function recordBenchmark(file) {
  const port = REDIS.port + 1;
  const rs = await startRedis({ host: REDIS.host, port });
  try {
    for (let i = 1; ; i++) {
      const { dropped } = await capture(file, `tcp and host ${REDIS.host} and port ${port}`, async () => {
        execFileSync('redis-benchmark', ['-h', REDIS.host, '-p', String(port), '-q', '-n', '2000', '-r', '1000', '-t', 'get,set'],
          { stdio: ['ignore', 'pipe', 'pipe'] });
      });
      if (!dropped) break;
      // A load capture with packets the kernel dropped is not whole: record it again (the machine may be busy).
      if (i === 3) throw new Error(`the kernel dropped ${dropped} packets on each of 3 tries`);
    }
  } finally {
    await rs.stop();
  }
}

const RECORDERS = {
  cache: (out) => recordDemo(join(out, 'demo', 'cache.pcap'), false),
  'cache-fixed': (out) => recordDemo(join(out, 'demo', 'cache-fixed.pcap'), true),
  'redis-benchmark': (out) => recordBenchmark(join(out, 'redis', 'redis-benchmark.pcap')),
};
const FILES = { cache: 'demo/cache.pcap', 'cache-fixed': 'demo/cache-fixed.pcap', 'redis-benchmark': 'redis/redis-benchmark.pcap' };

async function main() {
  requireTools('tcpdump', 'capinfos', 'redis-server', 'redis-benchmark', 'mariadbd', 'mariadb-install-db', 'mysql');
  const args = process.argv.slice(2);
  const out = args.length && !RECORDERS[args[0]] ? args.shift() : 'pcaps';
  const names = args.length ? args : Object.keys(RECORDERS);
  const unknown = names.filter((n) => !RECORDERS[n]);
  if (unknown.length) throw new Error(`unknown capture ${unknown.join(', ')} (captures: ${Object.keys(RECORDERS).join(', ')})`);
  for (const name of names) {
    await RECORDERS[name](out);
    const size = statSync(join(out, FILES[name])).size;
    if (size >= 1 << 20) throw new Error(`${FILES[name]} is ${size} bytes: keep fixtures under 1 MB`);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record cache-demo: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
