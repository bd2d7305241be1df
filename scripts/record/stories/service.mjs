// The small service kit of the verifier stories (scripts/record/stories/*.mjs): node:http servers
// and clients, and a PostgreSQL pool, each bound to one loopback address like a pod.
//
// Every connection a service opens leaves from its own address (`from`), so tapwire can attribute a
// service's outbound calls to the inbound request it was handling (same address, time containment).
// Handlers reply only after their downstream calls are done.
//
// Service processes import this module, not ../lib.mjs: lib.mjs installs the recorder's signal
// handlers. serve() installs a service's own (SIGTERM/SIGINT: close the server, run onClose, exit 0).
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as wait } from 'node:timers/promises';
import pg from 'pg';
export { prngBytes } from '../prng.mjs';

export { wait };

/** The test client's address: the driver of every story. */
export const DRIVER = '127.0.0.1';

/** A keep-alive agent with one socket: every call through it shares one connection. */
export const keepAliveAgent = () => new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One HTTP/1.1 call from address `from` to `to` ({ host, port }). opts: headers, body (an object is
 * sent as JSON, a string as it is), agent (default: node's global agent; false: a new connection
 * with `Connection: close`). Resolves { status, headers, text, json() }; rejects on a socket error.
 */
export async function call(from, to, method, path, { headers = {}, body, agent } = {}) {
  const data = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const h = { Accept: 'application/json', ...headers };
  if (data) Object.assign(h, { 'Content-Type': 'application/json', 'Content-Length': data.length });
  const req = http.request({ host: to.host, port: to.port, localAddress: from, method, path, agent, headers: h });
  req.end(data);
  const [res] = await once(req, 'response');
  let text = '';
  res.setEncoding('utf8');
  for await (const chunk of res) text += chunk;
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

/**
 * Run a story's driver: fn(send) makes the calls to `to` from 127.0.0.1, over one keep-alive
 * connection, one at a time. send(method, path, opts, expect = 200) fails on another status and
 * pauses `pauseMs` after each call, so requests stand apart. The connection is closed at the end.
 */
export async function drive(to, fn, { pauseMs = 20 } = {}) {
  const agent = keepAliveAgent();
  try {
    await fn(async (method, path, opts = {}, expect = 200) => {
      const r = await call(DRIVER, to, method, path, { ...opts, agent });
      if (r.status !== expect) throw new Error(`${method} ${path} -> ${r.status}, expected ${expect}: ${r.text}`);
      await wait(pauseMs);
      return r;
    });
  } finally {
    agent.destroy();
  }
}

/** Send a response: an object as JSON, a string as it is; headers may override Content-Type. */
export function reply(res, status, body, headers = {}) {
  const data = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers, 'Content-Length': data.length });
  res.end(data);
}

/**
 * Listen `handler(req, res, url, body)` on { host, port } and print "<name> listening on …" (the
 * recorder waits for it). url is the parsed request URL, body the request body as a string. A
 * handler that throws answers 500.
 */
export async function serve(name, { host, port }, handler, { onClose } = {}) {
  const server = http.createServer(async (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    for await (const chunk of req) body += chunk;
    try {
      await handler(req, res, new URL(req.url, `http://${host}:${port}`), body);
    } catch (e) {
      console.error(`${name}: ${req.method} ${req.url}:`, e);
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
    }
  });
  server.listen(port, host);
  await once(server, 'listening');
  console.log(`${name} listening on ${host}:${port}`);
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.once(sig, async () => {
      server.close();
      server.closeAllConnections();
      await onClose?.();
      process.exit(0);
    });
  }
  return server;
}

/**
 * A one-connection PostgreSQL pool to database `shop` on 127.0.0.4:$DEMO_PG_PORT (default 5432),
 * connecting from `from`. It connects on its first query, so the startup exchange is in the capture.
 */
export function database(from, applicationName) {
  return new pg.Pool({
    host: '127.0.0.4',
    port: Number(process.env.DEMO_PG_PORT ?? 5432),
    user: 'postgres',
    database: 'shop',
    application_name: applicationName,
    ssl: false,
    max: 1,
    // pg calls stream.connect(port, host): bind our own address first
    stream: () => {
      const socket = new net.Socket();
      const connect = socket.connect.bind(socket);
      socket.connect = (port, host) => connect({ port, host, localAddress: from });
      return socket;
    },
  });
}
