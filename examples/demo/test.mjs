// The demo shop's test suite: the command the run-and-verify loop brackets.
//
//   tapwire run --spec examples/specs/demo.yaml -- node examples/demo/test.mjs            (buggy)
//   tapwire run --spec examples/specs/demo.yaml -- node examples/demo/test.mjs --fixed    (fixed)
//
// It starts what the demo captures were recorded from (scripts/record/demo/): a throwaway
// PostgreSQL on 127.0.0.4, payment-service on 127.0.0.3:8081 and order-service on 127.0.0.2:8080,
// then runs the driver's requests and exits with the driver's status. Both versions pass: the
// three bugs (an N+1 cache that never caches, a retry without backoff, the customer's token
// forwarded to payment-service) are invisible to the test and plain on the wire.
//
// Needs root (initdb runs as the postgres user) and PostgreSQL 15 (apt-get install postgresql).
import { appendFileSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild } from '../../scripts/record/lib.mjs';
import { createCluster, psqlSocket, startServer } from '../../scripts/record/postgres/cluster.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const demo = join(here, '../../scripts/record/demo');
const fixed = process.argv.includes('--fixed');
// Not 5432: a system PostgreSQL may hold it. The services read the port from DEMO_PG_PORT.
const port = Number(process.env.DEMO_PG_PORT ?? 15000 + (process.pid % 5000));
const env = { ...process.env, DEMO_PG_PORT: String(port) };

const cluster = createCluster({ hba: ['host all all 127.0.0.0/8 trust'] });
// The order service reaches its database at 127.0.0.4, like a pod with its own address.
appendFileSync(join(cluster.data, 'postgresql.conf'), "listen_addresses = '127.0.0.4'\n");
const db = await startServer(cluster, port);
const services = [];
let code = 1;
try {
  // Seeded over the Unix socket, so the seeding is not part of the traffic under test.
  psqlSocket(cluster, port, 'postgres', 'CREATE DATABASE shop');
  psqlSocket(cluster, port, 'shop', readFileSync(join(demo, 'seed.sql'), 'utf8'));
  const payments = startChild(process.execPath, [join(demo, 'payment-service.mjs')], { ready: 'listening on', spawn: { env } });
  services.push(payments);
  const orders = startChild(process.execPath, [join(demo, 'order-service.mjs'), ...(fixed ? ['--fixed'] : [])], { ready: 'listening on', spawn: { env } });
  services.push(orders);
  await Promise.all([payments.ready, orders.ready]);
  const driver = startChild(process.execPath, [join(demo, 'driver.mjs')], { spawn: { env }, echo: true });
  code = (await driver.exited).code ?? 1;
  console.log(code === 0 ? `demo test: PASS (${fixed ? 'fixed' : 'buggy'} services)` : `demo test: FAIL (driver exit ${code})`);
} finally {
  for (const s of services.reverse()) await s.stop('SIGTERM');
  await db.stop('SIGINT');
}
process.exit(code);
