// payment-service — the flaky downstream of the demo's story 2.
//
//   node payment-service.mjs [--fail-first N]      (default N = 3)
//
// Listens on 127.0.0.3:8081. POST /payments answers 503 to the first N attempts for an order,
// then 201 with a payment id: the order-service's retries, and their spacing, show in the capture.
// The service is the same for the buggy and the fixed demo.
import http from 'node:http';

const SELF = '127.0.0.3';
const PORT = 8081;
const i = process.argv.indexOf('--fail-first');
const FAIL_FIRST = i > 0 ? Number(process.argv[i + 1]) : 3;

const attemptsByOrder = new Map();

function send(res, status, obj) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/payments') return send(res, 404, { error: 'not found' });
    if (req.headers['x-request-id']) res.setHeader('X-Request-Id', req.headers['x-request-id']);
    const { orderId, amount, currency } = JSON.parse(Buffer.concat(chunks).toString());
    const attempt = (attemptsByOrder.get(orderId) ?? 0) + 1;
    attemptsByOrder.set(orderId, attempt);
    if (attempt <= FAIL_FIRST) {
      res.setHeader('Retry-After', '1');
      return send(res, 503, { error: 'payment provider unavailable', attempt });
    }
    send(res, 201, {
      paymentId: `pay_${String(orderId).padStart(6, '0')}`, orderId, amount, currency, status: 'captured', attempt,
    });
  });
});

server.listen(PORT, SELF, () => console.log(`payment-service listening on ${SELF}:${PORT} (503 to the first ${FAIL_FIRST} attempts)`));

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); server.closeAllConnections(); process.exit(0); });
}
