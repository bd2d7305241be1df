// Records a large capture of real PostgreSQL traffic (pgbench) for the benchmarks (git-ignored: bench/.cache/).
//
//   node bench/record-pg.mjs [--min-mb 50] [--out bench/.cache/pgbench-50m.pcap]
//
// A throwaway PostgreSQL 15 cluster (scripts/record/postgres/cluster.mjs: initdb in a temp dir, trust
// auth, fsync off) listens on 127.0.0.1:18920; `pgbench -i -s 8` fills it over the Unix socket, outside
// the capture. Then tcpdump -s 0 records that port on lo while `pgbench -M extended -c 8 -j 2` runs the
// default TPC-B-like script (per transaction: BEGIN, 3 UPDATEs, a SELECT, an INSERT, END; every statement
// as Parse/Bind/Describe/Execute/Sync). The capture starts before pgbench connects (SSLRequest, startup
// and auth are inside) and is stopped as soon as the file reaches --min-mb (MiB): it ends mid-stream (the
// last transactions may be cut, connections are not closed). An existing file already at least that
// large is reused. tshark decodes it with: tshark -r FILE -d tcp.port==18920,pgsql -Y pgsql
// Needs root (tcpdump, initdb as postgres), tcpdump, capinfos (tshark package), postgresql 15 (pgbench).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { requireTools, startChild } from '../scripts/record/lib.mjs';
import { benchArgs, captureUntilSize, reuse, summary } from '../scripts/record/bench-capture.mjs';
import { createCluster, startServer, HOST, PGBIN } from '../scripts/record/postgres/cluster.mjs';

const PORT = 18920;
const SCALE = 8;
const CLIENTS = 8;
const THREADS = 2;
const { minMb, out } = benchArgs('bench/record-pg', process.argv.slice(2), { minMb: 50, prefix: 'pgbench' });

async function main() {
  if (reuse(out, minMb)) return;
  requireTools('tcpdump', 'capinfos', `${PGBIN}/pgbench`);
  if (process.getuid?.() !== 0) {
    console.error('bench/record-pg: must run as root (tcpdump on lo, initdb as the postgres user)');
    process.exit(2);
  }
  const cluster = createCluster();
  const server = await startServer(cluster, PORT);
  try {
    execFileSync(join(PGBIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE), '-h', cluster.dir, '-p', String(PORT), '-U', 'postgres', 'postgres'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = await captureUntilSize({
      out, minMb, filter: `tcp port ${PORT} and host ${HOST}`, watch: [['postgres', server]],
      startLoad: () => startChild(join(PGBIN, 'pgbench'), ['-h', HOST, '-p', String(PORT), '-U', 'postgres', '-M', 'extended',
        '-c', String(CLIENTS), '-j', String(THREADS), '-T', '900', '--random-seed=20250304', 'postgres']),
    });
    summary(out, r, `pgbench -M extended -c ${CLIENTS} -j ${THREADS}, scale ${SCALE}`);
  } finally {
    await server.stop('SIGINT', 10000);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record-pg: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
