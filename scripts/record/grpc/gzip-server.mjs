// A minimal gRPC server on node:http2 that compresses its responses with gzip.
//
// grpc-js servers never compress responses (server-interceptors.js: "response compression is currently
// not supported, so this compressed bit is always 0"), but grpc-go, grpc-java and grpc-core servers do.
// For gzip.pcap this server answers a real grpc-js client (which advertises grpc-accept-encoding gzip)
// with `grpc-encoding: gzip` and messages whose compressed flag is 1, so the capture has compressed
// messages in both directions. It serves two methods of tapwire.demo.Orders:
//   GetOrder    one compressed Order
//   ListOrders  page_size Orders; every second one is sent uncompressed (flag 0) although the stream
//               says grpc-encoding gzip, which the gRPC spec allows per message
// Requests are decoded whatever their encoding (identity or gzip, per the message flag).
import http2 from 'node:http2';
import zlib from 'node:zlib';
import protobuf from 'protobufjs';
import { PROTO, HOST, order } from './shop.mjs';

const FIXED_DATE = 'Tue, 04 Mar 2025 10:00:00 GMT';

function types() {
  const root = new protobuf.Root();
  root.loadSync(PROTO, { keepCase: true });
  const t = (n) => root.lookupType(`tapwire.demo.${n}`);
  return { Order: t('Order'), GetOrderRequest: t('GetOrderRequest'), ListOrdersRequest: t('ListOrdersRequest') };
}

/** Length-prefixed gRPC message: flag 1 + gzip when compress. */
function frameMessage(bytes, compress) {
  const body = compress ? zlib.gzipSync(bytes) : bytes;
  const h = Buffer.alloc(5);
  h[0] = compress ? 1 : 0;
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}

function parseMessages(buf, encoding) {
  const out = [];
  let off = 0;
  while (off + 5 <= buf.length) {
    const flag = buf[off];
    const len = buf.readUInt32BE(off + 1);
    let msg = buf.subarray(off + 5, off + 5 + len);
    if (flag === 1) {
      if (encoding !== 'gzip') throw new Error(`compressed message with grpc-encoding ${encoding}`);
      msg = zlib.gunzipSync(msg);
    }
    out.push(msg);
    off += 5 + len;
  }
  return out;
}

export function startGzipServer(port) {
  const T = types();
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('end', () => {
      const path = headers[':path'];
      const [req] = parseMessages(Buffer.concat(chunks), headers['grpc-encoding'] ?? 'identity');
      const replies = [];
      if (path === '/tapwire.demo.Orders/GetOrder') {
        const r = T.GetOrderRequest.toObject(T.GetOrderRequest.decode(req));
        const n = Number(/(\d+)$/.exec(r.id ?? '')?.[1] ?? 0);
        replies.push([order(n, { withItems: !!r.include_items }), true]);
      } else if (path === '/tapwire.demo.Orders/ListOrders') {
        const r = T.ListOrdersRequest.toObject(T.ListOrdersRequest.decode(req));
        for (let i = 0; i < (r.page_size || 3); i++) replies.push([order(700 + i), i % 2 === 0]);
      } else {
        stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'application/grpc+proto', 'grpc-status': '12', 'grpc-message': `unknown method ${path}` }, { endStream: true });
        return;
      }
      stream.respond({
        ':status': 200, date: FIXED_DATE, 'content-type': 'application/grpc+proto',
        'grpc-encoding': 'gzip', 'grpc-accept-encoding': 'identity,deflate,gzip', 'x-server': 'tapwire-gzip-grpc',
      }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }));
      for (const [obj, compress] of replies) {
        stream.write(frameMessage(T.Order.encode(T.Order.fromObject(obj)).finish(), compress));
      }
      stream.end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: HOST, exclusive: true }, () => resolve(server));
  });
}
