import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createCluster, psqlSocket, startServer, PGBIN } from '../../scripts/record/postgres/cluster.mjs';

/**
 * A throwaway PostgreSQL for tests that need a real server: scripts/record/postgres/cluster.mjs
 * (initdb in a temp dir removed at exit, postgres on 127.0.0.1:port as a tracked child), wrapped
 * for vitest. Setup SQL goes over the Unix socket, so it is never in a loopback capture.
 */
export interface TestPostgres {
  port: number;
  /** Runs SQL through psql over the Unix socket; returns its output. */
  psql(sql: string): string;
  stop(): Promise<void>;
}

/** Why a real PostgreSQL cannot be started here ('' when it can). */
export function postgresUnavailable(): string {
  if (process.getuid?.() !== 0) return 'needs root (initdb runs as the postgres user)';
  if (!existsSync(join(PGBIN, 'postgres'))) return `no PostgreSQL binaries at ${PGBIN} (apt-get install postgresql)`;
  return '';
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startPostgres(setupSql?: string): Promise<TestPostgres> {
  const cluster = createCluster();
  const port = await freePort();
  const server = await startServer(cluster, port);
  const psql = (sql: string): string => psqlSocket(cluster, port, 'postgres', sql);
  if (setupSql) psql(setupSql);
  return { port, psql, stop: async () => { await server.stop('SIGINT', 10_000); } };
}
