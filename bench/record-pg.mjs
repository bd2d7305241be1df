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
import { existsSync, statSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startChild, requireTools, packetCount, sleep } from '../scripts/record/lib.mjs';
import { createCluster, startServer, HOST, PGBIN } from '../scripts/record/postgres/cluster.mjs';

const PORT = 18920;
const SCALE = 8;
const CLIENTS = 8;
const THREADS = 2;
const MAX_SECONDS = 900; // give up if the size is not reached by then

function usage(msg) {
  if (msg) console.error(`bench/record-pg: ${msg}`);
  console.error('usage: node bench/record-pg.mjs [--min-mb N] [--out FILE]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { minMb: 50, out: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--min-mb') opts.minMb = Number(argv[++i]);
    else if (argv[i] === '--out') opts.out = argv[++i];
    else usage(`unknown option ${argv[i]}`);
  }
  if (!(opts.minMb > 0)) usage('--min-mb must be a positive number');
  opts.out ??= join('bench', '.cache', `pgbench-${opts.minMb % 1024 === 0 ? `${opts.minMb / 1024}g` : `${opts.minMb}m`}.pcap`);
  return opts;
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function main() {
  const { minMb, out } = parseArgs(process.argv.slice(2));
  const minBytes = minMb * 1048576;
  if (existsSync(out) && statSync(out).size >= minBytes) {
    console.log(`reusing ${out} (${mb(statSync(out).size)} >= ${minMb} MiB, ${packetCount(out)} packets)`);
    return;
  }
  requireTools('tcpdump', 'capinfos', `${PGBIN}/pgbench`);
  if (process.getuid?.() !== 0) usage('must run as root (tcpdump on lo, initdb as the postgres user)');
  mkdirSync(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  rmSync(partial, { force: true });
  const t0 = Date.now();

  const cluster = createCluster();
  const server = await startServer(cluster, PORT);
  let tcpdump;
  let load;
  try {
    execFileSync(join(PGBIN, 'pgbench'), ['-i', '-q', '-s', String(SCALE), '-h', cluster.dir, '-p', String(PORT), '-U', 'postgres', 'postgres'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    // as bench/record.mjs: no -U and no --immediate-mode (block-buffered TPACKET_V3 keeps up on lo),
    // a 256 MiB kernel ring (-B) against bursts; the file is polled, not flushed.
    const tdArgs = ['-i', 'lo', '-s', '0', '-B', '262144', '-w', partial, '-Z', 'root', `tcp port ${PORT} and host ${HOST}`];
    tcpdump = startChild('tcpdump', tdArgs, { ready: 'listening on' });
    await tcpdump.ready;
    load = startChild(join(PGBIN, 'pgbench'), ['-h', HOST, '-p', String(PORT), '-U', 'postgres', '-M', 'extended', '-c', String(CLIENTS),
      '-j', String(THREADS), '-T', String(MAX_SECONDS), '--random-seed=20250304', 'postgres']);
    let size = 0;
    for (;;) {
      await sleep(50);
      size = existsSync(partial) ? statSync(partial).size : 0;
      if (size >= minBytes) break;
      if (load.child.exitCode !== null) throw new Error(`pgbench exited early:\n${load.output()}`);
      if (server.child.exitCode !== null) throw new Error(`postgres exited early:\n${server.output()}`);
      if (tcpdump.child.exitCode !== null) throw new Error(`tcpdump exited early:\n${tcpdump.output()}`);
      if (Date.now() - t0 > MAX_SECONDS * 1000) throw new Error(`only ${mb(size)} after ${MAX_SECONDS} s`);
    }
    const { code, signal } = await tcpdump.stop('SIGINT');
    if (code !== 0) throw new Error(`tcpdump exited with ${code ?? signal}:\n${tcpdump.output()}`);
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  } finally {
    if (tcpdump) await tcpdump.stop('SIGINT');
    if (load) await load.stop('SIGINT', 5000);
    await server.stop('SIGINT', 10000);
  }

  renameSync(partial, out);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const td = tcpdump.output();
  const captured = Number(/(\d+) packets? captured/.exec(td)?.[1] ?? NaN);
  const dropped = Number(/(\d+) packets? dropped by kernel/.exec(td)?.[1] ?? 0);
  if (dropped) console.log(`WARNING: tcpdump: ${dropped} packets dropped by kernel`);
  console.log(`${out}: ${mb(statSync(out).size)} (${statSync(out).size} bytes), ${captured} packets, `
    + `${dropped} dropped by kernel, recorded in ${seconds} s (pgbench -M extended -c ${CLIENTS} -j ${THREADS}, scale ${SCALE})`);
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record-pg: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
