// The gRPC load server for bench/record-grpc.mjs: tapwire.demo.Orders on grpc-js (insecure, h2c).
//
//   node scripts/record/grpc/load-server.mjs [--port 18910]
//
// Prints "listening on 127.0.0.1:PORT" when ready; stops on SIGTERM/SIGINT.
//   GetOrder     an Order with an attachment of 1–8 KiB (size chosen by the order number)
//   UpdateOrder  the order back without its attachment, status PAID
//   ListOrders   page_size Orders (each with a 1–4 KiB attachment), no pause between them
//   UploadItems, Chat: as in the fixtures (shop.mjs)
import { startServer, shopImplementation, order, HOST, prngBytes } from './shop.mjs';

const argv = process.argv.slice(2);
const port = Number(argv[argv.indexOf('--port') + 1] || 18910);

// a pool of attachments, 1–8 KiB, so the server spends its time on gRPC rather than making bytes
const POOL = Array.from({ length: 64 }, (_, i) => prngBytes(1024 + ((i * 7919) % (7 * 1024 + 1)), 1000 + i));
const attachment = (n, max = 8192) => POOL[n % POOL.length].subarray(0, Math.min(max, POOL[n % POOL.length].length));
const num = (id) => Number(/(\d+)$/.exec(id ?? '')?.[1] ?? 0);

const impl = {
  ...shopImplementation({ streamDelayMs: 0 }),
  GetOrder(call, callback) {
    const n = num(call.request.id);
    callback(null, order(n, { withItems: !!call.request.include_items, attachment: attachment(n) }));
  },
  UpdateOrder(call, callback) {
    const { attachment: _drop, ...rest } = call.request;
    callback(null, { ...rest, status: 'ORDER_STATUS_PAID' });
  },
  ListOrders(call) {
    const size = call.request.page_size || 10;
    const base = num(call.request.customer_id) * 1000;
    let i = 0;
    const pump = () => {
      while (i < size) {
        if (call.cancelled) return;
        const ok = call.write(order(base + i, { attachment: attachment(base + i, 4096) }));
        i++;
        if (!ok) { call.once('drain', pump); return; }
      }
      call.end();
    };
    pump();
  },
};

const server = await startServer(port, { implementation: impl });
console.log(`listening on ${HOST}:${port}`);
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
