// HTTP/2 and gRPC over TLS in one process, both ends (issue 17's tests): a node:http2 secure server
// with ALPN h2 and a client GET, then a grpc-js server with TLS credentials and a unary call.
//   node tls-h2.mjs CERT KEY H2_PORT GRPC_PORT     (prints one JSON line with what it did)
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { loadShop, shopImplementation } from '../../../scripts/record/grpc/shop.mjs';

const [certFile, keyFile, h2Port, grpcPort] = process.argv.slice(2);
const cert = readFileSync(certFile), key = readFileSync(keyFile);

const server = http2.createSecureServer({ cert, key, allowHTTP1: false }, (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ path: req.url }));
});
await new Promise((r) => server.listen(Number(h2Port), '127.0.0.1', r));
const session = http2.connect(`https://127.0.0.1:${h2Port}`, { ca: cert, servername: 'localhost' });
const body = await new Promise((resolve, reject) => {
  const req = session.request({ ':path': '/h2/items/7' });
  let b = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (b += d));
  req.on('end', () => resolve(b));
  req.on('error', reject);
  req.end();
});
session.close();
server.close();

const { grpc, Orders, service } = loadShop();
const gs = new grpc.Server();
gs.addService(service, shopImplementation());
await new Promise((resolve, reject) => gs.bindAsync(`127.0.0.1:${grpcPort}`, grpc.ServerCredentials.createSsl(null, [{ cert_chain: cert, private_key: key }]), (e) => (e ? reject(e) : resolve())));
const c = new Orders(`127.0.0.1:${grpcPort}`, grpc.credentials.createSsl(cert), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
const order = await new Promise((resolve, reject) => c.GetOrder({ id: 42 }, (e, r) => (e ? reject(e) : resolve(r))));
c.close();
await new Promise((r) => gs.tryShutdown(r));
console.log(JSON.stringify({ h2: body, grpc: order?.id ?? null }));
