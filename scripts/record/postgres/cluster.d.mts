// Types for cluster.mjs, for the TypeScript tests that start a real PostgreSQL with it
// (test/helpers/postgres.ts, test/postgres/live.test.ts, test/agent/e2e.test.ts).

/** The PostgreSQL binaries' directory ($PGBIN, or PostgreSQL 15's). */
export const PGBIN: string;
export const HOST: string;

/** An initdb'd cluster: its temp dir (also the Unix socket's), data dir, and the postgres user's ids. */
export interface Cluster {
  dir: string;
  data: string;
  uid: number;
  gid: number;
}

/** A running postgres, as lib.mjs startChild tracks it. */
export interface Server {
  child: import('node:child_process').ChildProcess;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function createCluster(opts?: { hba?: string[] }): Cluster;
export function startServer(cluster: Cluster, port: number): Promise<Server>;
export function psqlSocket(cluster: Cluster, port: number, db: string, input: string, extraArgs?: string[]): string;
