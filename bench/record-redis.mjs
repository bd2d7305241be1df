// Records a large capture of real Redis traffic (redis-benchmark) for the benchmarks (git-ignored: bench/.cache/).
//
//   node bench/record-redis.mjs [--min-mb 50] [--out bench/.cache/redis-50m.pcap]
//
// A throwaway redis-server (Debian's; `--save '' --appendonly no`, its dir a temp dir removed at exit)
// listens on 127.0.0.1:18930. tcpdump -s 0 records that port on lo while `redis-benchmark -l` (loop: the
// test list again and again until stopped) runs SET, GET, INCR, LPUSH, LPOP, HSET and MSET (10 keys; redis-benchmark has no MGET test)
// with 16 commands pipelined per write (-P 16), 100-byte values (-d 100), keys drawn from 100 000
// (-r 100000, so GETs both hit and miss) and 8 connections (-c 8). Every test opens its connections
// anew, so handshakes and redis-benchmark's own CONFIG GET are inside. The capture is stopped as soon as
// the file reaches --min-mb (MiB): it ends mid-stream (the last pipeline may be cut). An existing file
// already at least that large is reused. tshark decodes it with: tshark -r FILE -d tcp.port==18930,resp -Y resp
// Needs root (tcpdump), tcpdump, capinfos (tshark package), redis-server and redis-benchmark (redis-tools).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTools, startChild, waitPort } from '../scripts/record/lib.mjs';
import { benchArgs, captureUntilSize, reuse, summary } from '../scripts/record/bench-capture.mjs';

const HOST = '127.0.0.1';
const PORT = 18930;
const TESTS = 'set,get,incr,lpush,lpop,hset,mset';
const LOAD = ['-h', HOST, '-p', String(PORT), '-c', '8', '-P', '16', '-d', '100', '-r', '100000', '-n', '10000', '-t', TESTS, '-l', '-q'];
const { minMb, out } = benchArgs('bench/record-redis', process.argv.slice(2), { minMb: 50, prefix: 'redis' });

async function main() {
  if (reuse(out, minMb)) return;
  requireTools('tcpdump', 'capinfos', 'redis-server', 'redis-benchmark');
  if (process.getuid?.() !== 0) {
    console.error('bench/record-redis: must run as root (tcpdump on lo)');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-redis-'));
  const server = startChild('redis-server', ['--port', String(PORT), '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir, '--daemonize', 'no'], { ready: 'Ready to accept connections' });
  try {
    await server.ready;
    await waitPort(PORT, HOST);
    const r = await captureUntilSize({
      out, minMb, filter: `tcp port ${PORT} and host ${HOST}`, watch: [['redis-server', server]],
      startLoad: () => startChild('redis-benchmark', LOAD),
    });
    summary(out, r, `redis-benchmark ${LOAD.slice(4).join(' ')}`);
  } finally {
    await server.stop('SIGTERM', 5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record-redis: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
