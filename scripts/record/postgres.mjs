// Records the PostgreSQL decoder fixtures in pcaps/postgres/ from real traffic on loopback.
//
//   node scripts/record/postgres.mjs [OUT_DIR] [case ...]     (default OUT_DIR: pcaps/postgres, all cases)
//   node scripts/record/postgres.mjs --verify [OUT_DIR]       (only re-check existing captures with tshark)
//
// One throwaway PostgreSQL 15 cluster (scripts/record/postgres/cluster.mjs: initdb in a temp dir, trust
// auth, plus md5 and scram-sha-256 lines in pg_hba.conf for two password users) is seeded over its Unix
// socket from scripts/record/postgres/seed.sql, outside any capture. Every case then starts `postgres` on
// its own port on 127.0.0.1, starts tcpdump on that port, runs a real client, stops tcpdump and stops the
// server, so each capture holds whole connections (startup to Terminate/FIN). Clients:
//   pg-client         the npm `pg` client (extended protocol, named statement, errors, transactions,
//                     LISTEN/NOTIFY, binary params and results)
//   pg-pipeline       scripts/record/postgres/wire.mjs, a raw v3 client (pipelines, PortalSuspended,
//                     Flush, Close)
//   psql              psql -f scripts/record/postgres/psql-session.sql (SSLRequest, multi-statement
//                     Query, COPY in and out, EmptyQueryResponse, NoticeResponse)
//   md5-auth, scram-auth   `pg` with a password: one wrong password, then a small session
//   cancel            the raw client: SELECT pg_sleep(5) cancelled by a CancelRequest on a 2nd connection
//   pgbench-simple, pgbench-extended   pgbench -M simple|extended -t 50 -c 2 (pgbench -i -s 1 beforehand)
//   mysql-on-5432     a synthetic MySQL handshake (scripts/record/postgres/fake-mysql.mjs) on port 5432
// Query texts and data are fixed, so the captured content is the same on every run except what the
// server and the clients generate: backend PIDs and cancel keys, MD5 salts and SCRAM nonces, pgbench's
// interleaving of its two clients, TCP ports and timing. After each capture, tshark
// (-d tcp.port==PORT,pgsql) checks that the case shows what it is for.
import pg from 'pg';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync, mkdirSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { capture, requireTools, sleep, startChild } from './lib.mjs';
import { createCluster, startServer, psqlSocket, PGBIN, HOST } from './postgres/cluster.mjs';
import { Wire, msg, fields, describe, sendCancel } from './postgres/wire.mjs';
import { startFakeMysql, runFakeMysqlClient } from './postgres/fake-mysql.mjs';
import { summarize, tsharkFields, values, count, formatCounts, check, get, all } from './postgres/tshark.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SETUP_PORT = 18400;
const PORTS = {
  'pg-client': 18401,
  'pg-pipeline': 18402,
  psql: 18403,
  'md5-auth': 18404,
  'scram-auth': 18405,
  cancel: 18406,
  'pgbench-simple': 18407,
  'pgbench-extended': 18408,
  'mysql-on-5432': 5432,
};
const NEEDS_POSTGRES = (name) => name !== 'mysql-on-5432';
const PASSWORDS = { app_md5: 'md5-secret', app_scram: 'scram-secret' };
const HBA = [
  'host shop app_md5   127.0.0.1/32 md5',
  'host shop app_scram 127.0.0.1/32 scram-sha-256',
];

pg.defaults.parseInputDatesAsUTC = true; // Date params go out as ...+00:00 whatever the local TZ

async function pgConnect(port, extra = {}) {
  const c = new pg.Client({ host: HOST, port, user: 'postgres', database: 'shop', ssl: false, ...extra });
  await c.connect();
  return c;
}

async function expectError(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    if (e.code !== code) throw new Error(`${what}: expected SQLSTATE ${code}, got ${e.code} ${e.message}`);
    return e;
  }
  throw new Error(`${what}: expected SQLSTATE ${code}, got success`);
}

