// Records the gRPC decoder fixtures in pcaps/grpc/ from real grpc-js traffic on loopback.
//
//   node scripts/record/grpc.mjs [OUT_DIR] [case ...]       (default OUT_DIR: pcaps/grpc, all cases)
//   node scripts/record/grpc.mjs --verify [OUT_DIR]         (only re-check existing captures with tshark)
//
// Service: tapwire.demo.Orders from pcaps/grpc/shop.proto (copied to OUT_DIR/shop.proto when recording elsewhere
// on every run, for decoding with --proto). Every case starts a @grpc/grpc-js server (insecure
// credentials: h2c, prior knowledge) on its own port on 127.0.0.1, starts tcpdump on that port, runs a
// grpc-js client, closes client and server, and stops tcpdump; the capture holds the connection from
// its preface to its GOAWAYs and FINs. Messages and metadata are fixed (scripts/record/grpc/shop.mjs),
// so the captured content is the same on every run except what grpc-js and node generate themselves:
// the response `date` header, the grpc-timeout value the client computes, TCP ports and timing.
// After each capture, tshark (-d tcp.port==PORT,http2) checks that the case shows what it is for.
import grpcJs from '@grpc/grpc-js';
import { join, resolve } from 'node:path';
import { copyFileSync, mkdirSync } from 'node:fs';
import { capture, requireTools, prngBytes } from './lib.mjs';
import {
  loadShop, startServer, stopServer, client, unary, collect, item, sleep, PROTO, shopImplementation, order,
} from './grpc/shop.mjs';
import { startGzipServer } from './grpc/gzip-server.mjs';
import { summarize, formatFrames, headerValues, tsharkFields, check, FLAG, protoDecode } from './grpc/tshark.mjs';
import { dirname } from 'node:path';

const { Metadata, status: Status } = grpcJs;

const PORTS = {
  unary: 18301,
  'server-streaming': 18302,
  'client-streaming': 18303,
  bidi: 18304,
  'error-status': 18305,
  deadline: 18306,
  gzip: 18307,
  'large-messages': 18308,
  concurrent: 18309,
};

const AUTH = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YXB3aXJlLWdycGMifQ.c2lnbmF0dXJl';

function md(pairs) {
  const m = new Metadata();
  for (const [k, v] of Object.entries(pairs)) m.set(k, v);
  return m;
}

/** Run fn(client) against a fresh grpc-js server on port; closes both (GOAWAY) before returning. */
async function withServer(port, fn, { serverOptions, clientOptions, implementation } = {}) {
  const server = await startServer(port, { options: serverOptions, implementation });
  const c = client(port, clientOptions);
  try {
    await fn(c);
  } finally {
    c.close();
    await sleep(50);
    await stopServer(server);
  }
}

function expectCode(err, code, what) {
  if (err?.code !== code) throw new Error(`${what}: expected status ${code}, got ${err?.code} ${err?.details ?? err}`);
  return err;
}

const cases = {};
const verify = {};

// 4 GetOrder calls and 1 small UpdateOrder on one channel, with metadata: authorization, x-request-id,
// x-tenant and a binary x-trace-bin (base64 on the wire); responses carry x-served-by and trailer x-cache.
cases.unary = (port) => withServer(port, async (c) => {
  for (let i = 1; i <= 4; i++) {
    const meta = md({ authorization: AUTH, 'x-request-id': `req-${String(i).padStart(4, '0')}`, 'x-tenant': 'acme' });
    if (i === 2) meta.set('x-trace-bin', Buffer.from([0x00, 0x01, 0xfe, 0xff, i]));
    const r = await unary(c, 'GetOrder', { id: `ord-${String(i).padStart(5, '0')}`, include_items: i !== 3 }, meta);
    if (r.response.id !== `ord-${String(i).padStart(5, '0')}`) throw new Error('unary: wrong order');
  }
  const r = await unary(c, 'UpdateOrder', { ...order(5), status: 'ORDER_STATUS_PENDING' }, md({ authorization: AUTH }));
  if (r.response.status !== 'ORDER_STATUS_PAID') throw new Error('unary: UpdateOrder');
});
verify.unary = (file, port, s) => {
  check(s.grpc.messages === 10, `10 messages (got ${s.grpc.messages})`);
  check(s.statuses.length === 5 && s.statuses.every((v) => v === '0'), `5 × grpc-status 0 (got ${s.statuses})`);
  check(headerValues(file, port, 'authorization').length === 5, 'authorization on 5 calls');
  check(headerValues(file, port, 'x-trace-bin').length === 1, 'binary metadata x-trace-bin');
  return `5 calls, grpc-status ${s.statuses.join(',')}; authorization ×5, x-trace-bin ${headerValues(file, port, 'x-trace-bin')}`;
};

