// The tapwire.demo.Orders gRPC service (pcaps/grpc/shop.proto) for the recorders: proto loading, fixed
// fixture data, a grpc-js server implementation, and client/server start-stop helpers.
// Used by scripts/record/grpc.mjs (pcaps/grpc/*.pcap) and scripts/record/grpc/load-*.mjs (bench).
//
// Server behaviour is chosen by the request, so one implementation serves every case:
//   GetOrder id "missing-…"        NOT_FOUND after sending response headers (headers + trailers)
//   GetOrder id "gone-…"           NOT_FOUND at once: grpc-js answers Trailers-Only
//   GetOrder id "slow-…"           sleeps 300 ms first (the deadline case)
//   GetOrder id "pause-N-…"        sleeps N ms first (out-of-order completion in the concurrent case)
//   ListOrders customer "c-broken" two orders, then INVALID_ARGUMENT
//   ListOrders page_size N         N orders, 20 ms apart (delay_ms metadata overrides: 0 = no pause)
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
export { prngBytes } from '../prng.mjs';

const here = dirname(fileURLToPath(import.meta.url));
// The one copy of the schema: beside the captures it describes, so --proto can load it from there.
export const PROTO = join(here, '..', '..', '..', 'pcaps', 'grpc', 'shop.proto');
export const HOST = '127.0.0.1';
export const CREATED_AT = 1741082400; // 2025-03-04T10:00:00Z: fixed, so message bytes are the same every run

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let cached;
/** { grpc, Orders (client constructor), service (service definition), types (protobufjs-free encoders) } */
export function loadShop() {
  if (cached) return cached;
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def);
  const Orders = pkg.tapwire.demo.Orders;
  cached = { grpc, def, Orders, service: Orders.service };
  return cached;
}

// ---------------------------------------------------------------------------------------------
// fixture data (deterministic)
const NAMES = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Katherine Johnson', 'Edsger Dijkstra', 'Barbara Liskov'];
const CITIES = [['Berlin', '10115', 'DE'], ['Lyon', '69002', 'FR'], ['Porto', '4000-322', 'PT'], ['Utrecht', '3511 AB', 'NL']];
const SKUS = [['BOLT-M8', 'hex bolt M8', 12, 500000000], ['NUT-M8', 'hex nut M8', 0, 90000000],
  ['WASH-8', 'washer 8 mm', 0, 40000000], ['DRILL-X2', 'cordless drill X2', 129, 990000000], ['TAPE-50', 'duct tape 50 m', 7, 250000000]];

export function item(i, qty = 1 + (i % 7)) {
  const [sku, name, units, nanos] = SKUS[i % SKUS.length];
  return { sku, name, quantity: qty, unit_price: { currency: 'EUR', units: String(units), nanos }, tags: i % 2 ? ['hardware', 'metric'] : ['tools'] };
}

/** Order number N: every field type of shop.proto filled in; items only when withItems. */
export function order(n, { withItems = true, attachment } = {}) {
  const c = n % NAMES.length;
  const [city, postal, country] = CITIES[n % CITIES.length];
  const items = withItems ? Array.from({ length: 1 + (n % 3) }, (_, i) => item(n + i)) : [];
  const cents = items.reduce((s, it) => s + it.quantity * (Number(it.unit_price.units) * 100 + it.unit_price.nanos / 1e7), 0);
  const o = {
    id: `ord-${String(n).padStart(5, '0')}`,
    customer: {
      id: `c-${100 + c}`, name: NAMES[c], email: `${NAMES[c].split(' ')[0].toLowerCase()}@example.com`,
      shipping_address: { street: `${10 + n} Main Street`, city, postal_code: postal, country },
    },
    items,
    status: ['ORDER_STATUS_PENDING', 'ORDER_STATUS_PAID', 'ORDER_STATUS_SHIPPED', 'ORDER_STATUS_CANCELLED'][n % 4],
    total: { currency: 'EUR', units: String(Math.floor(cents / 100)), nanos: Math.round(cents % 100) * 1e7 },
    created_at_unix: String(CREATED_AT + n * 3600),
    labels: { channel: n % 2 ? 'web' : 'app', region: country.toLowerCase() },
    gift: n % 5 === 0,
    priority: (n % 3) - 1, // sint32: -1, 0, 1
    weight_kg: 0.25 * (1 + (n % 9)),
  };
  if (attachment) o.attachment = attachment;
  return o;
}

const orderNumber = (id) => Number(/(\d+)$/.exec(id ?? '')?.[1] ?? 0);