// tshark helpers over summarize(...).messages
const of = (s, type) => s.messages.filter((m) => m.type === type);
const sqlstates = (s) => of(s, 'Error').map((m) => get(m, 'pgsql.code'));
const readyStatuses = (s) => of(s, 'Ready for query').map((m) => String.fromCharCode(Number(get(m, 'pgsql.status'))));

const int4 = (n) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

// ---------------------------------------------------------------------------------------------
// cases: each gets the port its server listens on
const cases = {};
const verify = {};

// The `pg` client, one connection (plus a second one that sends the NOTIFY).
cases['pg-client'] = async (port) => {
  const c = await pgConnect(port, { application_name: 'tapwire-pg-client' });
  try {
    // 1. a parameterised query with int, text, bool, timestamptz, numeric, uuid (text format) and bytea
    //    (a Buffer: binary format) parameters
    const r1 = await c.query(
      'SELECT $1::int AS i, $2::text AS t, $3::bool AS b, $4::timestamptz AS ts, $5::numeric AS n, $6::uuid AS u, $7::bytea AS raw',
      [42, 'hello, wire', true, new Date(Date.UTC(2025, 2, 4, 10, 0, 0, 123)), '12345.6789',
        '0b6f3c1e-5a7d-4e2b-9c10-3f2a1d4e5b6c', Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff])]);
    check(r1.rows[0].i === 42 && r1.rows[0].raw.length === 6, 'pg-client: typed parameters round-trip');
    // 2. a named prepared statement: Parse once, then Bind/Execute with 5 different ids
    for (const id of [3, 7, 1, 12, 5]) {
      const r = await c.query({ name: 'order_by_id', text: 'SELECT id, customer, paid, created_at, total, ref FROM orders WHERE id = $1', values: [id] });
      check(r.rows[0].id === id, `pg-client: order_by_id(${id})`);
    }
    // 3. errors and recovery: division by zero in an extended query, then a simple query works
    await expectError(c.query('SELECT id, 100 / $1::int AS share FROM orders WHERE id = 1', [0]), '22012', 'division by zero');
    const r3 = await c.query('SELECT count(*) AS n FROM orders');
    check(r3.rows[0].n === '20', 'pg-client: recovery query');
    // 4. a transaction that commits (BEGIN / INSERT / INSERT / COMMIT) ...
    await c.query('BEGIN');
    await c.query('INSERT INTO orders (id, customer, paid, created_at, total, ref) VALUES ($1, $2, $3, $4, $5, $6)',
      [21, 'customer-021', false, new Date(Date.UTC(2025, 2, 5, 9, 30)), '215.25', 'a0d3c5e1-2b4f-4a6c-8d9e-0f1a2b3c4d5e']);
    await c.query('INSERT INTO events (kind, payload) VALUES ($1, $2)', ['order.created', { id: 21, total: '215.25' }]);
    await c.query('COMMIT');
    //    ... and one that fails on a unique violation (ReadyForQuery 'E') and is rolled back
    await c.query('BEGIN');
    await expectError(c.query('INSERT INTO orders (id, customer, paid, created_at, total, ref) VALUES ($1, $2, $3, $4, $5, $6)',
      [1, 'duplicate', true, new Date(Date.UTC(2025, 2, 5, 9, 31)), '1.00', 'a0d3c5e1-2b4f-4a6c-8d9e-0f1a2b3c4d5f']), '23505', 'unique violation');
    await c.query('ROLLBACK');
    // 5. LISTEN here, NOTIFY from a second connection: an asynchronous NotificationResponse
    await c.query('LISTEN order_events');
    const got = new Promise((resolve) => c.once('notification', resolve));
    const c2 = await pgConnect(port, { application_name: 'tapwire-pg-notifier' });
    await c2.query("NOTIFY order_events, 'order 21 created'");
    await c2.end();
    const n = await Promise.race([got, sleep(5000).then(() => null)]);
    check(n?.payload === 'order 21 created', 'pg-client: notification received');
    await c.query('UNLISTEN order_events');
    // 6. binary format: a binary int4 and bytea parameter, all result columns in binary (binary: true)
    const r6 = await c.query({
      text: 'SELECT id, paid, total, created_at, ref, note FROM orders WHERE id = $1 OR note = $2 ORDER BY id',
      values: [int4(4), Buffer.from([0x00, 0x30, 0x09])], // the note of order 3: 3 * 4099 = 0x003009
      binary: true,
      rowMode: 'array',
    });
    // (pg 8.23 turns binary values into strings before its binary type parsers see them, so the parsed
    // values are garbage; what matters here is the wire format, which tshark checks)
    check(r6.rows.length === 2 && r6.fields.every((f) => f.format === 'binary'), 'pg-client: binary query, 2 rows');
  } finally {
    await c.end();
  }
};
verify['pg-client'] = (file, port, s) => {
  const named = (type) => of(s, type).filter((m) => get(m, 'pgsql.statement') === 'order_by_id').length;
  check(named('Parse') === 1, `one Parse of order_by_id (got ${named('Parse')})`);
  check(named('Bind') === 5, `5 Binds of order_by_id (got ${named('Bind')})`);
  const typed = of(s, 'Bind')[0];
  check(all(typed, 'pgsql.val.length').length === 7 && all(typed, 'pgsql.format').slice(0, 7).join() === '0,0,0,0,0,0,1',
    'the first Bind: 7 parameters, text format except the bytea (binary)');
  check(sqlstates(s).join() === '22012,23505', `errors 22012 then 23505 (got ${sqlstates(s).join()})`);
  const st = readyStatuses(s);
  check(st.includes('T') && st.includes('E'), `ReadyForQuery T and E present (got ${[...new Set(st)].join('')})`);
  const notes = of(s, 'Notification');
  check(notes.length === 1 && get(notes[0], 'pgsql.condition') === 'order_events', 'one NotificationResponse on order_events');
  const binBind = of(s, 'Bind').find((m) => all(m, 'pgsql.format').join() === '1,1,1');
  check(binBind, 'a Bind with 2 binary parameters and binary results');
  const binRows = of(s, 'Row description').filter((m) => all(m, 'pgsql.format').every((f) => f === '1'));
  check(binRows.length === 1 && all(binRows[0], 'pgsql.format').length === 6, 'a RowDescription with 6 binary columns');
  return `Parse order_by_id 1, Bind order_by_id 5; errors ${sqlstates(s).join(', ')}; ReadyForQuery ${[...new Set(st)].join('/')}; `
    + 'NotificationResponse on order_events; binary params (bytea; int4+bytea) and binary result columns';
};

