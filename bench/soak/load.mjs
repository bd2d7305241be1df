// The soak's three servers and three load generators (bench/soak/run.mjs), all on loopback:
//   HTTP/1      bench/servers/http1.mjs (node:http), driven by wrk with bench/paced.lua (GET /small, ~300 B)
//   gRPC        bench/soak/grpc-server.mjs (grpc-js), driven by bench/soak/grpc-client.mjs (unary GetOrder)
//   PostgreSQL  a throwaway cluster (scripts/record/postgres/cluster.mjs: initdb as postgres in a temp dir,
//               removed on exit), filled by `pgbench -i` over its Unix socket (not captured), driven by
//               `pgbench -S -n -M simple -R rate` over TCP: one SELECT per transaction, one Query message.
// Every child goes through scripts/record/lib.mjs's startChild, so it is killed if the harness dies.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, waitPort } from '../../scripts/record/lib.mjs';
import { createCluster, startServer as startPostgres, HOST, PGBIN } from '../../scripts/record/postgres/cluster.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

export const PORTS = { http: 18970, grpc: 18971, postgres: 18972, api: 18973 };
export const PROTOCOLS = ['http', 'grpc', 'postgres'];

/** Start the three servers; resolves with { stop() }. */
export async function startServers() {
  const started = [];
  try {
    const http = startChild(process.execPath, [join(root, 'bench/servers/http1.mjs'), '--port', String(PORTS.http)], { ready: 'listening on' });
    started.push([http, 'SIGTERM']);
    const grpc = startChild(process.execPath, [join(here, 'grpc-server.mjs'), '--port', String(PORTS.grpc)], { ready: 'listening on' });
    started.push([grpc, 'SIGTERM']);
    const cluster = createCluster();
    const pg = await startPostgres(cluster, PORTS.postgres);
    started.push([pg, 'SIGINT']); // fast shutdown
    await Promise.all([http.ready, grpc.ready, waitPort(PORTS.postgres)]);
    execFileSync(join(PGBIN, 'pgbench'), ['-i', '-q', '-s', '1', '-h', cluster.dir, '-p', String(PORTS.postgres), '-U', 'postgres', 'postgres'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    return { http, grpc, pg, stop: () => stopAll(started) };
  } catch (e) {
    await stopAll(started);
    throw e;
  }
}

async function stopAll(started) {
  for (const [child, signal] of started.reverse()) await child.stop(signal, 10000);
}

/**
 * wrk connections and per-connection delay that offer `rate` requests/s (bench/live.mjs's rule: each
 * cycle is the delay plus about 2.5 ms of request time and scheduling on this machine).
 */
export function wrkPacing(rate) {
  const connections = Math.max(4, Math.min(400, Math.ceil(rate / 50)));
  return { connections, delayMs: Math.max(1, Math.round((connections * 1000) / rate - 2.5)) };
}

/** Run the three generators at once for `seconds`; resolves with what each made. */
export async function drive(rates, seconds) {
  const [http, grpc, postgres] = await Promise.all([
    rates.http > 0 ? wrk(rates.http, seconds) : { made: 0 },
    rates.grpc > 0 ? grpcLoad(rates.grpc, seconds) : { made: 0 },
    rates.postgres > 0 ? pgbench(rates.postgres, seconds) : { made: 0 },
  ]);
  return { http, grpc, postgres };
}

async function finished(child, what) {
  const { code, signal } = await child.exited;
  if (code !== 0) throw new Error(`${what} exited with ${code ?? signal}:\n${child.output()}`);
  return child.output();
}

export async function wrk(rate, seconds) {
  const { connections, delayMs } = wrkPacing(rate);
  const out = await finished(startChild('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '-s', join(root, 'bench/paced.lua'),
    `http://127.0.0.1:${PORTS.http}/`, '--', String(delayMs)]), 'wrk');
  const made = Number(/(\d+) requests in/.exec(out)?.[1]);
  if (!Number.isFinite(made)) throw new Error(`wrk: no request count in:\n${out}`);
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1];
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { made, connections, delayMs, inFlightAtEnd: connections, socketErrors: socketErrors ?? null, non2xx };
}

export async function grpcLoad(rate, seconds) {
  const out = await finished(startChild(process.execPath, [join(here, 'grpc-client.mjs'), '--port', String(PORTS.grpc),
    '--rate', String(rate), '--seconds', String(seconds), '--channels', '2']), 'grpc-client');
  const r = JSON.parse(out.trim().split('\n').at(-1));
  return { made: r.calls, errors: r.errors, behind: r.behind, offered: r.offered, firstError: r.firstError ?? null };
}

export async function pgbench(rate, seconds) {
  const out = await finished(startChild(join(PGBIN, 'pgbench'), ['-h', HOST, '-p', String(PORTS.postgres), '-U', 'postgres',
    '-S', '-n', '-M', 'simple', '-c', '8', '-j', '2', '-R', String(rate), '-T', String(seconds), 'postgres']), 'pgbench');
  const made = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1]);
  if (!Number.isFinite(made)) throw new Error(`pgbench: no transaction count in:\n${out}`);
  const failed = Number(/number of failed transactions: (\d+)/.exec(out)?.[1] ?? 0);
  const lagMs = Number(/rate limit schedule lag: avg ([\d.]+)/.exec(out)?.[1] ?? NaN);
  return { made, failed, scheduleLagMs: lagMs };
}
