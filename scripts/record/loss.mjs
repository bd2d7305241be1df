// Records pcaps/loss/*.pcap: captures whose every response names its request, for the loss and
// reordering harness (`npm run loss`, bench/loss/). Real traffic on loopback, tcpdump -s 0.
//
//   node scripts/record/loss.mjs [OUT_DIR] [case ...]      (default OUT_DIR: pcaps/loss, all cases)
//
// Cases (each its own server port on 127.0.0.1, its own capture):
//   http1     18501  node:http echo server; keep-alive clients on 4 connections (GET and POST, bodies
//                    of 0..6000 bytes, some written in several segments, some chunked responses) and
//                    3 raw sockets pipelining 6 requests per write
//   http2     18502  node:http2 echo server (h2c); 3 sessions of 500 streams, 4 in flight each
//   grpc      18503  @grpc/grpc-js Echo service (scripts/record/loss/echo.proto): unary and server
//                    streaming, 2 channels (2 connections), 4 calls in flight each
//   postgres  18504  throwaway PostgreSQL 15; 3 `pg` clients (extended protocol with parameters,
//                    simple protocol without) and one raw v3 client pipelining 8 Bind/Execute per Sync
// The id: HTTP/1 and HTTP/2 send it in the query (?id=N), in an x-request-id header, or both, and
// POST bodies start with `id=N;`; the servers answer with x-request-id: N and a body starting
// `id=N;`. gRPC sends it in the request message (field id) and in x-request-id metadata; replies echo
// both. PostgreSQL selects it: `SELECT $1::int AS id, repeat('x', $2) AS pad` (or the literal in a
// simple query), so the first column of the row is the id. Every client checks every answer's id.
// Choices (methods, sizes, which id carrier) come from a PRNG with a fixed seed, so re-records are
// similar; timing, ports and interleaving are not fixed.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, URLSearchParams } from 'node:url';
import { mkdirSync } from 'node:fs';
import grpcJs from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import pg from 'pg';
import { mulberry32 } from './prng.mjs';
import { capture, requireTools, listen, closeServer, sleep } from './lib.mjs';
import { createCluster, startServer as startPostgres, HOST } from './postgres/cluster.mjs';
import { Wire, msg } from './postgres/wire.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const PROTO = join(here, 'loss', 'echo.proto');
const PORTS = { http1: 18501, http2: 18502, grpc: 18503, postgres: 18504 };
const SEED = 0x10557;

const prng = mulberry32;
const pick = (rnd, n) => Math.floor(rnd() * n);
/** Body/pad sizes: mostly small, some a few KiB, a few large. */
function size(rnd, large = 6000) {
  const r = rnd();
  if (r < 0.6) return pick(rnd, 200);
  if (r < 0.92) return 200 + pick(rnd, 1800);
  return 2000 + pick(rnd, large - 2000);
}
const pad = (n, ch = 'r') => ch.repeat(n);
const expect = (cond, what) => { if (!cond) throw new Error(`loss recorder: ${what}`); };

/** Run fn(i) for i in [0, n) with at most `limit` in flight. */
async function pool(n, limit, fn) {
  let next = 0;
  const worker = async () => { while (next < n) await fn(next++); };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
function http1Server() {
  return http.createServer({ keepAliveTimeout: 60000 }, async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const u = new URL(req.url, 'http://h');
    const id = u.searchParams.get('id') ?? req.headers['x-request-id'] ?? '';
    const body = Buffer.from(`id=${id};${pad(Number(u.searchParams.get('size') ?? 0))}`);
    res.setHeader('x-request-id', id);
    res.setHeader('content-type', 'text/plain');
    if (u.searchParams.get('chunked')) {
      // no content-length: chunked; each part its own write (and segment)
      const cut = [0, Math.floor(body.length / 3), Math.floor((2 * body.length) / 3), body.length];
      for (let i = 0; i < 3; i++) await new Promise((r) => res.write(body.subarray(cut[i], cut[i + 1]), r));
      res.end();
    } else {
      res.setHeader('content-length', body.length);
      res.end(body);
    }
  });
}