// The raw client: pipelines with one Sync, an error inside a pipeline, a portal read in pages.
cases['pg-pipeline'] = async (port) => {
  const w = await Wire.connect(port, { user: 'postgres', database: 'shop', application_name: 'tapwire-pipeline' });
  try {
    // 1. Parse + Describe statement + 8 x (Bind, Execute) + Sync, in one write
    const inserts = [];
    for (let i = 1; i <= 8; i++) inserts.push(msg.bind('', 'add_item', [String(i), `item-${i}`, String(i * 3)]), msg.execute());
    w.send(msg.parse('add_item', 'INSERT INTO items (id, name, qty) VALUES ($1, $2, $3)', [23, 25, 23]),
      msg.describe('S', 'add_item'), ...inserts, msg.sync());
    const r1 = await w.until('Z');
    check(r1.filter((m) => m.type === 'C').length === 8, `pipeline 1: 8 CommandComplete (got ${r1.map(describe).join(' ')})`);

    // 2. one write, two Syncs: 5 UPDATEs where the 3rd violates CHECK (qty >= 0); the backend skips the
    //    4th and 5th up to the Sync and rolls back the implicit transaction; the second group succeeds.
    const updates = [[1, 1], [2, 2], [50, 3], [1, 4], [1, 5]]
      .flatMap(([by, id]) => [msg.bind('', 'take', [String(by), String(id)]), msg.execute()]);
    w.send(msg.parse('take', 'UPDATE items SET qty = qty - $1 WHERE id = $2 RETURNING qty'), ...updates, msg.sync(),
      msg.bind('', 'add_item', ['9', 'item-9', '1']), msg.execute(), msg.sync());
    const r2a = await w.until('Z');
    const err = r2a.find((m) => m.type === 'E');
    check(err && fields(err.body).C === '23514', `pipeline 2: check violation (got ${r2a.map(describe).join(' ')})`);
    check(r2a.filter((m) => m.type === 'C').length === 2, 'pipeline 2: 2 UPDATEs before the error, none after');
    const r2b = await w.until('Z');
    check(r2b.some((m) => m.type === 'C'), `pipeline 2: the group after the Sync runs (got ${r2b.map(describe).join(' ')})`);

    // 3. a portal read 4 rows at a time: Execute(limit 4) + Flush -> PortalSuspended, twice; then the rest,
    //    Close portal, Close statement, Sync
    w.send(msg.parse('', 'SELECT id, name, qty FROM items ORDER BY id'), msg.bind('page', '', [], [0]),
      msg.describe('P', 'page'), msg.execute('page', 4), msg.flush());
    const p1 = await w.until('s');
    w.send(msg.execute('page', 4), msg.flush());
    const p2 = await w.until('s');
    w.send(msg.execute('page', 0), msg.close('P', 'page'), msg.close('S', 'add_item'), msg.close('S', 'take'), msg.sync());
    const p3 = await w.until('Z');
    const rows = [...p1, ...p2, ...p3].filter((m) => m.type === 'D').length;
    check(rows === 9, `portal: 9 rows in three pages (got ${rows})`);
  } finally {
    await w.end();
  }
};
verify['pg-pipeline'] = (file, port, s) => {
  const segments = new Map(); // frame -> frontend message types in that TCP segment
  for (const m of s.messages.filter((x) => x.fe)) segments.set(m.frame, [...(segments.get(m.frame) ?? []), m.type]);
  const n = (types, t) => types.filter((x) => x === t).length;
  const segs = [...segments.values()];
  check(segs.some((t) => n(t, 'Bind') === 8 && n(t, 'Execute') === 8 && n(t, 'Sync') === 1), 'one segment with 8 Bind + 8 Execute + 1 Sync');
  check(segs.some((t) => n(t, 'Bind') === 6 && n(t, 'Sync') === 2), 'one segment with 6 Bind and 2 Sync (the error pipeline)');
  check(sqlstates(s).join() === '23514', `one error 23514 (got ${sqlstates(s).join()})`);
  check(count(s, 'B Portal suspended') === 2, `2 PortalSuspended (got ${count(s, 'B Portal suspended')})`);
  check(of(s, 'Execute').filter((m) => get(m, 'pgsql.returns') === '4').length === 2, '2 Execute with a row limit of 4');
  check(count(s, 'F Flush') === 2, '2 Flush');
  check(count(s, 'F Close') === 3 && count(s, 'B Close completion') === 3, '3 Close / CloseComplete');
  return `8 Bind/Execute before one Sync; error 23514 in a pipeline: ${count(s, 'F Execute')} Execute, `
    + `${count(s, 'B Command completion')} CommandComplete (2 skipped to Sync); 2 PortalSuspended, 2 Flush, 3 Close`;
};

