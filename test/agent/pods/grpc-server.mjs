// A gRPC service "in a pod": tapwire.demo.Orders (pcaps/grpc/shop.proto) on grpc-js, HOST:PORT.
//   node grpc-server.mjs HOST PORT
import { startServer, stopServer } from '../../../scripts/record/grpc/shop.mjs';

const [host, port] = process.argv.slice(2);
const server = await startServer(Number(port), { host });
console.log(`listening on ${host}:${port}`);
process.on('SIGTERM', () => stopServer(server).then(() => process.exit(0)));
