// Throwaway Redis and MariaDB servers for the recorders that drive a service through real drivers
// (scripts/record/cache-demo.mjs, scripts/record/stories-cache-db.mjs), and the ioredis connector
// that makes a service's Redis connection leave from the service's own address, as a pod's would.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AbstractConnector } from 'ioredis';
import { startChild, waitPort } from './lib.mjs';

/**
 * Debian's redis-server on host:port, nothing saved, its dir a temp dir removed at stop. Protected
 * mode is off: it lets only 127.0.0.1 in, and a service on another 127.0.0.x stands for another host.
 */
export async function startRedis({ host, port }) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-redis-'));
  const srv = startChild('redis-server', ['--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no',
    '--protected-mode', 'no', '--dir', dir, '--daemonize', 'no'], { ready: 'Ready to accept connections' });
  await srv.ready;
  await waitPort(port, host);
  return { async stop() { await srv.stop('SIGTERM', 5000); rmSync(dir, { recursive: true, force: true }); } };
}

/**
 * A throwaway MariaDB as scripts/record/mysql.mjs starts one (no TLS offered): a data dir made by
 * mariadb-install-db, mariadbd on host:port and a Unix socket, `seed` (SQL) run as root over the socket.
 */
export async function startMariadb({ host, port, seed }) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-mysql-'));
  const sock = join(dir, 'mysqld.sock');
  const root = process.getuid?.() === 0 ? ['--user=root'] : [];
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${join(dir, 'data')}`, '--skip-test-db',
    '--auth-root-authentication-method=socket', ...root], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = startChild('mariadbd', ['--no-defaults', `--datadir=${join(dir, 'data')}`, `--socket=${sock}`,
    `--port=${port}`, `--bind-address=${host}`, `--pid-file=${join(dir, 'pid')}`, '--skip-log-bin',
    '--innodb-buffer-pool-size=16M', ...root], { ready: 'ready for connections', timeoutMs: 30000 });
  await server.ready;
  await waitPort(port, host);
  execFileSync('mysql', ['--no-defaults', `--socket=${sock}`, '-uroot'], { input: seed, stdio: ['pipe', 'pipe', 'pipe'] });
  return { async stop() { await server.stop('SIGTERM', 10000); rmSync(dir, { recursive: true, force: true }); } };
}

/**
 * ioredis has no local-address option: a connector class whose sockets leave from `localAddress`.
 * Use as `new Redis({ host, port, Connector: fromAddress('127.0.0.40') })`.
 */
export function fromAddress(localAddress) {
  return class extends AbstractConnector {
    constructor(options) {
      super(options.disconnectTimeout);
      this.options = options;
    }

    connect() {
      this.connecting = true;
      return new Promise((resolve, reject) => {
        process.nextTick(() => {
          if (!this.connecting) return reject(new Error('Connection is closed.'));
          this.stream = net.createConnection({ host: this.options.host, port: this.options.port, localAddress });
          this.stream.once('error', (e) => { this.firstError = e; });
          resolve(this.stream);
        });
      });
    }
  };
}