// psql: SSLRequest (answered N), simple queries, a multi-statement Query, COPY in/out, ';', a notice.
cases.psql = async (port) => {
  const p = startChild(join(PGBIN, 'psql'), ['-X', '-h', HOST, '-p', String(port), '-U', 'postgres', '-d', 'shop',
    '-f', join(here, 'postgres', 'psql-session.sql')], { spawn: { env: { ...process.env, PGAPPNAME: 'psql', PGSSLMODE: 'prefer' } } });
  const { code } = await p.exited;
  // psql's exit status is 0 even with the deliberate error (ON_ERROR_STOP is off)
  if (code !== 0) throw new Error(`psql exited ${code}:\n${p.output()}`);
  check(/G-700,1,149.00/.test(p.output()), 'psql: COPY TO STDOUT printed the copied rows');
};
verify.psql = (file, port, s) => {
  check(count(s, 'F SSL request') === 1, 'an SSLRequest');
  const n = tsharkFields(file, port, `tcp.srcport == ${port} && tcp.len == 1 && tcp.payload == 4e`, ['frame.number']).length;
  check(n === 1, "the SSLRequest answered 'N' (one 1-byte segment from the server)");
  const queries = of(s, 'Simple query').map((m) => get(m, 'pgsql.query'));
  const multi = queries.findIndex((q) => /^SELECT 1 AS one ; SELECT 'two' AS two ; UPDATE stock/.test(q));
  check(multi >= 0, 'one Query with three statements');
  check(count(s, 'B CopyIn response') === 1 && count(s, 'B CopyOut response') === 1, 'CopyInResponse and CopyOutResponse');
  check(count(s, 'F Copy data') >= 1 && count(s, 'B Copy data') === 8, `CopyData both ways (got F ${count(s, 'F Copy data')}, B ${count(s, 'B Copy data')})`);
  check(count(s, 'F Copy completion') === 1 && count(s, 'B Copy completion') === 1, 'CopyDone both ways');
  check(count(s, 'B Empty query') === 1, 'one EmptyQueryResponse');
  check(count(s, 'B Notice') === 1, 'one NoticeResponse');
  check(sqlstates(s).join() === '22012', `one error 22012 (got ${sqlstates(s).join()})`);
  return `SSLRequest -> 'N'; ${queries.length} Query messages, one with 3 statements (3 RowDescription/CommandComplete, 1 ReadyForQuery); `
    + `COPY FROM STDIN (${count(s, 'F Copy data')} CopyData) and TO STDOUT (${count(s, 'B Copy data')} CopyData); EmptyQuery; Notice; error 22012`;
};

