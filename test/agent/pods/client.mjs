// The client "pod": makes a known set of calls to the three services and prints, as one JSON line,
// what it did — the truth the agent's API is compared with.
//   node client.mjs HTTP_HOST:PORT GRPC_HOST:PORT PG_HOST:PORT
import http from 'node:http';
import pg from 'pg';
import { client as grpcClient, unary } from '../../../scripts/record/grpc/shop.mjs';

const [httpAddr, grpcAddr, pgAddr] = process.argv.slice(2).map((a) => { const i = a.lastIndexOf(':'); return { host: a.slice(0, i), port: Number(a.slice(i + 1)) }; });
const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
const done = { http: [], grpc: [], postgres: [] };

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...httpAddr, method, path, agent, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (let i = 1; i <= 20; i++) {
  const status = await request('GET', `/items/${i}`);
  done.http.push({ method: 'GET', path: `/items/${i}`, status });
}
for (let i = 1; i <= 5; i++) {
  const status = await request('POST', '/orders', JSON.stringify({ order: i, lines: [1, 2, 3] }));
  done.http.push({ method: 'POST', path: '/orders', status });
}
const c = grpcClient(grpcAddr.port, {}, grpcAddr.host);
for (let i = 1; i <= 10; i++) {
  await unary(c, 'GetOrder', { id: `ord-${i}` });
  done.grpc.push({ path: '/tapwire.demo.Orders/GetOrder', status: 0 });
}
c.close();
const db = new pg.Client({ ...pgAddr, user: 'postgres', database: 'postgres' });
await db.connect();
for (let i = 1; i <= 8; i++) {
  await db.query('SELECT $1::int AS n, now() AS at', [i]);
  done.postgres.push({ query: 'SELECT $1::int AS n, now() AS at', params: [String(i)] });
}
await db.end();
agent.destroy();
console.log(JSON.stringify(done));