// ListOrders: 10 orders, 20 ms apart.
cases['server-streaming'] = (port) => withServer(port, async (c) => {
  const { messages, status } = await collect(c.ListOrders({ customer_id: 'c-101', page_size: 10, statuses: ['ORDER_STATUS_PAID', 'ORDER_STATUS_SHIPPED'] },
    md({ authorization: AUTH })));
  if (status.code !== Status.OK || messages.length !== 10) throw new Error(`server-streaming: ${messages.length} messages, status ${status.code}`);
});
verify['server-streaming'] = (file, port, s) => {
  check(s.grpc.messages === 11, `1 + 10 messages (got ${s.grpc.messages})`);
  check(s.statuses.join() === '0', 'grpc-status 0');
  return `1 request + 10 response messages on one stream, grpc-status 0, trailer x-total-count=${headerValues(file, port, 'x-total-count')}`;
};

// UploadItems: 8 items, 10 ms apart, then one summary.
cases['client-streaming'] = (port) => withServer(port, async (c) => {
  const summary = await new Promise((resolve, reject) => {
    const call = c.UploadItems(md({ authorization: AUTH }), (err, res) => (err ? reject(err) : resolve(res)));
    (async () => {
      for (let i = 0; i < 8; i++) {
        call.write(item(i));
        await sleep(10);
      }
      call.end();
    })();
  });
  if (summary.items_received !== 8) throw new Error('client-streaming: summary');
});
verify['client-streaming'] = (file, port, s) => {
  check(s.grpc.messages === 9, `8 + 1 messages (got ${s.grpc.messages})`);
  check(s.statuses.join() === '0', 'grpc-status 0');
  return '8 request messages + 1 response on one stream, grpc-status 0';
};

// Chat: 5 client messages 15 ms apart; the bot acks each, and answers questions (ending in '?') twice.
const CHAT = ['hello', 'where is ord-00042?', 'can I add a washer?', 'thanks', 'bye'];
cases.bidi = (port) => withServer(port, async (c) => {
  const call = c.Chat(md({ authorization: AUTH, 'x-session': 'chat-7' }));
  const got = collect(call);
  for (let i = 0; i < CHAT.length; i++) {
    call.write({ from: 'ada', text: CHAT[i], seq: i + 1, sent_at_unix_ms: String(1741082400000 + i * 15) });
    await sleep(15);
  }
  call.end();
  const { messages, status } = await got;
  if (status.code !== Status.OK || messages.length !== 7) throw new Error(`bidi: ${messages.length} replies, status ${status.code}`);
});
verify.bidi = (file, port, s) => {
  check(s.grpc.messages === 12, `5 + 7 messages (got ${s.grpc.messages})`);
  check(s.statuses.join() === '0', 'grpc-status 0');
  // replies arrive while the client is still sending: a server DATA frame before the client's last one
  const data = s.frameList.filter((f) => f.type === 'DATA' && f.length > 0);
  return `5 client + 7 server messages on one stream, interleaved in time (${data.length} DATA frames), grpc-status 0`;
};

