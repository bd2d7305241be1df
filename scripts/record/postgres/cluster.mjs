// A throwaway PostgreSQL 15 cluster for the recorders (scripts/record/postgres.mjs, bench/record-pg.mjs).
//
// createCluster() runs initdb (as the `postgres` user, trust auth, C locale, UTF8) in a fresh temp dir
// that is removed when the process exits. startServer(cluster, port) runs `postgres` itself as a tracked
// child of this process (lib.mjs startChild: killed if the recorder dies), listening on 127.0.0.1:PORT
// and on a Unix socket in the temp dir; stop it with `await server.stop('SIGINT')` (fast shutdown).
// Restarting the same cluster on another port is how every capture gets its own port.
// psqlSocket() runs psql over the Unix socket, i.e. outside any loopback TCP capture (seeding, setup).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, chownSync, chmodSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild } from '../lib.mjs';

export const PGBIN = process.env.PGBIN ?? '/usr/lib/postgresql/15/bin';
export const HOST = '127.0.0.1';

function postgresIds() {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    };
  } catch {
    throw new Error("no 'postgres' user: apt-get install -y postgresql");
  }
}

/**
 * initdb a new cluster. hba: pg_hba.conf lines placed *before* initdb's own (trust) lines, so they win.
 * Returns { dir, data, uid, gid }.
 */
export function createCluster({ hba = [] } = {}) {
  if (process.getuid?.() !== 0) throw new Error('must run as root (initdb as postgres, tcpdump on lo)');
  const { uid, gid } = postgresIds();
  const dir = mkdtempSync('/tmp/tapwire-pg.');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  execFileSync(join(PGBIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--locale=C', '-E', 'UTF8'],
    { uid, gid, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const hbaFile = join(data, 'pg_hba.conf');
  const ours = hba.length ? `# tapwire recorder\n${hba.join('\n')}\n` : '';
  writeFileSync(hbaFile, ours + readFileSync(hbaFile, 'utf8'));
  appendFileSync(join(data, 'postgresql.conf'), [
    '# tapwire recorder: fixed, fast, quiet',
    "listen_addresses = '127.0.0.1'",
    'ssl = off', 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off',
    "timezone = 'UTC'", "lc_messages = 'C'", 'max_connections = 50', '',
  ].join('\n'));
  return { dir, data, uid, gid };
}

/** Start postgres on 127.0.0.1:port (and the Unix socket in cluster.dir); resolves when it accepts connections. */
export async function startServer(cluster, port) {
  const server = startChild(join(PGBIN, 'postgres'), ['-D', cluster.data, '-p', String(port), '-k', cluster.dir], {
    ready: 'database system is ready to accept connections',
    spawn: { uid: cluster.uid, gid: cluster.gid, cwd: cluster.dir },
  });
  try {
    await server.ready;
  } catch (e) {
    if (/Address already in use/.test(server.output())) throw new Error(`port ${port} is in use: ${e.message}`);
    throw e;
  }
  return server;
}

/** Run psql over the Unix socket (not captured). input: SQL fed on stdin. Returns stdout. */
export function psqlSocket(cluster, port, db, input, extraArgs = []) {
  return execFileSync(join(PGBIN, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cluster.dir, '-p', String(port),
    '-U', 'postgres', '-d', db, ...extraArgs], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