// Password authentication: a wrong password (28P01), then the right one and a small session.
async function authSession(port, user) {
  const bad = new pg.Client({ host: HOST, port, user, password: 'wrong-password', database: 'shop', ssl: false });
  await expectError(bad.connect(), '28P01', `${user} with a wrong password`);
  const c = await pgConnect(port, { user, password: PASSWORDS[user], application_name: `tapwire-${user}` });
  try {
    const r = await c.query('SELECT current_user AS who, count(*) AS n FROM orders');
    check(r.rows[0].who === user, `${user}: current_user`);
    await c.query('SELECT id, customer, total FROM orders WHERE id = $1', [2]);
  } finally {
    await c.end();
  }
}
cases['md5-auth'] = (port) => authSession(port, 'app_md5');
cases['scram-auth'] = (port) => authSession(port, 'app_scram');
const AUTH_MD5 = '5';
const AUTH_SASL = '10';
const AUTH_SASL_CONTINUE = '11';
const AUTH_SASL_FINAL = '12';
const authTypes = (s) => of(s, 'Authentication request').map((m) => get(m, 'pgsql.authtype'));
verify['md5-auth'] = (file, port, s) => {
  const types = authTypes(s);
  check(types.join() === `${AUTH_MD5},${AUTH_MD5},0`, `AuthenticationMD5Password twice, AuthenticationOk once (got ${types.join()})`);
  const salts = of(s, 'Authentication request').map((m) => get(m, 'pgsql.salt')).filter(Boolean);
  const pw = of(s, 'Password message').map((m) => get(m, 'pgsql.password'));
  check(pw.length === 2 && pw.every((p) => /^md5[0-9a-f]{32}$/.test(p)), `2 PasswordMessages "md5<hex>" (got ${pw.join()})`);
  check(sqlstates(s).join() === '28P01', `one error 28P01 (got ${sqlstates(s).join()})`);
  return `AuthenticationMD5Password x2 (salts ${salts.join(', ')}), PasswordMessage "md5…" x2, 28P01 for the wrong one, `
    + `then AuthenticationOk; ${count(s, 'F Simple query')} Query, ${count(s, 'F Parse')} Parse`;
};
verify['scram-auth'] = (file, port, s) => {
  const types = authTypes(s);
  const want = [AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL, '0'];
  check(types.join() === want.join(), `SASL, SASLContinue (wrong password), SASL, SASLContinue, SASLFinal, Ok (got ${types.join()})`);
  const mechs = of(s, 'Authentication request').flatMap((m) => all(m, 'pgsql.auth.sasl.mech'));
  check(mechs.includes('SCRAM-SHA-256'), `SCRAM-SHA-256 offered (got ${mechs.join()})`);
  check(sqlstates(s).join() === '28P01', `one error 28P01 (got ${sqlstates(s).join()})`);
  const fe = Object.entries(s.counts).filter(([k]) => k.startsWith('F ') && /SASL|Password/i.test(k)).map(([k, c]) => `${k.slice(2)} ${c}`);
  return `AuthenticationSASL (${[...new Set(mechs)].join(', ')}) / SASLContinue / SASLFinal / Ok; client: ${fe.join(', ')}; `
    + '28P01 for the wrong password';
};