// NOT_FOUND after response headers (headers + trailers), NOT_FOUND at once (Trailers-Only, non-ASCII
// grpc-message percent-encoded), a server stream failing with INVALID_ARGUMENT after 2 messages, and
// a method the server does not implement (UNIMPLEMENTED, Trailers-Only from grpc-js itself).
cases['error-status'] = (port) => withServer(port, async (c) => {
  const meta = () => md({ authorization: AUTH });
  expectCode(await unary(c, 'GetOrder', { id: 'missing-00777' }, meta()).catch((e) => e), Status.NOT_FOUND, 'missing');
  const gone = expectCode(await unary(c, 'GetOrder', { id: 'gone-00123' }, meta()).catch((e) => e), Status.NOT_FOUND, 'gone');
  if (!gone.details.includes('«')) throw new Error(`gone: details ${gone.details}`);
  const { messages, status } = await collect(c.ListOrders({ customer_id: 'c-broken', page_size: 5 }, meta()));
  if (status.code !== Status.INVALID_ARGUMENT || messages.length !== 2) throw new Error('c-broken');
  const unimpl = await new Promise((resolve) => {
    c.makeUnaryRequest('/tapwire.demo.Orders/DeleteOrder', (x) => x, (x) => x, Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]), meta(),
      (err) => resolve(err));
  });
  expectCode(unimpl, Status.UNIMPLEMENTED, 'DeleteOrder');
});
verify['error-status'] = (file, port, s) => {
  const want = ['5', '5', '3', '12'];
  check(s.statuses.join() === want.join(), `grpc-status ${want} (got ${s.statuses})`);
  const blocks = headerBlocks(file, port).filter((b) => b.fromServer);
  const trailersOnly = blocks.filter((b) => b.flags & FLAG.END_STREAM && b.names.includes(':status') && b.names.includes('grpc-status'));
  check(trailersOnly.length === 2, `2 Trailers-Only responses (got ${trailersOnly.length})`);
  const msgs = headerValues(file, port, 'grpc-message');
  check(msgs.some((m) => m.includes('%C2%AB')), 'percent-encoded grpc-message');
  return `grpc-status ${s.statuses.join(',')}; Trailers-Only on streams ${trailersOnly.map((b) => b.stream).join(',')}; `
    + `grpc-message: ${msgs.map((m) => JSON.stringify(m)).join(', ')}`;
};

// GetOrder with a 100 ms deadline against a handler that sleeps 300 ms: DEADLINE_EXCEEDED on the client
// (it resets the stream); then one call with a 5 s deadline that succeeds.
cases.deadline = (port) => withServer(port, async (c) => {
  const t0 = Date.now();
  const err = await unary(c, 'GetOrder', { id: 'slow-00001' }, md({ authorization: AUTH }), { deadline: Date.now() + 100 }).catch((e) => e);
  expectCode(err, Status.DEADLINE_EXCEEDED, 'slow');
  if (Date.now() - t0 > 280) throw new Error('deadline: took too long');
  await sleep(400); // let the server's handler finish (its reply is dropped) inside the capture
  await unary(c, 'GetOrder', { id: 'ord-00002' }, md({ authorization: AUTH }), { deadline: Date.now() + 5000 });
});
verify.deadline = (file, port, s) => {
  const timeouts = headerValues(file, port, 'grpc-timeout');
  check(timeouts.length === 2, `grpc-timeout on both calls (got ${timeouts})`);
  const rst = tsharkFields(file, port, 'http2.type == 3', ['tcp.srcport', 'http2.rst_stream.error']);
  check(rst.length >= 1, 'RST_STREAM after the deadline');
  return `grpc-timeout ${timeouts.join(', ')}; RST_STREAM ${rst.map(([[p], e]) => `${Number(p) === port ? 'server' : 'client'} error ${e.join('/')}`).join(', ')}; `
    + `grpc-status seen: ${s.statuses.join(',') || '(none)'}`;
};