/** One request on the keep-alive agent; the POST body written in 1..3 writes (segments). */
function http1Request(agent, port, t) {
  return new Promise((resolveP, reject) => {
    const q = new URLSearchParams();
    if (t.carrier !== 'header') q.set('id', String(t.id));
    q.set('size', String(t.size));
    if (t.chunked) q.set('chunked', '1');
    const headers = t.carrier !== 'query' ? { 'x-request-id': String(t.id) } : {};
    const body = t.method === 'POST' ? Buffer.from(`id=${t.id};${pad(t.bodySize, 'q')}`) : null;
    if (body) headers['content-length'] = body.length;
    const req = http.request({ host: '127.0.0.1', port, agent, method: t.method, path: `/echo?${q}`, headers }, (res) => {
      const got = [];
      res.on('data', (c) => got.push(c));
      res.on('end', () => {
        const text = Buffer.concat(got).toString();
        if (res.headers['x-request-id'] !== String(t.id) || !text.startsWith(`id=${t.id};`)) reject(new Error(`http1: id ${t.id} answered ${res.headers['x-request-id']}`));
        else resolveP();
      });
    });
    req.on('error', reject);
    (async () => {
      if (body) {
        const parts = body.length > 1000 ? 1 + pick(t.rnd, 3) : 1;
        const step = Math.ceil(body.length / parts);
        for (let o = 0; o < body.length; o += step) await new Promise((r) => req.write(body.subarray(o, o + step), r));
      }
      req.end();
    })().catch(reject);
  });
}

/** Raw pipelining: `batches` writes of `per` requests each, waiting for all answers between writes. */
async function http1Pipelined(port, ids, rnd, batches, per) {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.setNoDelay(true);
  await new Promise((r, j) => { s.once('connect', r); s.once('error', j); });
  let buf = '';
  let waiting = null;
  s.on('data', (d) => { buf += d.toString('latin1'); waiting?.(); });
  for (let b = 0; b < batches; b++) {
    const want = [];
    let out = '';
    for (let k = 0; k < per; k++) {
      const id = ids.next();
      want.push(id);
      const n = size(rnd, 3000);
      if (rnd() < 0.4) {
        const body = `id=${id};${pad(pick(rnd, 300), 'q')}`;
        out += `POST /echo?id=${id}&size=${n} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nx-request-id: ${id}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
      } else {
        out += `GET /echo?id=${id}&size=${n} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
      }
    }
    buf = '';
    s.write(out);
    await new Promise((r) => {
      waiting = () => {
        const heads = buf.split('HTTP/1.1 200 OK').length - 1;
        if (heads === per && want.every((id) => buf.includes(`id=${id};`))) { waiting = null; r(); }
      };
      waiting();
    });
    const echoed = [...buf.matchAll(/x-request-id: (\d+)/g)].map((m) => Number(m[1]));
    expect(echoed.join() === want.join(), `http1 pipelined: sent ${want} got ${echoed}`);
  }
  s.end();
  await new Promise((r) => s.once('close', r));
}

function idCounter(start = 1) {
  let n = start;
  return { next: () => n++ };
}

