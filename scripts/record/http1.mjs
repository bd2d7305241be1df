// Records the HTTP/1.x decoder fixtures in pcaps/http1/ from real traffic on loopback.
//
//   node scripts/record/http1.mjs [OUT_DIR] [case ...]      (default OUT_DIR: pcaps/http1, all cases)
//
// Every case starts a real server (node:http, or node:net where node:http cannot produce the wire
// form), starts tcpdump on its own port, runs a real client, and stops tcpdump. Bodies, header
// values and request order are fixed so the captured *content* is the same on every run (TCP
// ports, sequence numbers and timestamps differ). Servers send a fixed Date header for the same
// reason. The server always listens on 127.0.0.1 and clients bind 127.0.0.1.
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  capture, sleep, listen, closeServer, prngBytes, requireTools, startChild, waitPort, packetCount,
} from './lib.mjs';

const HOST = '127.0.0.1';
const FIXED_DATE = 'Tue, 04 Mar 2025 10:00:00 GMT';
const UA = 'tapwire-recorder/1.0';

// One port per case so every capture filter is exact.
const PORTS = {
  keepalive: 18101,
  pipelined: 18102,
  'chunked-trailers': 18103,
  'content-encoding': 18104,
  'expect-100': 18105,
  'head-204-304': 18106,
  'close-delimited': 18107,
  'upgrade-websocket': 18108,
  'upgrade-h2c': 18109,
  'connect-tunnel': 18110, // the proxy; the tunnel target listens on CONNECT_TARGET_PORT (not captured)
  'large-bodies': 18111,
  'many-connections': 18112,
  'mixed-methods': 18113,
  'port-9999': 9999,
  'not-http-port-80': 80,
};
const CONNECT_TARGET_PORT = 18120;

// ---------------------------------------------------------------------------------------------
// helpers

/** node:http server whose responses carry a fixed Date header. */
function httpServer(handler) {
  const server = http.createServer((req, res) => {
    res.sendDate = false;
    res.setHeader('Date', FIXED_DATE);
    Promise.resolve(handler(req, res)).catch((e) => {
      console.error('server handler failed:', e);
      res.destroy(e);
    });
  });
  return server;
}

function readBody(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function json(res, status, obj, extra = {}) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, ...extra });
  res.end(body);
}

