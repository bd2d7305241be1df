// The soak's gRPC load (bench/soak/run.mjs): unary GetOrder calls with small messages, paced to a rate,
// from its own process so it takes its own share of the cores.
//
//   node bench/soak/grpc-client.mjs --port 18971 --rate 1000 --seconds 60 [--channels 2]
//
// Calls are issued on a 2 ms clock so that `rate` are due per second, spread over --channels grpc-js
// channels (one HTTP/2 connection each). A client that falls more than half a second behind its
// schedule gives up the backlog (counted as `behind`) rather than bursting, so `calls` per second is
// what it really sustained. At the end it waits for every call in flight, then prints one JSON line:
//   {"offered":N,"issued":N,"calls":N,"errors":N,"behind":N,"seconds":S}
// `calls` is the transactions made: answered with status OK. SIGTERM/SIGINT stop it early the same way.
import { client } from '../../scripts/record/grpc/shop.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : dflt; };
const port = opt('port', 18971), rate = opt('rate', 1000), seconds = opt('seconds', 60), channels = opt('channels', 2);
const MAX_IN_FLIGHT = 2000;

const clients = Array.from({ length: channels }, () => client(port, { 'grpc.use_local_subchannel_pool': 1 }));
let issued = 0, calls = 0, errors = 0, behind = 0, inFlight = 0, stopping = false, firstError;
let t0 = 0;

function issue() {
  const n = issued++;
  inFlight++;
  clients[n % channels].GetOrder({ id: `ord-${n % 100000}`, include_items: n % 2 === 0 }, (err) => {
    inFlight--;
    if (err) { errors++; firstError ??= err.message; } else calls++;
    if (stopping && inFlight === 0) finish();
  });
}

function tick() {
  if (stopping) return;
  const elapsed = (performance.now() - t0) / 1000;
  if (elapsed >= seconds) { stop(); return; }
  let due = Math.floor(rate * elapsed) - (issued + behind);
  if (due > rate / 2) { behind += due; due = 0; }
  while (due-- > 0 && inFlight < MAX_IN_FLIGHT) issue();
  setTimeout(tick, 2);
}

let finished = false;
function finish() {
  if (finished) return;
  finished = true;
  for (const c of clients) c.close();
  const offered = Math.floor(rate * Math.min(seconds, (performance.now() - t0) / 1000));
  process.stdout.write(`${JSON.stringify({ offered, issued, calls, errors, behind, seconds: (performance.now() - t0) / 1000, firstError })}\n`);
  setTimeout(() => process.exit(0), 50);
}

function stop() {
  if (stopping) return;
  stopping = true;
  if (inFlight === 0) finish();
  setTimeout(finish, 10000).unref(); // calls still unanswered after 10 s are not counted as made
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// Connect every channel before the clock starts, so the first calls do not wait on connection set-up.
await Promise.all(clients.map((c) => new Promise((resolve, reject) => c.waitForReady(Date.now() + 10000, (e) => (e ? reject(e) : resolve())))));
t0 = performance.now();
tick();
