import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPostgres, type PgFlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { createCluster, psqlSocket, startServer, PGBIN, type Cluster, type Server } from '../../scripts/record/postgres/cluster.mjs';

/**
 * Against a real PostgreSQL: a throwaway cluster (initdb + postgres on a free port), a real `pg`
 * client, tcpdump recording loopback. What tapwire decodes must be what the client did and saw.
 */
const why = process.getuid?.() !== 0 ? 'needs root (initdb as postgres, tcpdump on lo)'
  : !existsSync(join(PGBIN, 'postgres')) ? `no PostgreSQL binaries at ${PGBIN} (apt-get install postgresql)`
  : spawnSync('sh', ['-c', 'command -v tcpdump']).status !== 0 ? 'no tcpdump (apt-get install tcpdump)' : '';
if (why) console.warn(`test/postgres/live.test.ts skipped: ${why}`);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe.skipIf(why !== '')('PostgreSQL live: pg client against a real server, recorded with tcpdump', () => {
  let server: Server | undefined;
  let port = 0;
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = createCluster();
    port = await freePort();
    server = await startServer(cluster, port);
    psqlSocket(cluster, port, 'postgres', "CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(10,2));"
      + "INSERT INTO orders SELECT g, 'c' || g, g * 1.5 FROM generate_series(1, 20) g;");
  }, 60_000);

  afterAll(async () => {
    await server?.stop('SIGINT', 10_000);
  });

  it('decodes exactly the statements the client ran, with their parameters, results and errors', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tapwire-live-pg-')), 'live.pcap');
    const td = spawn('tcpdump', ['-i', 'lo', '-U', '--immediate-mode', '-s', '0', '-w', file, `tcp port ${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      td.stderr.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) resolve(); });
      td.on('exit', (c) => reject(new Error(`tcpdump exited ${c}`)));
    });
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', application_name: 'live-test' });
    await client.connect();
    const seen: { sql: string; rows: number; error?: string; params?: unknown[] }[] = [];
    const byId = 'SELECT id, customer, total FROM orders WHERE id = $1';
    for (const id of [3, 7, 11]) {
      const r = await client.query({ name: 'order_by_id', text: byId, values: [id] });
      seen.push({ sql: byId, rows: r.rowCount ?? 0, params: [String(id)] });
    }
    const many = await client.query('SELECT count(*) AS n FROM orders WHERE total > $1', [10]);
    seen.push({ sql: 'SELECT count(*) AS n FROM orders WHERE total > $1', rows: many.rowCount ?? 0, params: ['10'] });
    try {
      await client.query('SELECT 1 / 0');
    } catch (e) {
      seen.push({ sql: 'SELECT 1 / 0', rows: 0, error: (e as { code: string }).code });
    }
    await client.end();
    await new Promise((r) => setTimeout(r, 300)); // let tcpdump write the last packets
    td.kill('SIGINT');
    await new Promise((r) => td.on('exit', r));

    const { records, pipeline } = await analyzeFile(file);
    expect(pipeline.violations.total).toBe(0);
    const rs: PgFlowRecord[] = records!.filter(isPostgres);
    expect(rs.map((r) => r.request!.query)).toEqual(seen.map((s) => s.sql));
    expect(rs.slice(0, 3).every((r) => r.request!.statement === 'order_by_id')).toBe(true);
    for (const [i, s] of seen.entries()) {
      const r = rs[i]!;
      if (s.params) expect(r.request!.params).toEqual(s.params);
      if (s.error) expect(r.response!.error!.code).toBe(s.error);
      else expect(r.response!.rows).toBe(s.rows);
      expect(r.end).toBeGreaterThanOrEqual(r.start);
    }
    expect(rs[0]!.postgres).toMatchObject({ user: 'postgres', database: 'postgres', application: 'live-test' });
    expect(new Set(rs.slice(0, 3).map((r) => r.request!.fingerprint)).size).toBe(1);
  }, 60_000);
});