// ---------------------------------------------------------------------------------------------
// server
export function shopImplementation({ streamDelayMs = 20, onUpdate } = {}) {
  return {
    async GetOrder(call, callback) {
      const { id = '', include_items: withItems = false } = call.request;
      const md = new grpc.Metadata();
      md.set('x-served-by', 'orders-1');
      if (id.startsWith('missing-')) {
        call.sendMetadata(md); // response headers go out first: the status comes in real trailers
        await sleep(5);
        const trailers = new grpc.Metadata();
        trailers.set('x-lookup-ms', '4');
        return callback({ code: grpc.status.NOT_FOUND, details: `order ${id} not found`, metadata: trailers });
      }
      if (id.startsWith('gone-')) {
        const trailers = new grpc.Metadata();
        trailers.set('x-archived', 'true');
        // non-ASCII details: grpc-message is percent-encoded on the wire
        return callback({ code: grpc.status.NOT_FOUND, details: `commande « ${id} » introuvable (archivée)`, metadata: trailers });
      }
      if (id.startsWith('slow-')) await sleep(300);
      const pause = /^pause-(\d+)-/.exec(id);
      if (pause) await sleep(Number(pause[1]));
      if (call.cancelled) return undefined;
      const trailers = new grpc.Metadata();
      trailers.set('x-cache', 'miss');
      call.sendMetadata(md);
      return callback(null, order(orderNumber(id), { withItems }), trailers);
    },
    UpdateOrder(call, callback) {
      const req = call.request;
      const reply = onUpdate ? onUpdate(req) : { ...req, status: 'ORDER_STATUS_PAID' };
      callback(null, reply);
    },
    async ListOrders(call) {
      const { customer_id: customer = '', page_size: size = 10 } = call.request;
      const delay = Number(call.metadata.get('x-delay-ms')[0] ?? streamDelayMs);
      const n = customer === 'c-broken' ? 2 : size;
      for (let i = 0; i < n; i++) {
        if (call.cancelled) return;
        if (i && delay) await sleep(delay);
        call.write(order(orderNumber(customer) * 100 + i));
      }
      if (customer === 'c-broken') {
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'page_token expired after 2 orders' });
        return;
      }
      const trailers = new grpc.Metadata();
      trailers.set('x-total-count', String(n));
      call.end(trailers);
    },
    UploadItems(call, callback) {
      const skus = [];
      let qty = 0;
      let cents = 0;
      call.on('data', (it) => {
        skus.push(it.sku);
        qty += it.quantity;
        cents += it.quantity * (Number(it.unit_price?.units ?? 0) * 100 + (it.unit_price?.nanos ?? 0) / 1e7);
      });
      call.on('end', () => callback(null, {
        items_received: skus.length, total_quantity: String(qty),
        total_value: { currency: 'EUR', units: String(Math.floor(cents / 100)), nanos: Math.round(cents % 100) * 1e7 }, skus,
      }));
    },
    Chat(call) {
      let seq = 0;
      call.on('data', (m) => {
        call.write({ from: 'orders-bot', text: `ack: ${m.text}`, seq: ++seq, sent_at_unix_ms: String(CREATED_AT * 1000 + seq) });
        if (m.text.endsWith('?')) {
          call.write({ from: 'orders-bot', text: `answer to #${m.seq}: ships tomorrow`, seq: ++seq, sent_at_unix_ms: String(CREATED_AT * 1000 + seq) });
        }
      });
      call.on('end', () => call.end());
    },
  };
}

/** Start a grpc-js server (insecure, h2c) on host:port (default HOST). */
export function startServer(port, { options = {}, implementation, host = HOST } = {}) {
  const { service } = loadShop();
  const server = new grpc.Server(options);
  server.addService(service, implementation ?? shopImplementation());
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve(server)));
  });
}

export function stopServer(server) {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

/** A grpc-js client (one channel) for host:port (default HOST). */
export function client(port, options = {}, host = HOST) {
  const { Orders } = loadShop();
  return new Orders(`${host}:${port}`, grpc.credentials.createInsecure(), options);
}

/** Promise wrapper for a unary call: resolves { response, metadata, status } or rejects with the error. */
export function unary(c, method, request, metadata = new grpc.Metadata(), options = {}) {
  return new Promise((resolve, reject) => {
    let md;
    let st;
    const call = c[method](request, metadata, options, (err, response) => {
      if (err) reject(err);
      else setImmediate(() => resolve({ response, metadata: md, status: st }));
    });
    call.on('metadata', (m) => { md = m; });
    call.on('status', (s) => { st = s; });
  });
}

/** Collect a server stream: resolves { messages, status } (status.code may be an error). */
export function collect(call) {
  return new Promise((resolve) => {
    const messages = [];
    call.on('data', (m) => messages.push(m));
    call.on('error', () => {});
    call.on('status', (status) => resolve({ messages, status }));
  });
}