/** One HTTP request with node:http; resolves { res, body } once the response body has ended. */
function request(port, opts, body) {
  return new Promise((resolve, reject) => {
    const headers = { 'User-Agent': UA, ...opts.headers };
    if (body !== undefined && headers['Content-Length'] === undefined) headers['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: HOST, port, localAddress: HOST, ...opts, headers }, (res) => {
      readBody(res).then((b) => resolve({ res, body: b }), reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function expectStatus(r, status, what) {
  if (r.res.statusCode !== status) throw new Error(`${what}: expected ${status}, got ${r.res.statusCode}`);
  return r;
}

/** Raw TCP client: connect, write `data` in one write, collect everything until the server closes. */
function rawExchange(port, data, { endAfterWrite = false } = {}) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect({ port, host: HOST, localAddress: HOST }, () => {
      s.write(data);
      if (endAfterWrite) s.end();
    });
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => { s.end(); });
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

const bearer = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA';

// ---------------------------------------------------------------------------------------------
// cases: each is async (port) => void and runs entirely inside the capture window.

const cases = {};

// Several GET/POST on one keep-alive connection, with secrets in headers, query and body.
cases.keepalive = async (port) => {
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/api/users') {
      json(res, 200, { page: Number(url.searchParams.get('page')), users: [{ id: 7, name: 'alice' }, { id: 8, name: 'bob' }] });
    } else if (req.method === 'POST' && url.pathname === '/api/login') {
      const { username } = JSON.parse(body.toString());
      json(res, 200, { user: username, token: 'tok_5f2b9c0e', expiresIn: 3600 },
        { 'Set-Cookie': 'session=sess_8d41a7; Path=/; HttpOnly' });
    } else if (req.method === 'GET' && url.pathname === '/api/orders/42') {
      json(res, 200, { id: 42, customer: 'alice', total: 99.5, status: 'paid' });
    } else if (req.method === 'POST' && url.pathname === '/api/orders') {
      json(res, 201, { id: 43, ...JSON.parse(body.toString()) }, { Location: '/api/orders/43' });
    } else if (url.pathname === '/api/health') {
      json(res, 200, { status: 'ok' });
    } else {
      json(res, 404, { error: 'not found', path: url.pathname });
    }
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const auth = {
    Authorization: bearer,
    Cookie: 'session=sess_8d41a7; theme=dark',
    'X-Api-Key': 'k_live_51HxAbCdEf0123456789',
    Accept: 'application/json',
  };
  const jsonHdr = { ...auth, 'Content-Type': 'application/json' };
  expectStatus(await request(port, { agent, path: '/api/users?token=abc&page=2', headers: auth }), 200, 'users');
  expectStatus(await request(port, { agent, method: 'POST', path: '/api/login', headers: jsonHdr },
    JSON.stringify({ username: 'alice', password: 'hunter2-correct-horse' })), 200, 'login');
  expectStatus(await request(port, { agent, path: '/api/orders/42', headers: auth }), 200, 'order');
  expectStatus(await request(port, { agent, method: 'POST', path: '/api/orders', headers: jsonHdr },
    JSON.stringify({ customer: 'alice', items: [{ sku: 'A-1', qty: 2 }], total: 19.9 })), 201, 'create');
  expectStatus(await request(port, { agent, path: '/api/users/7/avatar', headers: auth }), 404, 'missing');
  expectStatus(await request(port, { agent, path: '/api/health', headers: auth }), 200, 'health');
  agent.destroy();
  await closeServer(server);
};

// A raw client writes 4 requests in one write; node:http answers them in order.
cases.pipelined = async (port) => {
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    if (req.url === '/pipe/1') await sleep(20); // the first answer is the slowest: order must still hold
    json(res, 200, { path: req.url, method: req.method, received: body.length });
  });
  await listen(server, port);
  const host = `Host: ${HOST}:${port}\r\nUser-Agent: ${UA}\r\n`;
  const post = JSON.stringify({ note: 'third request has a body' });
  const reqs = `GET /pipe/1 HTTP/1.1\r\n${host}\r\n`
    + `GET /pipe/2 HTTP/1.1\r\n${host}Accept: application/json\r\n\r\n`
    + `POST /pipe/3 HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${post.length}\r\n\r\n${post}`
    + `GET /pipe/4 HTTP/1.1\r\n${host}Connection: close\r\n\r\n`;
  const out = (await rawExchange(port, reqs)).toString();
  const order = [...out.matchAll(/"path":"(\/pipe\/\d)"/g)].map((m) => m[1]).join(',');
  if (order !== '/pipe/1,/pipe/2,/pipe/3,/pipe/4') throw new Error(`pipelined: unexpected answers: ${order}`);
  await closeServer(server);
};

// Chunked responses (chunks in separate packets), a response with trailers, a chunked request body.
cases['chunked-trailers'] = async (port) => {
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    if (req.url === '/stream') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      for (let i = 1; i <= 5; i++) {
        res.write(`line ${i} of 5: ${'abcdefghij'.repeat(i)}\n`);
        await sleep(30);
      }
      res.end();
    } else if (req.url === '/trailers') {
      res.writeHead(200, { 'Content-Type': 'application/json', Trailer: 'X-Checksum, X-Row-Count' });
      const rows = ['[', '{"id":1,"v":"a"},', '{"id":2,"v":"b"},', '{"id":3,"v":"c"}', ']'];
      const h = crypto.createHash('sha256');
      for (const r of rows) { res.write(r); h.update(r); await sleep(20); }
      res.addTrailers({ 'X-Checksum': `sha256=${h.digest('hex')}`, 'X-Row-Count': '3' });
      res.end();
    } else if (req.url === '/upload') {
      json(res, 200, {
        transferEncoding: req.headers['transfer-encoding'] ?? null,
        received: body.length,
        lines: body.toString().trim().split('\n').length,
        trailer: req.trailers['x-upload-checksum'] ?? null,
      });
    } else {
      json(res, 404, { error: 'not found' });
    }
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const s = await request(port, { agent, path: '/stream' });
  if (s.res.headers['transfer-encoding'] !== 'chunked') throw new Error('chunked-trailers: /stream not chunked');
  const t = await request(port, { agent, path: '/trailers', headers: { TE: 'trailers' } });
  if (!t.res.trailers['x-checksum']) throw new Error('chunked-trailers: no trailer received');
  // chunked request body: several writes, no Content-Length, plus a request trailer
  const up = await new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST, port, localAddress: HOST, agent, method: 'POST', path: '/upload',
      headers: { 'User-Agent': UA, 'Content-Type': 'text/csv', Trailer: 'X-Upload-Checksum' },
    }, (res) => readBody(res).then((b) => resolve({ res, body: b }), reject));
    req.on('error', reject);
    (async () => {
      const lines = ['id,name,qty\n', '1,bolt,40\n', '2,nut,120\n', '3,washer,75\n'];
      const h = crypto.createHash('sha256');
      for (const l of lines) { req.write(l); h.update(l); await sleep(25); }
      req.addTrailers({ 'X-Upload-Checksum': `sha256=${h.digest('hex')}` });
      req.end();
    })().catch(reject);
  });
  const upBody = JSON.parse(up.body.toString());
  if (upBody.transferEncoding !== 'chunked' || !upBody.trailer) throw new Error(`chunked-trailers: upload ${up.body}`);
  agent.destroy();
  await closeServer(server);
};