async function recordHttp1(out) {
  const port = PORTS.http1;
  const server = await listen(http1Server(), port);
  const rnd = prng(SEED);
  const ids = idCounter(100001);
  try {
    await capture(join(out, 'http1.pcap'), `tcp port ${port}`, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const tasks = Array.from({ length: 1100 }, () => {
        const r = rnd();
        return {
          id: ids.next(), rnd,
          method: rnd() < 0.4 ? 'POST' : 'GET',
          carrier: r < 0.4 ? 'query' : r < 0.7 ? 'header' : 'both',
          size: size(rnd), bodySize: size(rnd, 6000), chunked: rnd() < 0.15,
        };
      });
      await pool(tasks.length, 8, (i) => http1Request(agent, port, tasks[i]));
      await Promise.all([0, 1, 2].map(() => http1Pipelined(port, ids, rnd, 20, 6)));
      agent.destroy();
      await sleep(100);
    });
  } finally {
    await closeServer(server);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP/2
async function recordHttp2(out) {
  const port = PORTS.http2;
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const u = new URL(headers[':path'], 'http://h');
      const id = u.searchParams.get('id') ?? headers['x-request-id'] ?? '';
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-request-id': id });
      stream.end(`id=${id};${pad(Number(u.searchParams.get('size') ?? 0))}`);
    });
  });
  await listen(server, port);
  const rnd = prng(SEED + 2);
  const ids = idCounter(200001);
  try {
    await capture(join(out, 'http2.pcap'), `tcp port ${port}`, async () => {
      await Promise.all([0, 1, 2].map(async () => {
        const session = http2.connect(`http://127.0.0.1:${port}`);
        await new Promise((r, j) => { session.once('connect', r); session.once('error', j); });
        const tasks = Array.from({ length: 500 }, () => ({
          id: ids.next(), post: rnd() < 0.35, carrier: rnd(), size: size(rnd, 9000), bodySize: size(rnd, 5000),
        }));
        await pool(tasks.length, 4, (i) => new Promise((resolveP, reject) => {
          const t = tasks[i];
          const q = t.carrier < 0.7 ? `id=${t.id}&size=${t.size}` : `size=${t.size}`;
          const headers = { ':method': t.post ? 'POST' : 'GET', ':path': `/echo?${q}` };
          if (t.carrier >= 0.3) headers['x-request-id'] = String(t.id);
          const req = session.request(headers, { endStream: !t.post });
          let echoed;
          const got = [];
          req.on('response', (h) => { echoed = h['x-request-id']; });
          req.on('data', (c) => got.push(c));
          req.on('end', () => {
            if (echoed !== String(t.id) || !Buffer.concat(got).toString().startsWith(`id=${t.id};`)) reject(new Error(`http2: id ${t.id} answered ${echoed}`));
            else resolveP();
          });
          req.on('error', reject);
          if (t.post) req.end(`id=${t.id};${pad(t.bodySize, 'q')}`);
        }));
        await new Promise((r) => session.close(r));
      }));
    });
  } finally {
    await closeServer(server);
  }
}

// ---------------------------------------------------------------------------------------------
// gRPC
function loadEcho() {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  return grpcJs.loadPackageDefinition(def).tapwire.loss.Echo;
}

