// Records a large capture of real gRPC (grpc-js, h2c) traffic for the benchmarks (git-ignored: bench/.cache/).
//
//   node bench/record-grpc.mjs [--min-mb 50] [--out bench/.cache/grpc-50m.pcap]
//
// A grpc-js server (scripts/record/grpc/load-server.mjs, tapwire.demo.Orders from
// scripts/record/grpc/protos/shop.proto) listens on 127.0.0.1:18910; a load client process
// (scripts/record/grpc/load-client.mjs: 4 channels, 48 concurrent workers) runs a fixed mix of unary
// calls with 1–8 KiB messages (GetOrder, UpdateOrder) and server streams of 5–24 orders (ListOrders),
// while tcpdump -s 0 records that port on lo. Server and client are separate processes, so both cores
// are busy. The capture starts before the client connects (prefaces, SETTINGS and the HPACK state are
// all inside) and is stopped as soon as the file reaches --min-mb (MiB): it ends mid-stream (the last
// messages may be cut, connections are not closed). An existing file already at least that large is
// reused. Decode with: tshark -r FILE -d tcp.port==18910,http2 -Y grpc
// Needs root (tcpdump), tcpdump, capinfos (tshark package), npm ci (@grpc/grpc-js, @grpc/proto-loader).
import { existsSync, statSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, requireTools, packetCount, sleep } from '../scripts/record/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const grpcDir = join(here, '..', 'scripts', 'record', 'grpc');
const PORT = 18910;
const MAX_SECONDS = 900; // give up if the size is not reached by then

function usage(msg) {
  if (msg) console.error(`bench/record-grpc: ${msg}`);
  console.error('usage: node bench/record-grpc.mjs [--min-mb N] [--out FILE]');
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
  opts.out ??= join('bench', '.cache', `grpc-${opts.minMb % 1024 === 0 ? `${opts.minMb / 1024}g` : `${opts.minMb}m`}.pcap`);
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
  requireTools('tcpdump', 'capinfos');
  if (process.getuid?.() !== 0) console.error('bench/record-grpc: not root; tcpdump may fail to open lo');
  mkdirSync(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  rmSync(partial, { force: true });
  const t0 = Date.now();

  const server = startChild(process.execPath, [join(grpcDir, 'load-server.mjs'), '--port', String(PORT)], { ready: 'listening on' });
  let tcpdump;
  let load;
  try {
    await server.ready;
    // as bench/record.mjs: no -U and no --immediate-mode (block-buffered TPACKET_V3 keeps up on lo),
    // a 256 MiB kernel ring (-B) against bursts; the file is polled, not flushed.
    const tdArgs = ['-i', 'lo', '-s', '0', '-B', '262144', '-w', partial];
    if (process.getuid?.() === 0) tdArgs.push('-Z', 'root');
    tdArgs.push(`tcp port ${PORT}`);
    tcpdump = startChild('tcpdump', tdArgs, { ready: 'listening on' });
    await tcpdump.ready;
    load = startChild(process.execPath, [join(grpcDir, 'load-client.mjs'), '--port', String(PORT), '--channels', '4',
      '--concurrency', '48', '--seconds', String(MAX_SECONDS)]);
    let size = 0;
    for (;;) {
      await sleep(50);
      size = existsSync(partial) ? statSync(partial).size : 0;
      if (size >= minBytes) break;
      if (load.child.exitCode !== null) throw new Error(`load client exited early:\n${load.output()}`);
      if (server.child.exitCode !== null) throw new Error(`server exited early:\n${server.output()}`);
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
    if (load) await load.stop('SIGTERM', 5000);
    await server.stop('SIGTERM');
  }

  renameSync(partial, out);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const td = tcpdump.output();
  const captured = Number(/(\d+) packets? captured/.exec(td)?.[1] ?? NaN);
  const dropped = Number(/(\d+) packets? dropped by kernel/.exec(td)?.[1] ?? 0);
  const calls = /calls \d+, errors \d+, messages \d+/.exec(load.output())?.[0];
  if (dropped) console.log(`WARNING: tcpdump: ${dropped} packets dropped by kernel`);
  console.log(`${out}: ${mb(statSync(out).size)} (${statSync(out).size} bytes), ${captured} packets, `
    + `${dropped} dropped by kernel, recorded in ${seconds} s${calls ? ` (load client: ${calls})` : ''}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record-grpc: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