// gzip, zlib deflate, brotli and raw deflate bodies, plus a streamed (chunked) gzip body.
cases['content-encoding'] = async (port) => {
  const doc = Buffer.from(JSON.stringify({
    items: Array.from({ length: 40 }, (_, i) => ({ id: i + 1, name: `item-${i + 1}`, tags: ['alpha', 'beta'], price: (i * 7) % 100 })),
  }));
  const encodings = {
    '/gzip': ['gzip', zlib.gzipSync(doc)],
    '/deflate': ['deflate', zlib.deflateSync(doc)], // RFC 1950 zlib wrapper: what "deflate" means
    '/br': ['br', zlib.brotliCompressSync(doc)],
    '/raw-deflate': ['deflate', zlib.deflateRawSync(doc)], // RFC 1951 raw deflate sent as "deflate" (seen in the wild)
  };
  const server = httpServer(async (req, res) => {
    await readBody(req);
    if (encodings[req.url]) {
      const [ce, body] = encodings[req.url];
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': ce, Vary: 'Accept-Encoding', 'Content-Length': body.length });
      res.end(body);
    } else if (req.url === '/gzip-chunked') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' });
      const gz = zlib.createGzip();
      gz.pipe(res);
      for (let i = 0; i < doc.length; i += 1024) {
        gz.write(doc.subarray(i, i + 1024));
        gz.flush(zlib.constants.Z_SYNC_FLUSH);
        await sleep(15);
      }
      gz.end();
    } else {
      json(res, 404, { error: 'not found' });
    }
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const path of ['/gzip', '/deflate', '/br', '/raw-deflate', '/gzip-chunked']) {
    const r = expectStatus(await request(port, { agent, path, headers: { 'Accept-Encoding': 'gzip, deflate, br' } }), 200, path);
    const ce = r.res.headers['content-encoding'];
    const plain = ce === 'br' ? zlib.brotliDecompressSync(r.body)
      : ce === 'gzip' ? zlib.gunzipSync(r.body)
      : path === '/raw-deflate' ? zlib.inflateRawSync(r.body) : zlib.inflateSync(r.body);
    if (!plain.equals(doc)) throw new Error(`content-encoding: ${path} did not round-trip`);
  }
  agent.destroy();
  await closeServer(server);
};

