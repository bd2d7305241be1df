// Shared by the bench recorders (bench/record*.mjs): argument parsing, reuse of a cached file,
// and "tcpdump records a port on lo until the file is big enough, while a load runs".
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packetCount, sleep, startChild } from './lib.mjs';

export const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** `[--min-mb N] [--out FILE]`; the default file is bench/.cache/<prefix>-<N>m.pcap. */
export function benchArgs(name, argv, { minMb, prefix, usage = '' }) {
  const fail = (msg) => {
    console.error(`${name}: ${msg}`);
    console.error(`usage: node ${name}.mjs ${usage}[--min-mb N] [--out FILE]`);
    process.exit(2);
  };
  const opts = { minMb, out: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--min-mb') opts.minMb = Number(argv[++i]);
    else if (argv[i] === '--out') opts.out = argv[++i];
    else fail(`unknown option ${argv[i]}`);
  }
  if (!(opts.minMb > 0)) fail('--min-mb must be a positive number');
  opts.out ??= join('bench', '.cache', `${prefix}-${opts.minMb % 1024 === 0 ? `${opts.minMb / 1024}g` : `${opts.minMb}m`}.pcap`);
  return opts;
}

/** True (and says so) when `out` already holds at least minMb. */
export function reuse(out, minMb) {
  if (!existsSync(out) || statSync(out).size < minMb * 1048576) return false;
  console.log(`reusing ${out} (${mib(statSync(out).size)} >= ${minMb} MiB, ${packetCount(out)} packets)`);
  return true;
}

/**
 * tcpdump records `filter` on lo into `out` while `startLoad()` runs, and stops as soon as the
 * file reaches minMb (MiB). No -U and no --immediate-mode: block-buffered TPACKET_V3 keeps up on lo,
 * and a 256 MiB kernel ring (-B) absorbs bursts; the file is polled, not flushed. The capture ends
 * mid-stream. Children in `watch` (servers) that exit early fail the recording.
 */
export async function captureUntilSize({ out, minMb, filter, startLoad, watch = [], maxSeconds = 900 }) {
  const minBytes = minMb * 1048576;
  mkdirSync(dirname(out), { recursive: true });
  const partial = `${out}.partial`;
  rmSync(partial, { force: true });
  const t0 = Date.now();
  let tcpdump;
  let load;
  try {
    const args = ['-i', 'lo', '-s', '0', '-B', '262144', '-w', partial];
    if (process.getuid?.() === 0) args.push('-Z', 'root');
    tcpdump = startChild('tcpdump', [...args, filter], { ready: 'listening on' });
    await tcpdump.ready;
    load = startLoad();
    for (;;) {
      await sleep(50);
      const size = existsSync(partial) ? statSync(partial).size : 0;
      if (size >= minBytes) break;
      for (const [what, c] of [['load', load], ['tcpdump', tcpdump], ...watch]) {
        if (c.child.exitCode !== null) throw new Error(`${what} exited early:\n${c.output()}`);
      }
      if (Date.now() - t0 > maxSeconds * 1000) throw new Error(`only ${mib(size)} after ${maxSeconds} s`);
    }
    const { code, signal } = await tcpdump.stop('SIGINT');
    if (code !== 0) throw new Error(`tcpdump exited with ${code ?? signal}:\n${tcpdump.output()}`);
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  } finally {
    if (tcpdump) await tcpdump.stop('SIGINT');
    if (load) await load.stop('SIGINT', 5000);
  }
  renameSync(partial, out);
  const td = tcpdump.output();
  const result = {
    seconds: (Date.now() - t0) / 1000,
    size: statSync(out).size,
    captured: Number(/(\d+) packets? captured/.exec(td)?.[1] ?? NaN),
    dropped: Number(/(\d+) packets? dropped by kernel/.exec(td)?.[1] ?? 0),
    loadOutput: load.output(),
  };
  if (result.dropped) console.log(`WARNING: tcpdump: ${result.dropped} packets dropped by kernel`);
  return result;
}

export function summary(out, r, what) {
  console.log(`${out}: ${mib(r.size)} (${r.size} bytes), ${r.captured} packets, ${r.dropped} dropped by kernel, `
    + `recorded in ${r.seconds.toFixed(1)} s${what ? ` (${what})` : ''}`);
}
