// HTTP/1.1 server for the benchmark capture (bench/record.mjs): plain node:http with keep-alive,
// serving a realistic mix of responses selected by path (the client, wrk + mix.lua, picks paths):
//   /small   ~300 B JSON            (Content-Length)
//   /medium  ~4 KB JSON             (Content-Length)
//   /large   ~32 KB HTML            (chunked: written in two parts, like a streamed template)
//   /blob    256 KB octet-stream    (Content-Length)
// Bodies are generated once at start-up from fixed data, so every run serves the same bytes.
//
//   node bench/servers/http1.mjs [--port 18900] [--host 127.0.0.1] [--tls <dir with key.pem and cert.pem>]
// With --tls it serves the same over HTTPS (bench:live --tls: the agent's TLS uprobes under load).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const PORT = Number(arg('--port', 18900));
const HOST = arg('--host', '127.0.0.1');
const TLS = arg('--tls', undefined);

const item = (i) => ({
  id: 1000 + i, sku: `SKU-${String(i * 7919 % 100000).padStart(5, '0')}`, name: `Widget model ${i}`,
  price: Math.round((i * 37 % 500) * 100 + 99) / 100, currency: 'EUR', inStock: i % 3 !== 0,
  tags: ['hardware', i % 2 ? 'outdoor' : 'indoor'], updatedAt: `2025-03-0${1 + (i % 9)}T10:00:00Z`,
});
const small = Buffer.from(JSON.stringify({
  status: 'ok', user: { id: 42, name: 'alice', plan: 'pro' }, cart: { items: 3, total: 129.97, currency: 'EUR' },
  flags: { newCheckout: true, darkMode: false, betaSearch: true }, requestTtlMs: 1500, region: 'eu-west-1',
  server: 'catalogue-7f9c4d', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', generatedAt: '2025-03-04T10:00:00Z',
}));
const medium = Buffer.from(JSON.stringify({ page: 1, pageSize: 24, total: 1873, items: Array.from({ length: 24 }, (_, i) => item(i)) }));
const rows = Array.from({ length: 380 }, (_, i) => {
  const it = item(i);
  return `<tr><td>${it.id}</td><td>${it.sku}</td><td>${it.name}</td><td>${it.price} ${it.currency}</td></tr>\n`;
}).join('');
const large = Buffer.from(`<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Catalogue</title>
<link rel="stylesheet" href="/static/app.css"></head>\n<body><h1>Catalogue</h1>\n<table>\n${rows}</table>\n</body></html>\n`);
const blob = Buffer.alloc(256 * 1024);
for (let i = 0, x = 2463534242; i < blob.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; blob[i] = x & 0xff; }

const etag = (b) => `"${createHash('sha1').update(b).digest('hex').slice(0, 20)}"`;
const routes = {
  '/small': { body: small, type: 'application/json', etag: etag(small) },
  '/medium': { body: medium, type: 'application/json', etag: etag(medium) },
  '/large': { body: large, type: 'text/html; charset=utf-8', etag: etag(large), chunked: true },
  '/blob': { body: blob, type: 'application/octet-stream', etag: etag(blob) },
};

const handler = (req, res) => {
  const q = req.url.indexOf('?');
  const r = routes[q < 0 ? req.url : req.url.slice(0, q)];
  if (!r) { res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 9 }); res.end('not found'); return; }
  res.setHeader('Content-Type', r.type);
  res.setHeader('Cache-Control', 'private, max-age=0');
  res.setHeader('ETag', r.etag);
  res.setHeader('X-Request-Id', `bench-${req.socket.remotePort}-${req.url.length}`);
  if (r.chunked) {
    const half = r.body.length >> 1;
    res.write(r.body.subarray(0, half));
    res.end(r.body.subarray(half));
  } else {
    res.setHeader('Content-Length', r.body.length);
    res.end(r.body);
  }
};
const server = TLS
  ? https.createServer({ key: readFileSync(`${TLS}/key.pem`), cert: readFileSync(`${TLS}/cert.pem`) }, handler)
  : http.createServer(handler);
server.keepAliveTimeout = 65_000;
server.listen(PORT, HOST, () => {
  console.log(`bench http1${TLS ? ' (https)' : ''} server listening on ${HOST}:${PORT} (small ${small.length} B, medium ${medium.length} B, large ${large.length} B, blob ${blob.length} B)`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { server.close(); server.closeAllConnections(); process.exit(0); });