// Expect: 100-continue. Two accepted uploads on one keep-alive connection (server: writeContinue),
// then one refused upload on a second connection (413 before any body byte is sent).
cases['expect-100'] = async (port) => {
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    json(res, 201, { path: req.url, received: body.length });
  });
  server.on('checkContinue', (req, res) => {
    if (Number(req.headers['content-length']) > 1024 * 1024) {
      res.sendDate = false;
      res.setHeader('Date', FIXED_DATE);
      json(res, 413, { error: 'payload too large', limit: 1048576 }, { Connection: 'close' });
      return;
    }
    res.writeContinue();
    server.emit('request', req, res);
  });
  await listen(server, port);
  const post = (agent, path, body, declaredLength = body.length) => new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST, port, localAddress: HOST, agent, method: 'POST', path,
      headers: { 'User-Agent': UA, 'Content-Type': 'application/json', 'Content-Length': declaredLength, Expect: '100-continue' },
    }, (res) => readBody(res).then((b) => { resolve({ res, body: b, continued }); if (!continued) req.destroy(); }, reject));
    let continued = false;
    req.on('continue', () => { continued = true; req.end(body); });
    req.on('error', reject);
    req.flushHeaders();
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const a = await post(agent, '/upload/1', Buffer.from(JSON.stringify({ doc: 1, text: 'x'.repeat(200) })));
  const b = await post(agent, '/upload/2', Buffer.from(JSON.stringify({ doc: 2, text: 'y'.repeat(300) })));
  if (a.res.statusCode !== 201 || b.res.statusCode !== 201 || !a.continued || !b.continued) throw new Error('expect-100: accepted uploads failed');
  agent.destroy();
  const c = await post(false, '/upload/huge', Buffer.alloc(0), 10 * 1024 * 1024);
  if (c.res.statusCode !== 413 || c.continued) throw new Error('expect-100: refusal failed');
  await closeServer(server);
};

// HEAD (Content-Length of a non-empty body, no body), 204, 304: all on ONE keep-alive connection.
cases['head-204-304'] = async (port) => {
  const doc = Buffer.from(`<!doctype html><title>doc</title>\n${'<p>tapwire head/204/304 fixture</p>\n'.repeat(50)}`);
  const etag = `"${crypto.createHash('sha1').update(doc).digest('hex').slice(0, 16)}"`;
  const server = httpServer(async (req, res) => {
    await readBody(req);
    if (req.url === '/doc' && (req.method === 'GET' || req.method === 'HEAD')) {
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { ETag: etag, 'Cache-Control': 'max-age=60' });
        res.end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': doc.length, ETag: etag, 'Cache-Control': 'max-age=60' });
      res.end(req.method === 'HEAD' ? undefined : doc);
    } else if (req.url === '/events' && req.method === 'POST') {
      res.writeHead(204, { 'X-Event-Id': 'evt-1' });
      res.end();
    } else if (req.url === '/after') {
      json(res, 200, { still: 'in sync' });
    } else {
      json(res, 404, { error: 'not found' });
    }
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  expectStatus(await request(port, { agent, path: '/doc' }), 200, 'GET /doc');
  const h = expectStatus(await request(port, { agent, method: 'HEAD', path: '/doc' }), 200, 'HEAD /doc');
  if (Number(h.res.headers['content-length']) !== doc.length || h.body.length) throw new Error('head: bad HEAD');
  expectStatus(await request(port, { agent, method: 'POST', path: '/events', headers: { 'Content-Type': 'application/json' } },
    JSON.stringify({ event: 'viewed', doc: '/doc' })), 204, 'POST /events');
  expectStatus(await request(port, { agent, path: '/doc', headers: { 'If-None-Match': etag } }), 304, 'conditional GET');
  expectStatus(await request(port, { agent, path: '/after' }), 200, 'GET /after');
  agent.destroy();
  await closeServer(server);
};

// Raw net server: responses with neither Content-Length nor chunking, ended by closing the socket.
cases['close-delimited'] = async (port) => {
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', async (d) => {
      buf += d;
      if (!buf.includes('\r\n\r\n')) return;
      const legacy = buf.startsWith('GET /legacy HTTP/1.0');
      sock.write(legacy
        ? 'HTTP/1.0 200 OK\r\nServer: legacy/0.9\r\nContent-Type: text/plain\r\n\r\n'
        : `HTTP/1.1 200 OK\r\nDate: ${FIXED_DATE}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n`);
      for (let i = 1; i <= 4; i++) {
        await sleep(25);
        sock.write(`part ${i} of a close-delimited body (${legacy ? 'HTTP/1.0' : 'HTTP/1.1 Connection: close'})\n`);
      }
      await sleep(10);
      sock.end();
    });
    sock.on('error', () => {});
  });
  await listen(server, port);
  // 1. an HTTP/1.0 client (raw socket) and an HTTP/1.0 response
  const a = (await rawExchange(port, `GET /legacy HTTP/1.0\r\nHost: ${HOST}:${port}\r\nUser-Agent: ${UA}\r\n\r\n`)).toString();
  if (!a.startsWith('HTTP/1.0 200') || !a.includes('part 4')) throw new Error('close-delimited: legacy failed');
  // 2. node:http client, HTTP/1.1 response with Connection: close and no length
  const b = await request(port, { agent: false, path: '/modern' });
  if (!b.body.toString().includes('part 4')) throw new Error('close-delimited: modern failed');
  await closeServer(server);
};

