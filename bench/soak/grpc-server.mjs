// The soak's gRPC server (bench/soak/run.mjs): tapwire.demo.Orders on grpc-js (insecure, h2c) with the
// fixtures' own implementation (scripts/record/grpc/shop.mjs), so GetOrder answers a small Order
// (about 300 bytes, no attachment) with response headers and trailers.
//
//   node bench/soak/grpc-server.mjs --port 18971
//
// Prints "listening on 127.0.0.1:PORT" when ready; stops on SIGTERM/SIGINT.
import { startServer, shopImplementation, HOST } from '../../scripts/record/grpc/shop.mjs';

const argv = process.argv.slice(2);
const port = Number(argv[argv.indexOf('--port') + 1] || 18971);
const server = await startServer(port, { implementation: shopImplementation() });
console.log(`listening on ${HOST}:${port}`);
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
