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
import { existsSync, statSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, requireTools, packetCount, sleep } from '../scripts/record/lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PORT = 18900;
const MAX_SECONDS = 900; // give up if the size is not reached by then

function usage(msg) {
  if (msg) console.error(`bench/record: ${msg}`);
  console.error('usage: node bench/record.mjs http1|http1-small [--min-mb N] [--out FILE]');
  process.exit(2);
}

function parseArgs(argv) {
  const [kind, ...rest] = argv;
  if (kind !== 'http1' && kind !== 'http1-small') usage(kind ? `unknown capture kind '${kind}' (supported: http1, http1-small)` : 'missing capture kind');
  const opts = { kind, minMb: 100, out: null };
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--min-mb') opts.minMb = Number(rest[++i]);
    else if (rest[i] === '--out') opts.out = rest[++i];
    else usage(`unknown option ${rest[i]}`);
  }
  if (!(opts.minMb > 0)) usage('--min-mb must be a positive number');
  opts.out ??= join('bench', '.cache', `${kind}-${opts.minMb % 1024 === 0 ? `${opts.minMb / 1024}g` : `${opts.minMb}m`}.pcap`);
  return opts;
}

const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function main() {
  const { kind, minMb, out } = parseArgs(process.argv.slice(2));
  const minBytes = minMb * 1048576;
  if (existsSync(out) && statSync(out).size >= minBytes) {
    console.log(`reusing ${out} (${mb(statSync(out).size)} >= ${minMb} MiB, ${packetCount(out)} packets)`);
    return;
  }
  requireTools('tcpdump', 'wrk', 'capinfos');
  if (process.getuid?.() !== 0) console.error('bench/record: not root; tcpdump may fail to open lo');
  mkdirSync(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  rmSync(partial, { force: true });
  const t0 = Date.now();

  const server = startChild(process.execPath, [join(here, 'servers/http1.mjs'), '--port', String(PORT)], { ready: 'listening on' });
  let tcpdump;
  let wrk;
  try {
    await server.ready;
    // No -U and no --immediate-mode here: block-buffered TPACKET_V3 keeps up with wrk on lo; -B
    // gives the kernel ring 256 MiB so bursts are not dropped. The file is polled, not flushed.
    const tdArgs = ['-i', 'lo', '-s', '0', '-B', '262144', '-w', partial];
    if (process.getuid?.() === 0) tdArgs.push('-Z', 'root');
    tdArgs.push(`tcp port ${PORT}`);
    tcpdump = startChild('tcpdump', tdArgs, { ready: 'listening on' });
    await tcpdump.ready;
    wrk = startChild('wrk', ['-t2', '-c16', `-d${MAX_SECONDS}s`, '-s', join(here, kind === 'http1-small' ? 'servers/small.lua' : 'servers/mix.lua'), `http://127.0.0.1:${PORT}/`]);
    let size = 0;
    for (;;) {
      await sleep(50);
      size = existsSync(partial) ? statSync(partial).size : 0;
      if (size >= minBytes) break;
      if (wrk.child.exitCode !== null) throw new Error(`wrk exited early:\n${wrk.output()}`);
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
    if (wrk) await wrk.stop('SIGINT');
    await server.stop('SIGTERM');
  }

  renameSync(partial, out);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const td = tcpdump.output();
  const captured = Number(/(\d+) packets? captured/.exec(td)?.[1] ?? NaN);
  const dropped = Number(/(\d+) packets? dropped by kernel/.exec(td)?.[1] ?? 0);
  const reqs = /(\d+) requests in/.exec(wrk.output())?.[1];
  if (dropped) console.log(`WARNING: tcpdump: ${dropped} packets dropped by kernel`);
  console.log(`${out}: ${mb(statSync(out).size)} (${statSync(out).size} bytes), ${captured} packets, `
    + `${dropped} dropped by kernel, recorded in ${seconds} s${reqs ? ` (wrk: ${reqs} requests)` : ''}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(`bench/record: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
