// A counting HTTP proxy in front of the API server, for tests and bench/k8s/informer.mjs: the
// client speaks plain HTTP to it (a kubeconfig with server http://127.0.0.1:<port> and
// insecure-skip-tls-verify), it forwards each request over HTTPS to the API server and records
// it, so a test sees exactly what tapwire sent (a watch counts once, when it is opened). cut()
// drops every connection, as a broken network would; pause() also stops listening until resume()
// opens the same port again.
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * @typedef {{ method: string, url: string, userAgent: string, time: number, status?: number }} ProxiedRequest
 * @typedef {{ port: number, url: string, requests: ProxiedRequest[], cut(): void, pause(): Promise<void>,
 *   resume(): Promise<void>, close(): Promise<void> }} CountingProxy
 */

/**
 * @param {string} target the API server's https:// URL
 * @param {{ port?: number }} [opts]
 * @returns {Promise<CountingProxy>}
 */
export async function startProxy(target, opts = {}) {
  const up = new URL(target);
  /** @type {ProxiedRequest[]} */
  const requests = [];
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  /** @type {Set<import('node:http').ClientRequest>} */
  const upstreams = new Set();
  const server = createServer((req, res) => {
    /** @type {ProxiedRequest} */
    const entry = { method: req.method ?? 'GET', url: req.url ?? '/', userAgent: String(req.headers['user-agent'] ?? ''), time: Date.now() };
    requests.push(entry);
    const headers = { ...req.headers, host: up.host };
    delete headers.connection;
    const u = httpsRequest({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers, rejectUnauthorized: false }, (ur) => {
      entry.status = ur.statusCode;
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      // A watch may send nothing for a while: the client must see its headers now.
      res.flushHeaders();
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    upstreams.add(u);
    u.on('close', () => upstreams.delete(u));
    u.on('error', () => res.destroy());
    req.pipe(u);
    res.on('close', () => u.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (/** @type {number} */ port) => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(undefined);
    });
  });
  await listen(opts.port ?? 0);
  const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
  const cut = () => {
    for (const u of upstreams) u.destroy();
    for (const s of sockets) s.destroy();
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    cut,
    pause: () => new Promise((resolve) => {
      server.close(() => resolve(undefined));
      cut();
    }),
    resume: () => listen(port).then(() => undefined),
    close: () => new Promise((resolve) => {
      server.close(() => resolve(undefined));
      cut();
    }),
  };
}

/** A kubeconfig (YAML text) that reaches `url` with `token`. @param {string} url @param {string} token */
export function kubeconfigText(url, token) {
  return `apiVersion: v1
kind: Config
clusters: [{name: tapwire, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]
users: [{name: tapwire, user: {token: "${token}"}}]
contexts: [{name: tapwire, context: {cluster: tapwire, user: tapwire}}]
current-context: tapwire
`;
}