// gzip: the client channel compresses every message it sends ('grpc.default_compression_algorithm': 2
// = gzip; 'grpc.default_compression_level' is accepted but ignored by grpc-js 1.14). grpc-js servers never
// compress responses, so the same client then talks to a node:http2 gRPC server on the same port that
// answers with grpc-encoding gzip (grpc/gzip-server.mjs): compressed messages both ways, plus
// uncompressed ones (flag 0) inside a gzip stream.
const GZIP_OPTIONS = { 'grpc.default_compression_algorithm': 2, 'grpc.default_compression_level': 2 };
cases.gzip = async (port) => {
  await withServer(port, async (c) => {
    await unary(c, 'GetOrder', { id: 'ord-00010', include_items: true }, md({ authorization: AUTH }));
    await unary(c, 'UpdateOrder', { ...order(11), attachment: Buffer.from('delivery note: leave at the back door. '.repeat(500)) }, md({ authorization: AUTH }));
    await new Promise((resolve, reject) => {
      const call = c.UploadItems(md({ authorization: AUTH }), (err) => (err ? reject(err) : resolve()));
      for (let i = 0; i < 5; i++) call.write(item(i, 10 * (i + 1)));
      call.end();
    });
  }, { serverOptions: GZIP_OPTIONS, clientOptions: GZIP_OPTIONS });
  const server = await startGzipServer(port);
  const c = client(port, GZIP_OPTIONS);
  try {
    const r = await unary(c, 'GetOrder', { id: 'ord-00012', include_items: true }, md({ authorization: AUTH }));
    if (r.response.id !== 'ord-00012') throw new Error('gzip server: GetOrder');
    const { messages, status } = await collect(c.ListOrders({ customer_id: 'c-102', page_size: 4 }, md({ authorization: AUTH })));
    if (status.code !== Status.OK || messages.length !== 4) throw new Error(`gzip server: ListOrders ${messages.length} ${status.code} ${status.details}`);
  } finally {
    c.close();
    await sleep(50);
    await new Promise((r) => { server.close(() => r()); });
  }
};
verify.gzip = (file, port, s) => {
  const rows = tsharkFields(file, port, 'grpc', ['tcp.srcport', 'grpc.compressed_flag']);
  let [reqC, reqU, resC, resU] = [0, 0, 0, 0];
  for (const [[src], flags] of rows) {
    for (const f of flags) {
      if (Number(src) === port) { if (f === '1') resC++; else resU++; } else if (f === '1') reqC++; else reqU++;
    }
  }
  check(reqC === 9 && reqU === 0, `all 9 request messages compressed (got ${reqC} compressed, ${reqU} not)`);
  check(resC === 3 && resU === 5, `responses: 3 compressed, 5 uncompressed (got ${resC}/${resU})`);
  const enc = headerValues(file, port, 'grpc-encoding');
  check(enc.filter((e) => e === 'gzip').length === 5 + 2, `grpc-encoding gzip on 5 requests and 2 responses (got ${enc})`);
  return `compressed flag 1: ${reqC}/${reqC + reqU} client→server messages, ${resC}/${resC + resU} server→client `
    + `(grpc-js server: never; gzip server: GetOrder + 2 of 4 ListOrders); grpc-encoding values: ${enc.join(',')}; `
    + `tshark decompressed: ${s.grpc.messages} messages, 2 connections`;
};

// UpdateOrder with a 1 MiB attachment each way (incompressible pseudo-random bytes, no compression).
cases['large-messages'] = (port) => {
  const up = prngBytes(1 << 20, 21);
  const down = prngBytes(1 << 20, 22);
  return withServer(port, async (c) => {
    const r = await unary(c, 'UpdateOrder', order(42, { attachment: up }), md({ authorization: AUTH }));
    if (!Buffer.from(r.response.attachment).equals(down)) throw new Error('large-messages: attachment');
  }, { implementation: { ...shopImplementation(), UpdateOrder: (call, cb) => {
    if (!Buffer.from(call.request.attachment).equals(up)) return cb({ code: Status.DATA_LOSS, details: 'upload mismatch' });
    return cb(null, { ...call.request, status: 'ORDER_STATUS_SHIPPED', attachment: down });
  } } });
};
verify['large-messages'] = (file, port, s) => {
  const lens = tsharkFields(file, port, 'grpc', ['tcp.srcport', 'grpc.message_length']);
  const big = lens.flatMap(([[src], l]) => l.map((v) => [Number(src) === port ? 'response' : 'request', Number(v)])).filter(([, v]) => v > 1 << 20);
  check(big.length === 2 && new Set(big.map(([d]) => d)).size === 2, `one message > 1 MiB each way (got ${JSON.stringify(big)})`);
  const data = s.frameList.filter((f) => f.type === 'DATA');
  return `messages of ${big.map(([d, v]) => `${v} B (${d})`).join(' and ')}; ${data.length} DATA frames (max ${Math.max(...data.map((f) => f.length))} B); `
    + `${s.frames.WINDOW_UPDATE ?? 0} WINDOW_UPDATE`;
};

