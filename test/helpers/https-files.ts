import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A Node https server (OpenSSL linked into node: probed by the TLS uprobes) serving the files of
 * `dir` on 127.0.0.1:`port`, with a self-signed certificate made there (k.pem, c.pem, CN=localhost)
 * and `orders.json` = {"id":42}. A query string is ignored. Resolves once it listens.
 */
export async function startHttpsFiles(dir: string, port: number): Promise<ChildProcess> {
  spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  writeFileSync(join(dir, 'orders.json'), '{"id":42}\n');
  const serve = `const https = require('node:https'), fs = require('node:fs');
    https.createServer({ key: fs.readFileSync('k.pem'), cert: fs.readFileSync('c.pem') }, (q, s) => {
      const body = fs.readFileSync('.' + q.url.split('?')[0]);
      s.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }); s.end(body);
    }).listen(${port}, '127.0.0.1', () => console.log('listening'));`;
  const server = spawn(process.execPath, ['-e', serve], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`https file server exited ${code}`)));
  });
  return server;
}
