// Records a large capture of real gRPC (grpc-js, h2c) traffic for the benchmarks (git-ignored: bench/.cache/).
//
//   node bench/record-grpc.mjs [--min-mb 50] [--out bench/.cache/grpc-50m.pcap]
//
// A grpc-js server (scripts/record/grpc/load-server.mjs, tapwire.demo.Orders from
// pcaps/grpc/shop.proto) listens on 127.0.0.1:18910; a load client process
// (scripts/record/grpc/load-client.mjs: 4 channels, 48 concurrent workers) runs a fixed mix of unary
// calls with 1–8 KiB messages (GetOrder, UpdateOrder) and server streams of 5–24 orders (ListOrders),
// while tcpdump -s 0 records that port on lo. Server and client are separate processes, so both cores
// are busy. The capture starts before the client connects (prefaces, SETTINGS and the HPACK state are
// all inside) and is stopped as soon as the file reaches --min-mb (MiB): it ends mid-stream (the last
// messages may be cut, connections are not closed). An existing file already at least that large is
// reused. Decode with: tshark -r FILE -d tcp.port==18910,http2 -Y grpc
// Needs root (tcpdump), tcpdump, capinfos (tshark package), npm ci (@grpc/grpc-js, @grpc/proto-loader).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools, startChild } from '../scripts/record/lib.mjs';
import { benchArgs, captureUntilSize, reuse, summary } from '../scripts/record/bench-capture.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const grpcDir = join(here, '..', 'scripts', 'record', 'grpc');
const PORT = 18910;
const { minMb, out } = benchArgs('bench/record-grpc', process.argv.slice(2), { minMb: 50, prefix: 'grpc' });

async function main() {
  if (reuse(out, minMb)) return;
  requireTools('tcpdump', 'capinfos');
  if (process.getuid?.() !== 0) console.error('bench/record-grpc: not root; tcpdump may fail to open lo');
  const server = startChild(process.execPath, [join(grpcDir, 'load-server.mjs'), '--port', String(PORT)], { ready: 'listening on' });
  try {
    await server.ready;
    const r = await captureUntilSize({
      out, minMb, filter: `tcp port ${PORT}`, watch: [['server', server]],
      startLoad: () => startChild(process.execPath, [join(grpcDir, 'load-client.mjs'), '--port', String(PORT), '--channels', '4',
        '--concurrency', '48', '--seconds', '900']),
    });
    summary(out, r, 'grpc-js: 4 channels, 48 concurrent workers');
  } finally {
    await server.stop('SIGTERM');
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record-grpc: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