// WebSocket: real handshake (Sec-WebSocket-Accept), masked client frames, unmasked server frames, close.
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
function wsFrame(opcode, payload, mask) {
  const len = payload.length;
  const head = [0x80 | opcode];
  if (len < 126) head.push((mask ? 0x80 : 0) | len);
  else head.push((mask ? 0x80 : 0) | 126, len >> 8, len & 0xff);
  const body = Buffer.from(payload);
  if (mask) for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4];
  return Buffer.concat([Buffer.from(head), mask ? Buffer.from(mask) : Buffer.alloc(0), body]);
}
/** Pulls complete frames off `state.buf`; returns [{opcode, payload}]. */
function wsParse(state) {
  const frames = [];
  for (;;) {
    const b = state.buf;
    if (b.length < 2) break;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) { if (b.length < 4) break; len = b.readUInt16BE(2); off = 4; }
    const masked = (b[1] & 0x80) !== 0;
    const mask = masked ? b.subarray(off, off + 4) : null;
    if (masked) off += 4;
    if (b.length < off + len) break;
    const payload = Buffer.from(b.subarray(off, off + len));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
    frames.push({ opcode: b[0] & 0x0f, payload });
    state.buf = b.subarray(off + len);
  }
  return frames;
}
cases['upgrade-websocket'] = async (port) => {
  const server = httpServer((req, res) => json(res, 426, { error: 'upgrade required' }, { Upgrade: 'websocket' }));
  server.on('upgrade', (req, sock, head) => {
    const key = req.headers['sec-websocket-key'];
    const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const st = { buf: Buffer.from(head) };
    const onFrames = () => {
      for (const f of wsParse(st)) {
        if (f.opcode === 0x1) sock.write(wsFrame(0x1, Buffer.from(`echo: ${f.payload}`)));
        else if (f.opcode === 0x2) sock.write(wsFrame(0x2, f.payload));
        else if (f.opcode === 0x9) sock.write(wsFrame(0xa, f.payload));
        else if (f.opcode === 0x8) { sock.end(wsFrame(0x8, f.payload.subarray(0, 2))); }
      }
    };
    sock.on('data', (d) => { st.buf = Buffer.concat([st.buf, d]); onFrames(); });
    sock.on('error', () => {});
    onFrames();
  });
  await listen(server, port);
  const key = 'dGhlIHNhbXBsZSBub25jZQ=='; // RFC 6455's sample nonce, fixed for determinism
  const { res, socket, head } = await new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST, port, localAddress: HOST, agent: false, path: '/ws/chat',
      headers: {
        'User-Agent': UA, Connection: 'Upgrade', Upgrade: 'websocket', Origin: `http://${HOST}:${port}`,
        'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13',
      },
    });
    req.on('upgrade', (r, s, h) => resolve({ res: r, socket: s, head: h }));
    req.on('response', (r) => reject(new Error(`upgrade-websocket: got ${r.statusCode} instead of 101`)));
    req.on('error', reject);
    req.end();
  });
  const want = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  if (res.headers['sec-websocket-accept'] !== want) throw new Error('upgrade-websocket: bad accept');
  const st = { buf: Buffer.from(head) };
  const queue = [];
  let wake = null;
  socket.on('data', (d) => { st.buf = Buffer.concat([st.buf, d]); queue.push(...wsParse(st)); wake?.(); });
  const next = async () => { while (!queue.length) await new Promise((r) => { wake = r; }); return queue.shift(); };
  const masks = [[0x37, 0xfa, 0x21, 0x3d], [0x12, 0x34, 0x56, 0x78], [0xa1, 0xb2, 0xc3, 0xd4], [0x0f, 0x1e, 0x2d, 0x3c], [0x55, 0x66, 0x77, 0x88]];
  socket.write(wsFrame(0x1, Buffer.from('hello tapwire'), masks[0]));
  if ((await next()).payload.toString() !== 'echo: hello tapwire') throw new Error('ws: bad echo');
  socket.write(wsFrame(0x1, Buffer.from(JSON.stringify({ type: 'subscribe', topic: 'orders', id: 42 })), masks[1]));
  await next();
  socket.write(wsFrame(0x2, prngBytes(200, 42), masks[2]));
  if (!(await next()).payload.equals(prngBytes(200, 42))) throw new Error('ws: bad binary echo');
  socket.write(wsFrame(0x9, Buffer.from('ping-1'), masks[3]));
  if ((await next()).opcode !== 0xa) throw new Error('ws: no pong');
  const closeBody = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')]); // 1000 normal closure
  socket.write(wsFrame(0x8, closeBody, masks[4]));
  if ((await next()).opcode !== 0x8) throw new Error('ws: no close');
  await new Promise((r) => { socket.on('close', r); socket.end(); });
  await closeServer(server);
};