// 50 GetOrder calls at once on one channel (one connection); handlers pause 0–12 ms so replies come
// back out of order.
cases.concurrent = (port) => withServer(port, async (c) => {
  const rs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    unary(c, 'GetOrder', { id: `pause-${(i * 7) % 13}-${String(i + 1).padStart(5, '0')}`, include_items: i % 2 === 0 },
      md({ authorization: AUTH, 'x-request-id': `req-${String(i + 1).padStart(4, '0')}` }))));
  rs.forEach((r, i) => { if (r.response.id !== `ord-${String(i + 1).padStart(5, '0')}`) throw new Error('concurrent: mixed up'); });
});
verify.concurrent = (file, port, s) => {
  check(s.grpc.messages === 100, `100 messages (got ${s.grpc.messages})`);
  check(s.statuses.length === 50 && s.statuses.every((v) => v === '0'), '50 × grpc-status 0');
  const conns = new Set(tsharkFields(file, port, 'http2.magic', ['tcp.stream']).map(([v]) => v[0]));
  check(conns.size === 1, 'one connection');
  const streams = new Set(s.frameList.filter((f) => f.type === 'HEADERS').map((f) => f.stream));
  const replyOrder = tsharkFields(file, port, `http2.type == 0 && tcp.srcport == ${port}`, ['http2.type', 'http2.streamid'])
    .flatMap(([types, ids]) => ids.filter((_, i) => types[i] === '0').map(Number));
  const inOrder = replyOrder.every((id, i) => i === 0 || id > replyOrder[i - 1]);
  check(!inOrder, 'replies out of request order');
  return `50 calls on ${streams.size} streams of ${conns.size} connection, 50 × grpc-status 0; reply DATA in stream order ${replyOrder.slice(0, 8).join(',')},…`;
};

// ---------------------------------------------------------------------------------------------
/** Header blocks per HEADERS frame: { frame, stream, flags, fromServer, names } (no CONTINUATION here). */
function headerBlocks(file, port) {
  const rows = tsharkFields(file, port, 'http2.type == 1', ['frame.number', 'tcp.srcport', 'http2.type', 'http2.streamid', 'http2.flags',
    'http2.header.count', 'http2.header.name']);
  const out = [];
  for (const [[num], [src], types, streams, flags, counts, names] of rows) {
    let h = 0;
    let n = 0;
    types.forEach((t, i) => {
      if (t !== '1') return;
      const count = Number(counts[h++]);
      out.push({ frame: Number(num), stream: Number(streams[i]), flags: Number(flags[i]), fromServer: Number(src) === port, names: names.slice(n, n + count) });
      n += count;
    });
  }
  return out;
}

function verifyCase(name, file) {
  const port = PORTS[name];
  const s = summarize(file, port);
  const note = verify[name](file, port, s);
  // decode the messages with the proto as tshark's protobuf dissector sees them
  const { types, warnings } = protoDecode(file, port, dirname(PROTO));
  check(warnings.length === 0, `no tshark warnings decoding with shop.proto (got ${warnings.join('; ')})`);
  const top = [...types].filter((t) => !['Money', 'Customer', 'Address', 'Order.labelsMapEntry'].includes(t.replace('tapwire.demo.', '')));
  console.log(`  ${name}: port ${port}, ${s.packets} packets; frames: ${formatFrames(s.frames)}; gRPC messages ${s.grpc.messages} `
    + `(${s.grpc.compressed} compressed)\n    ${note}\n    tshark with shop.proto: ${top.map((t) => t.replace('tapwire.demo.', '')).join(', ')}; no warnings`);
}

async function main() {
  requireTools('tcpdump', 'capinfos', 'tshark');
  const args = process.argv.slice(2);
  const verifyOnly = args[0] === '--verify';
  if (verifyOnly) args.shift();
  const outDir = args[0] ?? 'pcaps/grpc';
  const wanted = args.slice(1);
  const names = wanted.length ? wanted : Object.keys(PORTS);
  loadShop();
  if (!verifyOnly) {
    mkdirSync(outDir, { recursive: true });
    if (resolve(PROTO) !== resolve(join(outDir, 'shop.proto'))) copyFileSync(PROTO, join(outDir, 'shop.proto'));
  }
  for (const name of names) {
    if (!cases[name]) throw new Error(`unknown case ${name}`);
    const file = join(outDir, `${name}.pcap`);
    if (!verifyOnly) await capture(file, `tcp port ${PORTS[name]}`, () => cases[name](PORTS[name]));
    verifyCase(name, file);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record grpc: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
