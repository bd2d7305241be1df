// Records a large capture of real HTTP/1.1 traffic for the benchmarks (git-ignored: bench/.cache/).
//
//   node bench/record.mjs http1 [--min-mb 100] [--out bench/.cache/http1-100m.pcap]
//   node bench/record.mjs http1 --min-mb 1024 --out bench/.cache/http1-1g.pcap     (1 GB RSS test)
//   node bench/record.mjs http1-small        (every response ~300 B: the packet-rate-bound case)
//
// wrk (keep-alive, 2 threads, 16 connections, bench/servers/mix.lua) loads a node:http server
// (bench/servers/http1.mjs) on 127.0.0.1:18900 while tcpdump -s 0 records that port on lo. The file
// size is polled and tcpdump is stopped as soon as the file reaches --min-mb (MiB); the capture
// therefore ends mid-stream (the last response may be cut, connections are not closed) and starts
// with wrk's connection handshakes. An existing file already at least that large is reused.
// Needs root (tcpdump), wrk, tcpdump, capinfos (tshark package).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools, startChild } from '../scripts/record/lib.mjs';
import { benchArgs, captureUntilSize, reuse, summary } from '../scripts/record/bench-capture.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PORT = 18900;
const KINDS = ['http1', 'http1-small'];

const [kind, ...rest] = process.argv.slice(2);
if (!KINDS.includes(kind)) {
  console.error(`bench/record: ${kind ? `unknown capture kind '${kind}'` : 'missing capture kind'} (supported: ${KINDS.join(', ')})`);
  process.exit(2);
}
const { minMb, out } = benchArgs('bench/record', rest, { minMb: 100, prefix: kind, usage: 'http1|http1-small ' });

async function main() {
  if (reuse(out, minMb)) return;
  requireTools('tcpdump', 'wrk', 'capinfos');
  if (process.getuid?.() !== 0) console.error('bench/record: not root; tcpdump may fail to open lo');
  const server = startChild(process.execPath, [join(here, 'servers/http1.mjs'), '--port', String(PORT)], { ready: 'listening on' });
  try {
    await server.ready;
    const script = join(here, 'servers/mix.lua');
    const mixArgs = kind === 'http1-small' ? ['--', 'small'] : [];
    const r = await captureUntilSize({
      out, minMb, filter: `tcp port ${PORT}`, watch: [['server', server]],
      startLoad: () => startChild('wrk', ['-t2', '-c16', '-d900s', '-s', script, `http://127.0.0.1:${PORT}/`, ...mixArgs]),
    });
    const reqs = /(\d+) requests in/.exec(r.loadOutput)?.[1];
    summary(out, r, reqs ? `wrk: ${reqs} requests` : '');
  } finally {
    await server.stop('SIGTERM');
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