// HTTP/1.1 Upgrade: h2c. Client: `nghttp -u` (sends GET / with Upgrade: h2c + HTTP2-Settings, then a
// second request as an HTTP/2 stream). Server: nghttpx (package nghttp2-proxy), which accepts the
// h2c upgrade on a no-tls frontend, in front of a node:http backend. nghttpd (nghttp2-server) was
// tried first: it only speaks prior-knowledge h2c and answers the Upgrade request with a SETTINGS
// frame, so it cannot produce this capture. Only the frontend port is captured.
const H2C_BACKEND_PORT = 18121;
cases['upgrade-h2c'] = async (port, file) => {
  const files = {
    '/': ['text/html', '<!doctype html>\n<html><head><title>h2c</title><link rel="stylesheet" href="/style.css"></head>\n<body><p>upgraded to h2c</p></body></html>\n'],
    '/style.css': ['text/css', 'body { font-family: sans-serif; color: #333; }\n'],
  };
  const backend = httpServer(async (req, res) => {
    await readBody(req);
    const f = files[req.url];
    if (!f) return json(res, 404, { error: 'not found' });
    res.writeHead(200, { 'Content-Type': f[0], 'Content-Length': Buffer.byteLength(f[1]) });
    res.end(f[1]);
  });
  await listen(backend, H2C_BACKEND_PORT);
  const proxy = startChild('nghttpx', ['--conf=/dev/null', '-f', `${HOST},${port};no-tls`, '-b', `${HOST},${H2C_BACKEND_PORT}`,
    '-n', '1', '--no-via', '--no-ocsp']);
  try {
    await waitPort(port);
    await capture(file, `tcp port ${port}`, async () => {
      const cli = startChild('nghttp', ['-u', '-n', '--no-dep', `http://${HOST}:${port}/`, `http://${HOST}:${port}/style.css`]);
      const { code } = await cli.exited;
      if (code !== 0) throw new Error(`nghttp exited ${code}:\n${cli.output()}`);
    });
  } finally {
    await proxy.stop('SIGTERM');
    await closeServer(backend);
  }
};
cases['upgrade-h2c'].capturesItself = true;