// A long query cancelled from a second connection with the first one's BackendKeyData.
cases.cancel = async (port) => {
  const w = await Wire.connect(port, { user: 'postgres', database: 'shop', application_name: 'tapwire-cancel' });
  try {
    w.send(msg.query('SELECT pg_sleep(5)'));
    await sleep(300);
    const t0 = Date.now();
    await sendCancel(port, w.pid, w.secretKey);
    const r = await w.until('Z');
    const err = r.find((m) => m.type === 'E');
    check(err && fields(err.body).C === '57014', `cancel: 57014 query_canceled (got ${r.map(describe).join(' ')})`);
    check(Date.now() - t0 < 2000, 'cancel: the query stopped early');
    w.send(msg.query("SELECT 'still connected' AS status"));
    await w.until('Z');
  } finally {
    await w.end();
  }
};
verify.cancel = (file, port, s) => {
  const [key] = of(s, 'Backend key data');
  const cancels = of(s, 'Cancel request');
  check(cancels.length === 1, 'one CancelRequest');
  const [cancel] = cancels;
  check(get(key, 'pgsql.pid') === get(cancel, 'pgsql.pid') && get(key, 'pgsql.key') === get(cancel, 'pgsql.key'),
    'the CancelRequest carries the BackendKeyData pid and key');
  check(cancel.stream !== key.stream, 'the CancelRequest is on a second connection');
  check(sqlstates(s).join() === '57014', `error 57014 (got ${sqlstates(s).join()})`);
  return `CancelRequest (pid ${get(cancel, 'pgsql.pid')}) on a 2nd connection = BackendKeyData of the 1st; `
    + '57014 "canceling statement due to user request"; the connection then runs another query';
};

// pgbench (tables made by `pgbench -i -s 1` during setup, outside the capture).
function pgbench(mode) {
  return async (port) => {
    const p = startChild(join(PGBIN, 'pgbench'), ['-h', HOST, '-p', String(port), '-U', 'postgres', '-M', mode, '-t', '50', '-c', '2',
      '--random-seed=20250304', 'bench']);
    const { code } = await p.exited;
    if (code !== 0) throw new Error(`pgbench exited ${code}:\n${p.output()}`);
    check(/number of transactions actually processed: 100\/100/.test(p.output()), `pgbench ${mode}: 100/100 transactions`);
  };
}
cases['pgbench-simple'] = pgbench('simple');
cases['pgbench-extended'] = pgbench('extended');
const connections = (s) => new Set(of(s, 'Startup message').map((m) => m.stream)).size;
verify['pgbench-simple'] = (file, port, s) => {
  check(count(s, 'F Simple query') >= 700 && count(s, 'F Parse') === 0, `>= 700 Query, no Parse (got ${count(s, 'F Simple query')}, ${count(s, 'F Parse')})`);
  return `${count(s, 'F Simple query')} Query, ${count(s, 'B Command completion')} CommandComplete, ${connections(s)} connections`;
};
verify['pgbench-extended'] = (file, port, s) => {
  check(count(s, 'F Parse') >= 700 && count(s, 'F Bind') >= 700 && count(s, 'F Sync') >= 700, 'extended protocol per statement');
  return `${count(s, 'F Parse')} Parse, ${count(s, 'F Bind')} Bind, ${count(s, 'F Execute')} Execute, ${count(s, 'F Sync')} Sync, `
    + `${count(s, 'F Simple query')} Query (pgbench's own setup), ${connections(s)} connections`;
};

