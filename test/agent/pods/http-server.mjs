// An HTTP service "in a pod": node:http on HOST:PORT. GET /items/N answers JSON; POST /orders
// echoes the body's length. Prints "listening on" when ready.
//   node http-server.mjs HOST PORT
import http from 'node:http';

const [host, port] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const item = /^\/items\/(\d+)$/.exec(req.url)?.[1];
    const out = req.method === 'GET' && item ? { id: Number(item), name: `item ${item}` }
      : req.method === 'POST' && req.url === '/orders' ? { received: body.length } : undefined;
    res.writeHead(out ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out ?? { error: 'not found' }));
  });
});
server.listen(Number(port), host, () => console.log(`listening on ${host}:${port}`));
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); });
