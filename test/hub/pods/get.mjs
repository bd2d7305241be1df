// A client "pod": GETs each path from HOST:PORT in turn, one connection per request (so each
// exchange is its own connection), and prints what it did as one JSON line.
//   node get.mjs HOST:PORT PATH...
import http from 'node:http';

const [addr, ...paths] = process.argv.slice(2);
const i = addr.lastIndexOf(':');
const host = addr.slice(0, i), port = Number(addr.slice(i + 1));
const done = [];
for (const path of paths) {
  const status = await new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
  });
  done.push({ path, status });
}
console.log(JSON.stringify(done));