// CONNECT through a node:http proxy to a plain HTTP target; only the proxy port is captured.
cases['connect-tunnel'] = async (port) => {
  const target = httpServer(async (req, res) => {
    await readBody(req);
    json(res, 200, { hello: 'from the target behind the tunnel', path: req.url });
  });
  await listen(target, CONNECT_TARGET_PORT);
  const tunnels = new Set();
  const proxy = httpServer((req, res) => json(res, 405, { error: 'this proxy only does CONNECT' }));
  proxy.on('connect', (req, clientSock, head) => {
    const [h, p] = req.url.split(':');
    const up = net.connect({ host: h, port: Number(p), localAddress: HOST }, () => {
      clientSock.write('HTTP/1.1 200 Connection Established\r\nProxy-Agent: tapwire-recorder\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(clientSock);
      clientSock.pipe(up);
    });
    tunnels.add(up);
    up.on('error', () => clientSock.destroy());
    clientSock.on('error', () => up.destroy());
  });
  await listen(proxy, port);
  const { res, socket } = await new Promise((resolve, reject) => {
    const req = http.request({
      host: HOST, port, localAddress: HOST, agent: false, method: 'CONNECT', path: `${HOST}:${CONNECT_TARGET_PORT}`,
      headers: { Host: `${HOST}:${CONNECT_TARGET_PORT}`, 'User-Agent': UA, 'Proxy-Authorization': 'Basic dXNlcjpwcm94eS1wYXNz' },
    });
    req.on('connect', (r, s) => resolve({ res: r, socket: s }));
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) throw new Error(`connect-tunnel: CONNECT got ${res.statusCode}`);
  const inner = await new Promise((resolve, reject) => {
    const req = http.request({
      createConnection: () => socket, path: '/inside?via=tunnel',
      headers: { Host: `${HOST}:${CONNECT_TARGET_PORT}`, 'User-Agent': UA, Accept: 'application/json', Connection: 'close' },
    }, (r) => readBody(r).then((b) => resolve({ res: r, body: b }), reject));
    req.on('error', reject);
    req.end();
  });
  if (inner.res.statusCode !== 200) throw new Error('connect-tunnel: inner GET failed');
  await new Promise((r) => (socket.destroyed ? r() : socket.on('close', r)));
  await closeServer(proxy);
  await closeServer(target);
};

// Ordinary HTTP on an unusual port: detection must be by content.
cases['port-9999'] = async (port) => {
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method === 'GET') json(res, 200, { service: 'inventory', status: 'up', port });
    else json(res, 200, { echoed: JSON.parse(body.toString()) });
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  expectStatus(await request(port, { agent, path: '/status', headers: { Accept: 'application/json' } }), 200, 'status');
  expectStatus(await request(port, { agent, method: 'POST', path: '/echo', headers: { 'Content-Type': 'application/json' } },
    JSON.stringify({ sku: 'B-7', qty: 3 })), 200, 'echo');
  agent.destroy();
  await closeServer(server);
};

// A binary length-prefixed echo protocol on TCP port 80. Contains no HTTP at all.
cases['not-http-port-80'] = async (port) => {
  const frame = (payload) => { const h = Buffer.alloc(4); h.writeUInt32BE(payload.length); return Buffer.concat([h, payload]); };
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0);
        const payload = Buffer.from(buf.subarray(4, 4 + n)).reverse(); // reply: the payload reversed
        buf = buf.subarray(4 + n);
        sock.write(frame(payload));
      }
    });
    sock.on('end', () => sock.end());
    sock.on('error', () => {});
  });
  await listen(server, port);
  const payloads = [
    Buffer.concat([Buffer.from([0x00, 0xb1, 0x7e, 0x01]), prngBytes(12, 1)]), // "hello" with a binary magic
    prngBytes(300, 2), prngBytes(5, 3), prngBytes(1400, 4), prngBytes(64, 5),
  ];
  await new Promise((resolve, reject) => {
    const s = net.connect({ port, host: HOST, localAddress: HOST });
    let i = 0;
    let buf = Buffer.alloc(0);
    s.on('connect', () => s.write(frame(payloads[0])));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0);
        const got = Buffer.from(buf.subarray(4, 4 + n)).reverse();
        buf = buf.subarray(4 + n);
        if (!got.equals(payloads[i])) return reject(new Error('not-http-port-80: bad echo'));
        i++;
        if (i < payloads.length) setTimeout(() => s.write(frame(payloads[i])), 10);
        else s.end();
      }
    });
    s.on('close', resolve);
    s.on('error', reject);
  });
  server.close();
};

// A 300 KB request body and a 1 MB response body on one connection.
cases['large-bodies'] = async (port) => {
  const upload = prngBytes(300 * 1024, 7);
  const download = Buffer.from('0123456789abcdef'.repeat(64 * 1024)); // 1 MiB
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method === 'POST') {
      json(res, 201, { received: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') });
    } else {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': download.length });
      res.end(download);
    }
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const up = expectStatus(await request(port, { agent, method: 'POST', path: '/upload', headers: { 'Content-Type': 'application/octet-stream' } }, upload), 201, 'upload');
  if (JSON.parse(up.body).received !== upload.length) throw new Error('large-bodies: upload size');
  const down = expectStatus(await request(port, { agent, path: '/download' }), 200, 'download');
  if (!down.body.equals(download)) throw new Error('large-bodies: download mismatch');
  agent.destroy();
  await closeServer(server);
};

// 20 concurrent short connections (Connection: close), one GET each.
cases['many-connections'] = async (port) => {
  const server = httpServer(async (req, res) => {
    await readBody(req);
    json(res, 200, { item: Number(req.url.split('/').pop()) });
  });
  await listen(server, port);
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) =>
    request(port, { agent: false, path: `/item/${i}`, headers: { Connection: 'close' } })));
  if (rs.some((r) => r.res.statusCode !== 200)) throw new Error('many-connections: a request failed');
  await closeServer(server);
};

