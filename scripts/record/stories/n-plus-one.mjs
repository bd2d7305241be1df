// n-plus-one.pcap — one query (or call) per item where one for all would do.
//
//   orders-api  127.0.0.20:8080   PostgreSQL 127.0.0.4:5432 (database shop, scripts/record/stories/seed.sql)
//   catalog     127.0.0.21:8081
//
//   GET /customers/7/orders            BUG: the customer's 12 order ids, then one order_items query per id
//   GET /customers/7/orders?batched=1  fixed: one query for all 12 (order_id = ANY($1))
//   GET /carts/3                       BUG: one catalog call per sku, 6 in a row on a keep-alive connection
//   GET /wishlists/5                   BUG: one catalog call per product name (a slug, not an id), 5 in a row
import { serve, reply, call, database, keepAliveAgent, drive } from './service.mjs';
import { exchanges, pgQueries, under, expect, tally, callTree } from './tshark.mjs';

const ORDERS_API = { host: '127.0.0.20', port: 8080 };
const CATALOG = { host: '127.0.0.21', port: 8081 };
export const postgres = true;

const Q_ORDERS = 'SELECT id FROM orders WHERE customer_id = $1';
const Q_ITEMS = 'SELECT sku, qty FROM order_items WHERE order_id = $1';
const Q_ITEMS_BATCHED = 'SELECT order_id, sku, qty FROM order_items WHERE order_id = ANY($1)';

// skus are numeric (as in order_items): /products/1003 is one endpoint, /products/{id}
const CARTS = { 3: ['1003', '1008', '1011', '1002', '1015', '1019'] };
// wishlists name products by slug: /products/by-name/plum-jam differs from its siblings in a word
const WISHLISTS = { 5: ['plum-jam', 'apple-pie', 'lemon-curd', 'fig-roll', 'pear-tart'] };
const product = (sku) => {
  const n = Number(sku) - 1000;
  return { sku, name: `Product ${n}`, price: (4.5 + n * 1.25).toFixed(2) };
};

async function ordersApi() {
  const db = database(ORDERS_API.host, 'orders-api');
  const agent = keepAliveAgent();
  await serve('orders-api', ORDERS_API, async (req, res, url) => {
    const customer = /^\/customers\/(\d+)\/orders$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && customer) {
      const ids = (await db.query(Q_ORDERS, [Number(customer)])).rows.map((r) => r.id);
      const items = new Map(ids.map((id) => [id, []]));
      if (url.searchParams.get('batched') === '1') {
        for (const r of (await db.query(Q_ITEMS_BATCHED, [ids])).rows) items.get(r.order_id).push({ sku: r.sku, qty: r.qty });
      } else {
        // BUG: one round trip per order
        for (const id of ids) items.set(id, (await db.query(Q_ITEMS, [id])).rows);
      }
      return reply(res, 200, { customer: Number(customer), orders: ids.map((id) => ({ id, items: items.get(id) })) });
    }
    const cart = /^\/carts\/(\d+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && CARTS[cart]) {
      const lines = [];
      // BUG: one catalog call per sku (catalog has no batch lookup in use here)
      for (const sku of CARTS[cart]) lines.push((await call(ORDERS_API.host, CATALOG, 'GET', `/products/${sku}`, { agent })).json());
      return reply(res, 200, { cart: Number(cart), lines });
    }
    const wishlist = /^\/wishlists\/(\d+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && WISHLISTS[wishlist]) {
      const items = [];
      // BUG: one catalog call per name
      for (const slug of WISHLISTS[wishlist]) items.push((await call(ORDERS_API.host, CATALOG, 'GET', `/products/by-name/${slug}`, { agent })).json());
      return reply(res, 200, { wishlist: Number(wishlist), items });
    }
    reply(res, 404, { error: 'not found' });
  }, { onClose: () => { agent.destroy(); return db.end(); } });
}

async function catalog() {
  await serve('catalog', CATALOG, (req, res, url) => {
    const sku = /^\/products\/(\d{4})$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && sku) return reply(res, 200, product(sku));
    const slug = /^\/products\/by-name\/([a-z-]+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && slug) return reply(res, 200, { slug, name: slug.replace('-', ' ') });
    reply(res, 404, { error: 'not found' });
  });
}

export const services = {
  'orders-api': { ...ORDERS_API, start: ordersApi },
  catalog: { ...CATALOG, start: catalog },
};

export const driver = () => drive(ORDERS_API, async (send) => {
  for (let i = 0; i < 3; i++) await send('GET', '/customers/7/orders');
  for (let i = 0; i < 2; i++) await send('GET', '/customers/7/orders?batched=1');
  for (let i = 0; i < 2; i++) await send('GET', '/carts/3');
  await send('GET', '/wishlists/5');
});

export function check(file) {
  const http = exchanges(file);
  const queries = pgQueries(file);
  const inbound = http.filter((e) => e.dst === ORDERS_API.host);
  expect(tally(inbound.map((e) => `${e.method} ${e.uri} ${e.status}`))
    === '3 × GET /customers/7/orders 200, 2 × GET /customers/7/orders?batched=1 200, 2 × GET /carts/3 200, 1 × GET /wishlists/5 200', 'the 8 inbound requests');
  for (const e of inbound) {
    const q = under(e, queries);
    const calls = under(e, http);
    if (e.uri === '/customers/7/orders') {
      expect(q.length === 13 && q[0].query === Q_ORDERS && q.slice(1).every((x) => x.query === Q_ITEMS)
        && q.slice(1).map((x) => x.params[0]).join() === '101,102,103,104,105,106,107,108,109,110,111,112',
      `frame ${e.frame}: 1 + 12 queries, order ids 101-112`);
    } else if (e.uri.endsWith('batched=1')) {
      expect(q.length === 2 && q[1].query === Q_ITEMS_BATCHED && q[1].params[0].startsWith('{"101","102"'), `frame ${e.frame}: 2 queries`);
    } else if (e.uri === '/wishlists/5') {
      expect(calls.length === 5 && calls.every((x) => x.uri.startsWith('/products/by-name/')) && new Set(calls.map((x) => x.uri)).size === 5,
        `frame ${e.frame}: 5 catalog calls by name`);
    } else {
      expect(calls.length === 6 && new Set(calls.map((x) => x.uri)).size === 6 && new Set(calls.map((x) => x.stream)).size === 1,
        `frame ${e.frame}: 6 catalog calls, 6 skus, one connection`);
    }
  }
  expect(queries.length === 5 * 1 + 3 * 12 + 2 && http.length === 8 + 12 + 5, 'nothing else in the capture');
  return [...callTree(ORDERS_API, http, queries),
    `order_items parameters of each unbatched request: ${under(inbound[0], queries).slice(1).map((x) => x.params[0]).join(', ')}`,
    `batched parameter: ${under(inbound[3], queries)[1].params[0]}`,
    `catalog calls share tcp.stream ${[...new Set(http.filter((e) => e.dst === CATALOG.host).map((e) => e.stream))].join(', ')}`];
}
