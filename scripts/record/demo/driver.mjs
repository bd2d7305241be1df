// driver — the test traffic of the demo stories, from 127.0.0.1 to order-service (127.0.0.2:8080).
//
//   node driver.mjs
//
// Story 1: 12 × GET /orders/42, one keep-alive connection, each with its own X-Request-Id.
// Story 2: POST /checkout for order 42 (order-service then calls payment-service, with retries).
import http from 'node:http';

const ORDER_SERVICE = { host: '127.0.0.2', port: 8080 };
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const AUTH = 'Bearer demo-secret-token';

function call(method, path, requestId, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({
      ...ORDER_SERVICE,
      localAddress: '127.0.0.1',
      agent,
      method,
      path,
      headers: {
        Accept: 'application/json',
        Authorization: AUTH,
        'X-Request-Id': requestId,
        ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const id = (n) => `req-${String(n).padStart(4, '0')}`;

for (let n = 1; n <= 12; n++) {
  const r = await call('GET', '/orders/42', id(n));
  if (r.status !== 200) throw new Error(`GET /orders/42 -> ${r.status} ${r.body}`);
  await new Promise((resolve) => setTimeout(resolve, 25));
}
const checkout = await call('POST', '/checkout', id(13), { orderId: 42, amount: 99.5, currency: 'EUR' });
if (checkout.status !== 200) throw new Error(`POST /checkout -> ${checkout.status} ${checkout.body}`);
console.log(`driver: 12 × GET /orders/42 ok; checkout ${checkout.body}`);
agent.destroy();
