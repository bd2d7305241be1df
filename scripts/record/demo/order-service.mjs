// order-service — the service of tapwire's two demo stories.
//
//   node order-service.mjs [--fixed]
//
// Like a pod, it has its own address, 127.0.0.2: it listens on 127.0.0.2:8080, and every
// connection it opens (to PostgreSQL and to payment-service) leaves from 127.0.0.2 too.
//
//   GET  /orders/:id   reads the order, through an in-memory cache, from PostgreSQL (127.0.0.4:5432)
//   POST /checkout     charges the order through payment-service (127.0.0.3:8081), retrying on 5xx
//
// Three bugs, on purpose, that tapwire finds in the capture (`--fixed` runs the corrected code):
//   1. the cache never hits: its key includes the per-request X-Request-Id, so every GET queries
//      the database (12 requests -> 12 identical SELECTs);
//   2. retries do not back off: the policy says exponential backoff (200, 400, 800 ms), but the
//      code waits a constant 200 ms between attempts;
//   3. the customer's bearer token is forwarded to payment-service, which should only ever see
//      order-service's own credential (the fixed code sends that, and the customer id).
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';

const FIXED = process.argv.includes('--fixed');
const SELF = '127.0.0.2';
const PORT = 8080;
const PAYMENTS = { host: '127.0.0.3', port: 8081 };
const DB = { host: '127.0.0.4', port: Number(process.env.DEMO_PG_PORT ?? 5432), user: 'postgres', database: 'shop' };

// Retry policy for calls to payment-service: at most 4 attempts, exponential backoff 200, 400, 800 ms.
const retryPolicy = { maxAttempts: 4, baseDelayMs: 200, multiplier: 2 };
// order-service's own credential for payment-service (a fake, for the recording).
const SERVICE_TOKEN = 'svc-order-service-5f2c9a1e7b';

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one pooled connection, opened from our own address.

/** A socket for `pg` whose connect() binds our address first (pg calls socket.connect(port, host)). */
class SocketFromSelf extends net.Socket {
  connect(port, host) { return super.connect({ port, host, localAddress: SELF }); }
}
const db = new pg.Pool({
  ...DB,
  max: 1,
  ssl: false,
  application_name: 'order-service',
  stream: () => new SocketFromSelf(),
});

// ---------------------------------------------------------------------------------------------
// The order cache.
const cache = new Map();

function cacheKey(req, orderId) {
  if (FIXED) return `order:${orderId}`;
  // BUG (story 1): the key is built from the whole request, "so different representations are
  // cached apart" — but the headers include X-Request-Id, unique per request, so no two
  // requests ever share a key and every request goes to the database.
  return JSON.stringify({ url: req.url, headers: req.headers });
}

async function getOrder(req, orderId) {
  const key = cacheKey(req, orderId);
  if (cache.has(key)) return cache.get(key);
  const { rows } = await db.query({
    text: 'SELECT id, customer, total, status FROM orders WHERE id = $1',
    values: [orderId],
  });
  const order = rows[0] ?? null;
  if (order) cache.set(key, order);
  return order;
}

// ---------------------------------------------------------------------------------------------
// Calls to payment-service, with retries.
const paymentsAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function backoffDelay(retry) { // retry = 1 before the 2nd attempt, 2 before the 3rd, ...
  if (FIXED) return retryPolicy.baseDelayMs * retryPolicy.multiplier ** (retry - 1); // 200, 400, 800
  // BUG (story 2): reads `retryPolicy.factor`, which does not exist; the `?? 1` hides the typo,
  // so every retry waits the same 200 ms instead of 200, 400, 800 ms.
  return retryPolicy.baseDelayMs * (retryPolicy.factor ?? 1) ** (retry - 1);
}

function postPayment(body, headers) {
  return new Promise((resolve, reject) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request({
      ...PAYMENTS,
      localAddress: SELF,
      agent: paymentsAgent,
      method: 'POST',
      path: '/payments',
      headers: { ...headers, 'Content-Type': 'application/json', 'Content-Length': data.length },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function chargeWithRetry(body, headers) {
  for (let attempt = 1; ; attempt++) {
    const res = await postPayment(body, headers);
    if (res.status < 500 || attempt === retryPolicy.maxAttempts) return { ...res, attempts: attempt };
    await new Promise((r) => setTimeout(r, backoffDelay(attempt)));
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP API.
function send(res, status, obj) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { try { resolve(JSON.parse(Buffer.concat(chunks).toString() || '{}')); } catch (e) { reject(e); } });
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    const requestId = req.headers['x-request-id'];
    if (requestId) res.setHeader('X-Request-Id', requestId);
    const m = /^\/orders\/(\d+)$/.exec(req.url);
    if (req.method === 'GET' && m) {
      const order = await getOrder(req, Number(m[1]));
      return order ? send(res, 200, order) : send(res, 404, { error: 'order not found' });
    }
    if (req.method === 'POST' && req.url === '/checkout') {
      const { orderId, amount, currency } = await readJson(req);
      const forward = FIXED
        ? { 'X-Request-Id': requestId, Authorization: `Bearer ${SERVICE_TOKEN}`, 'X-Customer-Id': '7' }
        : { 'X-Request-Id': requestId, Authorization: req.headers.authorization };
      const payment = await chargeWithRetry({ orderId, amount, currency }, forward);
      if (payment.status !== 201) return send(res, 502, { error: 'payment failed', attempts: payment.attempts });
      return send(res, 200, { orderId, status: 'paid', paymentId: payment.body.paymentId, attempts: payment.attempts });
    }
    send(res, 404, { error: 'not found' });
  } catch (e) {
    console.error('order-service:', e);
    send(res, 500, { error: 'internal error' });
  }
});

server.listen(PORT, SELF, () => {
  console.log(`order-service listening on ${SELF}:${PORT} (${FIXED ? 'fixed' : 'buggy'})`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections();
    paymentsAgent.destroy();
    db.end().finally(() => process.exit(0));
  });
}