async function recordGrpc(out) {
  const port = PORTS.grpc;
  const Echo = loadEcho();
  const server = new grpcJs.Server();
  const echoMeta = (call) => {
    const md = new grpcJs.Metadata();
    md.set('x-request-id', String(call.request.id));
    call.sendMetadata(md);
  };
  server.addService(Echo.service, {
    Unary(call, cb) {
      echoMeta(call);
      cb(null, { id: call.request.id, seq: 0, pad: Buffer.alloc(call.request.size, 0x72) });
    },
    async Stream(call) {
      echoMeta(call);
      for (let i = 0; i < call.request.count; i++) {
        call.write({ id: call.request.id, seq: i, pad: Buffer.alloc(call.request.size, 0x72) });
        await sleep(pick(Math.random, 3));
      }
      call.end();
    },
  });
  await new Promise((r, j) => server.bindAsync(`127.0.0.1:${port}`, grpcJs.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
  const rnd = prng(SEED + 3);
  const ids = idCounter(300001);
  try {
    await capture(join(out, 'grpc.pcap'), `tcp port ${port}`, async () => {
      await Promise.all([0, 1].map(async (ch) => {
        const client = new Echo(`127.0.0.1:${port}`, grpcJs.credentials.createInsecure(),
          { 'grpc.use_local_subchannel_pool': 1, 'grpc.primary_user_agent': `loss-${ch}` });
        const tasks = Array.from({ length: 650 }, () => ({
          id: ids.next(), stream: rnd() < 0.12, size: size(rnd, 5000), count: 2 + pick(rnd, 4), reqPad: size(rnd, 2500),
        }));
        await pool(tasks.length, 4, (i) => new Promise((resolveP, reject) => {
          const t = tasks[i];
          const md = new grpcJs.Metadata();
          md.set('x-request-id', String(t.id));
          const request = { id: t.id, size: t.stream ? Math.min(t.size, 600) : t.size, count: t.count, pad: Buffer.alloc(t.reqPad, 0x71) };
          if (!t.stream) {
            client.Unary(request, md, (e, reply) => {
              if (e) reject(e);
              else if (reply.id !== t.id) reject(new Error(`grpc: id ${t.id} answered ${reply.id}`));
              else resolveP();
            });
          } else {
            const call = client.Stream(request, md);
            let n = 0;
            call.on('data', (reply) => { if (reply.id !== t.id) reject(new Error(`grpc stream: id ${t.id} answered ${reply.id}`)); n++; });
            call.on('end', () => (n === t.count ? resolveP() : reject(new Error(`grpc stream ${t.id}: ${n} of ${t.count}`))));
            call.on('error', reject);
          }
        }));
        client.close();
      }));
      await sleep(100);
    });
  } finally {
    await new Promise((r) => server.tryShutdown(() => r()));
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
async function recordPostgres(out) {
  const port = PORTS.postgres;
  const cluster = createCluster();
  const pgServer = await startPostgres(cluster, port);
  const rnd = prng(SEED + 4);
  const ids = idCounter(400001);
  try {
    await capture(join(out, 'postgres.pcap'), `tcp port ${port}`, async () => {
      const viaPg = [0, 1, 2].map(async () => {
        const c = new pg.Client({ host: HOST, port, user: 'postgres', database: 'postgres', ssl: false });
        await c.connect();
        for (let i = 0; i < 380; i++) {
          const id = ids.next();
          const n = size(rnd, 5000);
          const r = rnd() < 0.7
            ? await c.query('SELECT $1::int AS id, repeat(\'x\', $2) AS pad', [id, n])
            : await c.query(`SELECT ${id} AS id, repeat('x', ${n}) AS pad`);
          expect(r.rows[0].id === id, `pg: id ${id} answered ${r.rows[0].id}`);
        }
        await c.end();
      });
      const viaWire = (async () => {
        const w = await Wire.connect(port, { user: 'postgres', database: 'postgres' });
        w.send(msg.parse('echo', 'SELECT $1::int AS id, repeat(\'x\', $2) AS pad'), msg.sync());
        await w.until('Z');
        for (let b = 0; b < 40; b++) {
          const want = [];
          const m = [];
          for (let k = 0; k < 8; k++) {
            const id = ids.next();
            want.push(id);
            m.push(msg.bind('', 'echo', [String(id), String(size(rnd, 3000))]), msg.execute());
          }
          w.send(...m, msg.sync());
          const replies = await w.until('Z');
          const rows = replies.filter((x) => x.type === 'D').map((x) => Number(x.body.toString('utf8', 6, 6 + x.body.readInt32BE(2))));
          expect(rows.join() === want.join(), `pg pipeline: sent ${want} got ${rows}`);
        }
        await w.end();
      })();
      await Promise.all([...viaPg, viaWire]);
    });
  } finally {
    await pgServer.stop('SIGINT');
  }
}

// ---------------------------------------------------------------------------------------------
const CASES = { http1: recordHttp1, http2: recordHttp2, grpc: recordGrpc, postgres: recordPostgres };

async function main() {
  requireTools('tcpdump', 'capinfos');
  const args = process.argv.slice(2);
  const out = resolve(args[0] ?? 'pcaps/loss');
  const names = args.length > 1 ? args.slice(1) : Object.keys(CASES);
  for (const n of names) expect(CASES[n], `unknown case ${n} (cases: ${Object.keys(CASES).join(', ')})`);
  mkdirSync(out, { recursive: true });
  for (const n of names) await CASES[n](out);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