// PUT, PATCH, DELETE, OPTIONS and PURGE on one keep-alive connection.
cases['mixed-methods'] = async (port) => {
  const server = httpServer(async (req, res) => {
    const body = await readBody(req);
    switch (req.method) {
      case 'PUT': return json(res, 200, { replaced: req.url, with: JSON.parse(body.toString()) });
      case 'PATCH': return json(res, 200, { patched: req.url, with: JSON.parse(body.toString()) });
      case 'DELETE': res.writeHead(204); return res.end();
      case 'OPTIONS':
        res.writeHead(204, { Allow: 'GET, PUT, PATCH, DELETE, OPTIONS, PURGE', 'Access-Control-Allow-Methods': 'GET, PUT, PATCH, DELETE', 'Access-Control-Max-Age': '600' });
        return res.end();
      case 'PURGE': return json(res, 200, { purged: req.url });
      default: return json(res, 405, { error: 'method not allowed' });
    }
  });
  await listen(server, port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const jh = { 'Content-Type': 'application/json' };
  expectStatus(await request(port, { agent, method: 'PUT', path: '/items/1', headers: jh }, JSON.stringify({ name: 'bolt', qty: 40 })), 200, 'PUT');
  expectStatus(await request(port, { agent, method: 'PATCH', path: '/items/1', headers: { 'Content-Type': 'application/merge-patch+json' } }, JSON.stringify({ qty: 41 })), 200, 'PATCH');
  expectStatus(await request(port, { agent, method: 'DELETE', path: '/items/1' }), 204, 'DELETE');
  expectStatus(await request(port, { agent, method: 'OPTIONS', path: '/items', headers: { Origin: 'http://127.0.0.1', 'Access-Control-Request-Method': 'PATCH' } }), 204, 'OPTIONS');
  expectStatus(await request(port, { agent, method: 'PURGE', path: '/cache/items/1' }), 200, 'PURGE');
  agent.destroy();
  await closeServer(server);
};

// ---------------------------------------------------------------------------------------------
// mid-stream.pcap is derived from keepalive.pcap, not re-run.
// N = the number of the frame that carries request 2 (POST /api/login); editcap keeps frames N+1..end,
// so the capture starts with the server's answer to that POST (a response whose request was lost),
// mid-connection, without the handshake or the first exchange. N is 8 in practice (3-way handshake,
// request 1, its ACK, response 1, its ACK, then request 2) but is found with tshark on each run so
// a different ACK pattern cannot make the cut land elsewhere.
function deriveMidStream(outDir) {
  const src = join(outDir, 'keepalive.pcap');
  const dst = join(outDir, 'mid-stream.pcap');
  const n = Number(execFileSync('tshark', ['-r', src, '-Y', 'http.request.method == "POST"', '-T', 'fields', '-e', 'frame.number'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n')[0]);
  if (!n) throw new Error('mid-stream: no POST found in keepalive.pcap');
  const tmp = `${dst}.tmp`;
  execFileSync('editcap', ['-r', src, tmp, `${n + 1}-${packetCount(src)}`]);
  execFileSync('mv', [tmp, dst]);
  console.log(`wrote ${dst}: ${packetCount(dst)} packets (keepalive.pcap without its first ${n} packets)`);
}

// ---------------------------------------------------------------------------------------------
async function main() {
  requireTools('tcpdump', 'capinfos', 'editcap', 'tshark', 'nghttp', 'nghttpx');
  const outDir = process.argv[2] ?? 'pcaps/http1';
  const wanted = process.argv.slice(3);
  const names = wanted.length ? wanted : [...Object.keys(PORTS), 'mid-stream'];
  for (const name of names) {
    if (name === 'mid-stream') { deriveMidStream(outDir); continue; }
    const fn = cases[name];
    if (!fn) throw new Error(`unknown case ${name}`);
    const port = PORTS[name];
    const file = join(outDir, `${name}.pcap`);
    if (fn.capturesItself) {
      await fn(port, file);
    } else {
      await capture(file, `tcp port ${port}`, () => fn(port));
    }
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record http1: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
