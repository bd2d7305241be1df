// Records pcaps/demo/demo.pcap (buggy services) and pcaps/demo/demo-fixed.pcap (fixed services).
//
//   node scripts/record/demo.mjs [OUT_DIR]          (default OUT_DIR: pcaps/demo)
//
// Needs PostgreSQL listening on 127.0.0.4:$DEMO_PG_PORT (default 5432) with database `shop` seeded
// from scripts/record/demo/seed.sql: scripts/record-pcaps.sh starts such a throwaway cluster.
//
// Addresses (each service has its own, like a pod):
//   driver           127.0.0.1 (client only)
//   order-service    127.0.0.2:8080   (its outgoing connections also leave from 127.0.0.2)
//   payment-service  127.0.0.3:8081
//   PostgreSQL       127.0.0.4:5432
// The services start before tcpdump; order-service opens its database connection lazily, so the
// PostgreSQL startup/authentication exchange is inside the capture. The capture stops after the
// driver is done, before the services are stopped: their idle connections to PostgreSQL and to
// payment-service are still open at the end of the capture, as in a capture of a live pod.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, startChild, requireTools } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PG_PORT = Number(process.env.DEMO_PG_PORT ?? 5432);
const FILTER = 'tcp and ((host 127.0.0.2 and port 8080) or (host 127.0.0.3 and port 8081)'
  + ` or (host 127.0.0.4 and port ${PG_PORT}))`;

async function record(file, fixed) {
  const env = { ...process.env, DEMO_PG_PORT: String(PG_PORT) };
  const flag = fixed ? ['--fixed'] : [];
  const payments = startChild(process.execPath, [join(here, 'demo/payment-service.mjs')], { ready: 'listening on', spawn: { env } });
  const orders = startChild(process.execPath, [join(here, 'demo/order-service.mjs'), ...flag], { ready: 'listening on', spawn: { env } });
  try {
    await Promise.all([payments.ready, orders.ready]);
    await capture(file, FILTER, async () => {
      const driver = startChild(process.execPath, [join(here, 'demo/driver.mjs')], { spawn: { env } });
      const { code } = await driver.exited;
      if (code !== 0) throw new Error(`driver failed (${code}):\n${driver.output()}\norder-service:\n${orders.output()}`);
    });
  } finally {
    await orders.stop('SIGTERM');
    await payments.stop('SIGTERM');
  }
}

async function main() {
  requireTools('tcpdump', 'capinfos');
  const outDir = process.argv[2] ?? 'pcaps/demo';
  await record(join(outDir, 'demo.pcap'), false);
  await record(join(outDir, 'demo-fixed.pcap'), true);
}

main().then(() => process.exit(0), (e) => {
  console.error(`record demo: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
