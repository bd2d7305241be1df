// The gRPC load client for bench/record-grpc.mjs: many concurrent calls over a few grpc-js channels.
//
//   node scripts/record/grpc/load-client.mjs [--port 18910] [--channels 4] [--concurrency 48] [--seconds 900]
//
// Runs until --seconds have passed or it gets SIGTERM/SIGINT, then prints "calls N, errors E, messages M".
// Each of --concurrency workers loops over a fixed mix of calls on channel (worker mod channels):
//   50 % GetOrder (response 1–8 KiB), 30 % UpdateOrder (request with a 1–8 KiB attachment),
//   20 % ListOrders (a server stream of 5–24 orders of 1–4 KiB each).
// Every channel is one grpc-js client with its own subchannel: one HTTP/2 connection carrying many
// concurrent streams.
import grpcJs from '@grpc/grpc-js';
import { client, unary, collect, order, prngBytes } from './shop.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : dflt; };
const port = opt('port', 18910);
const channels = opt('channels', 4);
const concurrency = opt('concurrency', 48);
const seconds = opt('seconds', 900);

const POOL = Array.from({ length: 32 }, (_, i) => prngBytes(1024 + ((i * 104729) % (7 * 1024 + 1)), 5000 + i));
// grpc.use_local_subchannel_pool: without it, clients with the same target and options share one
// subchannel (one TCP connection) from grpc-js's global pool
const clients = Array.from({ length: channels }, () => client(port, { 'grpc.use_local_subchannel_pool': 1 }));
const auth = () => { const m = new grpcJs.Metadata(); m.set('authorization', 'Bearer bench-token-0123456789'); return m; };

let stopping = false;
let calls = 0;
let errors = 0;
let messages = 0;

async function worker(w) {
  const c = clients[w % channels];
  for (let k = 0; !stopping; k++) {
    const n = w * 1_000_000 + k;
    const kind = k % 10;
    try {
      if (kind < 5) {
        await unary(c, 'GetOrder', { id: `ord-${n}`, include_items: kind % 2 === 0 }, auth());
        messages += 2;
      } else if (kind < 8) {
        await unary(c, 'UpdateOrder', order(n, { attachment: POOL[n % POOL.length] }), auth());
        messages += 2;
      } else {
        const { messages: got, status } = await collect(c.ListOrders({ customer_id: `c-${n % 997}`, page_size: 5 + (n % 20) }, auth()));
        if (status.code !== 0) throw new Error(status.details);
        messages += 1 + got.length;
      }
      calls++;
    } catch (e) {
      if (stopping) break;
      errors++;
      if (errors < 5) console.error(`load-client: ${e.message ?? e}`);
    }
  }
}

const stop = () => { stopping = true; };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, seconds * 1000).unref();

await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
for (const c of clients) c.close();
console.log(`calls ${calls}, errors ${errors}, messages ${messages}`);
process.exit(0);
