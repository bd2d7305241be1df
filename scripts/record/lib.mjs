// Shared helpers for the capture recorders (scripts/record/*.mjs, bench/record.mjs).
//
// capture(file, filter, fn) runs `tcpdump -i lo -U -s 0 -w FILE FILTER`, waits for tcpdump's
// "listening on" line, runs fn() (the real traffic), waits 200 ms, stops tcpdump with SIGINT and
// waits for it to exit. Every child process started through this module is killed if the
// recorder exits early, so nothing is left behind.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, chownSync } from 'node:fs';
import { dirname } from 'node:path';
import net from 'node:net';
export { prngBytes } from './prng.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// child process bookkeeping
const children = new Set();
let interrupted = false;

function killAll(signal = 'SIGTERM') {
  for (const c of children) {
    try { c.kill(signal); } catch { /* already gone */ }
  }
}
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    interrupted = true;
    // Said to a person at a terminal; a test or a log that stopped us knows why.
    if (process.stderr.isTTY) process.stderr.write(`record: ${sig}, stopping children\n`);
    killAll('SIGINT');
    setTimeout(() => process.exit(130), 300).unref();
  });
}

/** Spawn a tracked child. opts.ready: a string/RegExp to wait for on stdout or stderr. */
export function startChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts.spawn });
  children.add(child);
  let out = '';
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); });
  });
  child.on('error', (e) => { out += `\nspawn error: ${e.message}`; });
  const onData = (d) => { out += d; if (opts.echo) process.stderr.write(d); };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const ready = opts.ready
    ? new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${cmd}: not ready after ${opts.timeoutMs ?? 10000} ms:\n${out}`)),
          opts.timeoutMs ?? 10000);
        const check = () => {
          const ok = typeof opts.ready === 'string' ? out.includes(opts.ready) : opts.ready.test(out);
          if (ok) { clearTimeout(t); resolve(); }
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
        exited.then(({ code, signal }) => { clearTimeout(t); reject(new Error(`${cmd} exited (${code ?? signal}) before ready:\n${out}`)); });
      })
    : Promise.resolve();
  return {
    child,
    ready,
    exited,
    output: () => out,
    async stop(signal = 'SIGTERM', graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// tools
export function requireTools(...tools) {
  const missing = tools.filter((t) => {
    try { execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }); return false; } catch { return true; }
  });
  if (missing.length) {
    console.error(`record: missing tool(s): ${missing.join(', ')}`);
    process.exit(2);
  }
}

/** Packet count of a pcap file (capinfos). */
export function packetCount(file) {
  const out = execFileSync('capinfos', ['-M', '-c', file], { encoding: 'utf8' });
  const m = /Number of packets:\s*(\d+)/.exec(out);
  if (!m) throw new Error(`capinfos: cannot read packet count of ${file}:\n${out}`);
  return Number(m[1]);
}

/**
 * Record FILE from loopback with a BPF FILTER while fn() runs. Returns { file, packets, dropped }.
 * The capture is written to FILE.tmp and renamed when tcpdump has exited cleanly.
 */
export async function capture(file, filter, fn, { quiet = false, bufferKiB = 131072 } = {}) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  // --immediate-mode: with TPACKET_V3 libpcap hands packets over per filled block or per 1 s timeout, and
  // packets still in the current block when SIGINT arrives are lost (a short capture came out empty).
  // -B: in immediate mode each ring slot holds a whole snaplen (256 KiB with -s 0), so the default
  // 2 MiB buffer has only ~8 slots and bursts on lo (64 KiB segments, 20 parallel connections) were
  // dropped by the kernel; 128 MiB gives ~500 slots.
  const args = ['-i', 'lo', '--immediate-mode', '-B', String(bufferKiB), '-U', '-s', '0', '-w', tmp];
  if (process.getuid?.() === 0) args.push('-Z', 'root'); // keep the file owned by root, not `tcpdump`
  args.push(filter);
  const td = startChild('tcpdump', args, { ready: 'listening on' });
  await td.ready;
  let failure;
  try {
    await fn();
  } catch (e) {
    failure = e;
  }
  await sleep(200);
  const { code, signal } = await td.stop('SIGINT');
  if (interrupted) failure ??= new Error('interrupted');
  if (failure) { rmSync(tmp, { force: true }); throw failure; }
  if (code !== 0) throw new Error(`tcpdump exited with ${code ?? signal}:\n${td.output()}`);
  renameSync(tmp, file);
  if (process.getuid?.() === 0) { try { chownSync(file, 0, 0); } catch { /* ignore */ } }
  const dropped = Number(/(\d+) packets? dropped by kernel/.exec(td.output())?.[1] ?? 0);
  const packets = packetCount(file);
  if (!quiet) console.log(`wrote ${file}: ${packets} packets${dropped ? ` (${dropped} dropped by kernel!)` : ''}`);
  return { file, packets, dropped };
}

// ---------------------------------------------------------------------------------------------
// network helpers

/** Resolve when something accepts TCP connections on host:port (polls; gives up after timeoutMs). */
export async function waitPort(port, host = '127.0.0.1', timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Listen a server on host:port and resolve with it. */
export function listen(server, port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => { server.off('error', reject); resolve(server); });
  });
}

/** Close a server and any sockets still open on it. */
export function closeServer(server) {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