// Not PostgreSQL: a MySQL protocol v10 handshake on port 5432 (synthetic, see fake-mysql.mjs).
cases['mysql-on-5432'] = async (port) => {
  const server = await startFakeMysql(port, HOST);
  try {
    await runFakeMysqlClient(port, HOST);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
};
verify['mysql-on-5432'] = (file, port) => {
  const greeting = tsharkFields(file, port, 'mysql.protocol', ['mysql.protocol', 'mysql.version', 'mysql.thread_id'], 'mysql');
  check(greeting.length === 1 && greeting[0][0][0] === '10' && greeting[0][1][0] === '8.0.36', 'tshark -d ...,mysql: a v10 Server Greeting "8.0.36"');
  const login = values(file, port, 'mysql.user', 'mysql.user', 'mysql');
  check(login.join() === 'app', `tshark: a Login Request for user app (got ${login.join()})`);
  const ok = tsharkFields(file, port, 'mysql.response_code == 0x00', ['frame.number'], 'mysql').length;
  const quit = tsharkFields(file, port, 'mysql.command == 1', ['frame.number'], 'mysql').length;
  check(ok === 1 && quit === 1, 'an OK response and COM_QUIT');
  // as PostgreSQL (tshark's default for 5432) the bytes make no sense
  const bad = execFileSync('tshark', ['-r', file, '-Y', 'pgsql && (_ws.malformed || _ws.expert)', '-T', 'fields', '-e', 'frame.number'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n').filter(Boolean).length;
  const asPg = summarize(file, port);
  return `as mysql: Server Greeting (protocol 10, 8.0.36), Login Request (user app), OK, COM_QUIT; `
    + `as tshark's default pgsql: ${asPg.pgsqlPackets} packets "decoded" (${formatCounts(asPg.counts) || 'nothing'}), ${bad} malformed/expert`;
};

// ---------------------------------------------------------------------------------------------
function verifyCase(name, file) {
  const port = PORTS[name];
  const s = summarize(file, port);
  const note = verify[name](file, port, s);
  console.log(`  ${name}: port ${port}, ${s.packets} packets, ${s.pgsqlPackets} with pgsql\n`
    + `    messages: ${formatCounts(s.counts)}\n    ${note}`);
}

async function setup() {
  const cluster = createCluster({ hba: HBA });
  const server = await startServer(cluster, SETUP_PORT);
  try {
    psqlSocket(cluster, SETUP_PORT, 'postgres', readFileSync(join(here, 'postgres', 'seed.sql'), 'utf8'));
    execFileSync(join(PGBIN, 'pgbench'), ['-i', '-s', '1', '-q', '-h', cluster.dir, '-p', String(SETUP_PORT), '-U', 'postgres', 'bench'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    await server.stop('SIGINT');
  }
  return cluster;
}

async function main() {
  requireTools('tcpdump', 'capinfos', 'tshark', `${PGBIN}/psql`, `${PGBIN}/pgbench`);
  const args = process.argv.slice(2);
  const verifyOnly = args[0] === '--verify';
  if (verifyOnly) args.shift();
  const outDir = args[0] ?? 'pcaps/postgres';
  const wanted = args.slice(1);
  const names = wanted.length ? wanted : Object.keys(PORTS);
  for (const name of names) if (!cases[name]) throw new Error(`unknown case ${name} (cases: ${Object.keys(PORTS).join(', ')})`);
  let cluster;
  if (!verifyOnly) {
    mkdirSync(outDir, { recursive: true });
    if (names.some(NEEDS_POSTGRES)) cluster = await setup();
  }
  for (const name of names) {
    const file = join(outDir, `${name}.pcap`);
    const port = PORTS[name];
    if (!verifyOnly) {
      // an interrupt ends the process before capture() can remove its FILE.tmp
      const onExit = () => rmSync(`${file}.tmp`, { force: true });
      process.on('exit', onExit);
      const server = NEEDS_POSTGRES(name) ? await startServer(cluster, port) : null;
      try {
        await capture(file, `tcp port ${port} and host ${HOST}`, () => cases[name](port));
      } finally {
        await server?.stop('SIGINT');
        process.off('exit', onExit);
      }
    }
    verifyCase(name, file);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record postgres: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
