// missing-propagation.pcap — trace context that reaches one downstream service and not the other.
//
//   checkout   127.0.0.27:8080   POST /checkout (traceparent, x-request-id) →
//                                  inventory POST /reserve with the same trace id (a new span id) and
//                                    the same x-request-id (fine)
//                                  shipping POST /quote with neither header (BUG)
//   inventory  127.0.0.28:8081
//   shipping   127.0.0.29:8082
//
// Trace ids, span ids and request ids are seeded (prngBytes), so every recording has the same ones.
import { serve, reply, call, keepAliveAgent, drive, prngBytes } from './service.mjs';
import { exchanges, expect, callTree } from './tshark.mjs';

const CHECKOUT = { host: '127.0.0.27', port: 8080 };
const INVENTORY = { host: '127.0.0.28', port: 8081 };
const SHIPPING = { host: '127.0.0.29', port: 8082 };

const hex = (n, seed) => prngBytes(n, seed).toString('hex');
const uuid = (seed) => {
  const b = prngBytes(16, seed);
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

async function checkout() {
  const inventory = keepAliveAgent();
  const shipping = keepAliveAgent();
  await serve('checkout', CHECKOUT, async (req, res, url, body) => {
    if (req.method !== 'POST' || url.pathname !== '/checkout') return reply(res, 404, { error: 'not found' });
    const order = JSON.parse(body);
    const [, traceId, parentSpan] = TRACEPARENT.exec(req.headers.traceparent ?? '') ?? [];
    const requestId = req.headers['x-request-id'];
    const span = hex(8, parseInt(parentSpan?.slice(8) ?? '1', 16)); // this service's span, a child of the caller's
    const reserved = await call(CHECKOUT.host, INVENTORY, 'POST', '/reserve', {
      agent: inventory,
      headers: { traceparent: `00-${traceId}-${span}-01`, 'x-request-id': requestId },
      body: { order: order.order, items: order.items },
    });
    // BUG: the shipping client was written without the tracing middleware: no traceparent, no x-request-id
    const quote = await call(CHECKOUT.host, SHIPPING, 'POST', '/quote', {
      agent: shipping,
      body: { order: order.order, country: order.country, weightGrams: order.items.length * 450 },
    });
    reply(res, 200, { order: order.order, reservation: reserved.json().reservation, shipping: quote.json().price });
  }, { onClose: () => { inventory.destroy(); shipping.destroy(); } });
}

async function inventoryService() {
  await serve('inventory', INVENTORY, (req, res, url, body) => {
    if (req.method !== 'POST' || url.pathname !== '/reserve') return reply(res, 404, { error: 'not found' });
    reply(res, 200, { reservation: `rsv-${JSON.parse(body).order}`, items: JSON.parse(body).items.length });
  });
}

async function shippingService() {
  await serve('shipping', SHIPPING, (req, res, url, body) => {
    if (req.method !== 'POST' || url.pathname !== '/quote') return reply(res, 404, { error: 'not found' });
    reply(res, 200, { price: (4.9 + JSON.parse(body).weightGrams / 1000).toFixed(2), currency: 'EUR' });
  });
}

export const services = {
  checkout: { ...CHECKOUT, start: checkout },
  inventory: { ...INVENTORY, start: inventoryService },
  shipping: { ...SHIPPING, start: shippingService },
};

export const driver = () => drive(CHECKOUT, async (send) => {
  for (let i = 1; i <= 5; i++) {
    const headers = { traceparent: `00-${hex(16, 0x7ace0000 + i)}-${hex(8, 0x5ba40000 + i)}-01`, 'x-request-id': uuid(0x1d000000 + i) };
    const items = ['SKU-1001', 'SKU-1002', 'SKU-1003'].slice(0, 1 + (i % 3));
    await send('POST', '/checkout', { headers, body: { order: 500 + i, items, country: 'DE' } });
  }
});

export function check(file) {
  const http = exchanges(file);
  const inbound = http.filter((e) => e.dst === CHECKOUT.host);
  expect(inbound.length === 5 && http.length === 15 && http.every((e) => e.status === 200), '5 checkouts, 10 downstream calls, all 200');
  const ids = new Set();
  for (const e of inbound) {
    const [, traceId, span] = TRACEPARENT.exec(e.headers.traceparent) ?? [];
    expect(traceId && e.headers['x-request-id'], `frame ${e.frame}: traceparent and x-request-id`);
    ids.add(traceId);
    const [reserve, quote, ...rest] = http.filter((x) => x.src === CHECKOUT.host && x.time >= e.time && x.time <= e.end);
    const [, childTrace, childSpan] = TRACEPARENT.exec(reserve?.headers.traceparent ?? '') ?? [];
    expect(reserve?.uri === '/reserve' && childTrace === traceId && childSpan !== span
      && reserve.headers['x-request-id'] === e.headers['x-request-id'], `frame ${e.frame}: /reserve propagates`);
    expect(quote?.uri === '/quote' && !quote.headers.traceparent && !quote.headers['x-request-id'] && !rest.length,
      `frame ${e.frame}: /quote has neither header`);
  }
  expect(ids.size === 5, '5 distinct trace ids');
  return [
    ...callTree(CHECKOUT, http),
    ...inbound.map((e) => `frame ${e.frame}: traceparent ${e.headers.traceparent}, x-request-id ${e.headers['x-request-id']}`),
    'each /reserve: same trace id, another span id, same x-request-id; each /quote: no traceparent, no x-request-id',
  ];
}
