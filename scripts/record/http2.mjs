// Records the HTTP/2 (h2c) decoder fixtures in pcaps/http2/ from real traffic on loopback.
//
//   node scripts/record/http2.mjs [OUT_DIR] [case ...]       (default OUT_DIR: pcaps/http2, all cases)
//   node scripts/record/http2.mjs --verify [OUT_DIR]         (only re-check existing captures with tshark)
//
// Every case starts a node:http2 h2c server (cleartext, prior knowledge: no Upgrade, no TLS) on its own
// port on 127.0.0.1, starts tcpdump on that port, runs a real client (node:http2, or h2load) and stops
// tcpdump. Bodies, header values, request order and the `date` header are fixed, so the captured
// *content* is the same on every run (TCP ports, sequence numbers, timestamps, and how frames fall
// into TCP segments differ). After each capture, tshark (-d tcp.port==PORT,http2) checks that what
// the case is for is visible (CONTINUATION present, padding present, SETTINGS values, ...); a case
// whose capture does not show it fails the run.
//
// mid-connection.pcap is derived from interleaved.pcap with editcap, not re-run (see deriveMidConnection).
import http2 from 'node:http2';
import zlib from 'node:zlib';
import net from 'node:net';
import crypto from 'node:crypto';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { capture, sleep, listen, prngBytes, requireTools, startChild } from './lib.mjs';
import { summarize, formatFrames, headerValues, tsharkFields, check, FLAG, packetCount } from './grpc/tshark.mjs';

const HOST = '127.0.0.1';
const FIXED_DATE = 'Tue, 04 Mar 2025 10:00:00 GMT';
const UA = 'tapwire-recorder/1.0';
const { constants: C } = http2;

// One port per case so every capture filter and decode-as is exact.
const PORTS = {
  'h2c-prior-knowledge': 18201,
  interleaved: 18202,
  'large-headers-continuation': 18203,
  'padded-priority-ping': 18204,
  h2load: 18205,
  'mid-connection': 18202, // derived from interleaved.pcap
};

// ---------------------------------------------------------------------------------------------
// helpers

/** h2c server (core API); handler(stream, headers, body) runs once the request body has ended. */
function h2Server(handler, options = {}) {
  const server = http2.createServer(options);
  server.on('stream', (stream, headers) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('error', () => { /* client resets are part of the cases */ });
    stream.on('end', () => {
      Promise.resolve(handler(stream, headers, Buffer.concat(chunks))).catch((e) => {
        console.error('server handler failed:', e);
        stream.close(C.NGHTTP2_INTERNAL_ERROR);
      });
    });
  });
  server.on('sessionError', (e) => console.error('server session error:', e));
  return server;
}

function respondJson(stream, status, obj, extra = {}) {
  const body = Buffer.from(JSON.stringify(obj));
  stream.respond({ ':status': status, date: FIXED_DATE, 'content-type': 'application/json', 'content-length': body.length, ...extra });
  stream.end(body);
}

/** One request on SESSION; resolves { headers, body, trailers } when the response has ended. */
function request(session, headers, body, options = {}) {
  return new Promise((resolve, reject) => {
    const req = session.request({ 'user-agent': UA, ...headers }, { endStream: body === undefined, ...options });
    const chunks = [];
    let resHeaders;
    let trailers;
    req.on('response', (h) => { resHeaders = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ headers: resHeaders, body: Buffer.concat(chunks), trailers, req }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

function expectStatus(r, status, what) {
  if (r.headers[':status'] !== status) throw new Error(`${what}: status ${r.headers[':status']}, expected ${status}`);
  return r;
}

function closeSession(session) {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) return resolve();
    session.close(resolve);
  });
}

function closeServer(server) {
  return new Promise((resolve) => server.close(() => resolve()));
}

const connect = (port, options = {}) => new Promise((resolve, reject) => {
  const s = http2.connect(`http://${HOST}:${port}`, { localAddress: HOST, ...options });
  s.once('connect', () => { s.off('error', reject); resolve(s); });
  s.once('error', reject);
});

// ---------------------------------------------------------------------------------------------
// cases: each is async (port) => { ... } and runs inside the capture; verify[name](file, port) checks it

const cases = {};
const verify = {};

// Several GET/POST on one connection: JSON bodies, a gzip-encoded response, authorization and cookie
// headers, response trailers, a 404, a stream the client cancels (RST_STREAM CANCEL), a 204 after the
// reset, then the client closes the session (GOAWAY).
cases['h2c-prior-knowledge'] = async (port) => {
  const items = [{ id: 1, name: 'bolt', qty: 40 }, { id: 2, name: 'nut', qty: 120 }];
  const report = {
    period: '2025-03', currency: 'EUR',
    rows: Array.from({ length: 60 }, (_, i) => ({ sku: `SKU-${1000 + i}`, units: (i * 37) % 101, revenue: ((i * 7919) % 10007) / 100 })),
  };
  const reportJson = Buffer.from(JSON.stringify(report));
  const reportGz = zlib.gzipSync(reportJson, { level: 9 }); // node writes mtime 0: same bytes every run
  const exportCsv = Buffer.from('id,name,qty\n1,bolt,40\n2,nut,120\n3,washer,75\n');
  const server = h2Server(async (stream, h, body) => {
    const path = h[':path'];
    if (h[':method'] === 'GET' && path === '/api/items') {
      return respondJson(stream, 200, { items }, { 'cache-control': 'no-store', 'x-request-id': h['x-request-id'] ?? '' });
    }
    if (h[':method'] === 'POST' && path === '/api/items') {
      const item = JSON.parse(body.toString());
      return respondJson(stream, 201, { id: 3, ...item }, { location: '/api/items/3', 'set-cookie': 'last_item=3; Path=/; HttpOnly' });
    }
    if (path === '/api/report') {
      stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': reportGz.length, vary: 'accept-encoding' });
      return stream.end(reportGz);
    }
    if (path === '/api/export') {
      stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'text/csv', trailer: 'x-checksum, x-row-count' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({
        'x-checksum': `sha256=${crypto.createHash('sha256').update(exportCsv).digest('hex')}`, 'x-row-count': '3',
      }));
      stream.write(exportCsv.subarray(0, 22));
      await sleep(5);
      return stream.end(exportCsv.subarray(22));
    }
    if (path === '/api/slow') {
      // answers slowly; the client cancels after the first chunk
      stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'text/plain' });
      for (let i = 0; i < 50 && !stream.closed && !stream.destroyed; i++) {
        stream.write(`tick ${i}\n`);
        await sleep(100);
      }
      if (!stream.closed && !stream.destroyed) stream.end();
      return undefined;
    }
    if (h[':method'] === 'DELETE' && path === '/api/items/3') {
      stream.respond({ ':status': 204, date: FIXED_DATE }, { endStream: true });
      return undefined;
    }
    return respondJson(stream, 404, { error: 'not found', path });
  });
  await listen(server, port);
  const session = await connect(port);
  const auth = { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0YXB3aXJlIn0.c2lnbmF0dXJl', cookie: 'session=3f9a0c; theme=dark' };
  const jget = (path, extra = {}) => request(session, { ':method': 'GET', ':path': path, accept: 'application/json', ...auth, ...extra });

  const r1 = expectStatus(await jget('/api/items', { 'x-request-id': 'req-0001' }), 200, 'GET /api/items');
  if (JSON.parse(r1.body).items.length !== 2) throw new Error('GET /api/items: body');
  const r2 = expectStatus(await request(session, { ':method': 'POST', ':path': '/api/items', 'content-type': 'application/json', ...auth, 'x-request-id': 'req-0002' },
    JSON.stringify({ name: 'washer', qty: 75 })), 201, 'POST /api/items');
  if (JSON.parse(r2.body).id !== 3) throw new Error('POST /api/items: body');
  const r3 = expectStatus(await jget('/api/report', { 'accept-encoding': 'gzip, deflate' }), 200, 'GET /api/report');
  if (!zlib.gunzipSync(r3.body).equals(reportJson)) throw new Error('GET /api/report: gzip body');
  const r4 = expectStatus(await request(session, { ':method': 'GET', ':path': '/api/export', accept: 'text/csv', te: 'trailers', ...auth }), 200, 'GET /api/export');
  if (r4.trailers?.['x-row-count'] !== '3' || !r4.body.equals(exportCsv)) throw new Error('GET /api/export: trailers/body');
  expectStatus(await jget('/api/orders/999'), 404, 'GET /api/orders/999');
  // cancel a slow stream after its first DATA frame
  await new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': '/api/slow', 'user-agent': UA, ...auth }, { endStream: true });
    req.once('data', () => req.close(C.NGHTTP2_CANCEL));
    req.on('close', () => (req.rstCode === C.NGHTTP2_CANCEL ? resolve() : reject(new Error(`slow: rstCode ${req.rstCode}`))));
    req.on('error', () => {});
  });
  await sleep(50);
  expectStatus(await request(session, { ':method': 'DELETE', ':path': '/api/items/3', ...auth }), 204, 'DELETE /api/items/3');
  await closeSession(session);
  await closeServer(server);
};
verify['h2c-prior-knowledge'] = (file, port, s) => {
  check(s.frames.RST_STREAM >= 1, 'RST_STREAM present');
  const rst = tsharkFields(file, port, 'http2.type == 3', ['http2.rst_stream.error']).flatMap(([e]) => e);
  check(rst.includes('8'), 'RST_STREAM with CANCEL (8)');
  check(s.frames.GOAWAY >= 1, 'GOAWAY present');
  const statuses = headerValues(file, port, ':status');
  for (const st of ['200', '201', '404', '204']) check(statuses.includes(st), `:status ${st}`);
  check(headerValues(file, port, 'content-encoding').includes('gzip'), 'content-encoding: gzip');
  check(headerValues(file, port, 'x-row-count').includes('3'), 'response trailer x-row-count');
  check(headerValues(file, port, 'authorization').length >= 1 && headerValues(file, port, 'cookie').length >= 1, 'authorization and cookie');
  return `statuses ${statuses.join(',')}; trailers x-checksum,x-row-count; RST_STREAM CANCEL; content-encoding gzip`;
};

// 20 concurrent GETs on one connection (stream N = 2N+1 asks for /stream/N). The server answers in 4
// waves of 5 streams, 12 ms apart (wave = N mod 4), so response HEADERS are spread over the capture
// (mid-connection.pcap relies on that); every body is written in 6 chunks 3 ms apart, one chunk per
// stream per round, so DATA frames of different streams interleave within and across waves.
// Body of /stream/N: 6 lines "stream NN chunk K " + a 200-byte run of one letter (A+N) + "\n".
const INTERLEAVED_STREAMS = 20;
const INTERLEAVED_CHUNKS = 6;
const interleavedChunk = (n, k) => `stream ${String(n).padStart(2, '0')} chunk ${k} ${String.fromCharCode(65 + n).repeat(200)}\n`;
cases.interleaved = async (port) => {
  const server = h2Server(async (stream, h) => {
    const n = Number(h[':path'].split('/').pop());
    await sleep(12 * (n % 4));
    stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'text/plain', 'x-stream-index': String(n) });
    for (let k = 0; k < INTERLEAVED_CHUNKS; k++) {
      // a 3 ms pause per round lets the other streams write theirs in between
      await sleep(3);
      await new Promise((r) => setImmediate(r));
      if (k === INTERLEAVED_CHUNKS - 1) stream.end(interleavedChunk(n, k));
      else stream.write(interleavedChunk(n, k));
    }
  });
  await listen(server, port);
  const session = await connect(port);
  const rs = await Promise.all(Array.from({ length: INTERLEAVED_STREAMS }, (_, n) =>
    request(session, { ':method': 'GET', ':path': `/stream/${n}`, accept: 'text/plain' })));
  rs.forEach((r, n) => {
    const want = Array.from({ length: INTERLEAVED_CHUNKS }, (_, k) => interleavedChunk(n, k)).join('');
    if (r.body.toString() !== want) throw new Error(`interleaved: body of stream ${n} mixed up`);
  });
  await closeSession(session);
  await closeServer(server);
};
verify.interleaved = (file, port, s) => {
  const data = s.frameList.filter((f) => f.type === 'DATA' && f.length > 0);
  const streams = new Set(data.map((f) => f.stream));
  check(streams.size === INTERLEAVED_STREAMS, `${INTERLEAVED_STREAMS} streams with DATA (got ${streams.size})`);
  // count switches between streams among DATA frames; 20 streams sent one after another would switch 19 times
  let switches = 0;
  for (let i = 1; i < data.length; i++) if (data[i].stream !== data[i - 1].stream) switches++;
  check(switches > 2 * INTERLEAVED_STREAMS, `DATA frames interleaved (${switches} stream switches)`);
  return `${streams.size} streams, ${data.length} DATA frames, ${switches} stream switches between consecutive DATA frames`;
};

// Request and response header blocks of ~30 KB: 20 headers x-blob-00..19 of 1 KiB each (base64 of fixed
// pseudo-random bytes, so HPACK Huffman cannot shrink them below the 16384-byte max frame size), so
// node sends HEADERS + CONTINUATION. A second request repeats the headers (HPACK dynamic table reuse
// for the few that fit), with a body.
const bigHeaders = (prefix, seed) => Object.fromEntries(Array.from({ length: 20 }, (_, i) =>
  [`${prefix}-${String(i).padStart(2, '0')}`, prngBytes(768, seed + i).toString('base64')]));
cases['large-headers-continuation'] = async (port) => {
  const resHeaders = bigHeaders('x-echo', 500);
  const server = h2Server(async (stream, h, body) => {
    const n = Object.keys(h).filter((k) => k.startsWith('x-blob-')).length;
    respondJson(stream, 200, { blobHeaders: n, bodyBytes: body.length }, h[':path'] === '/big-response' ? resHeaders : {});
  }, { maxHeaderListSize: 256 * 1024 });
  await listen(server, port);
  const session = await connect(port, { maxHeaderListSize: 256 * 1024 });
  const reqHeaders = bigHeaders('x-blob', 100);
  const r1 = expectStatus(await request(session, { ':method': 'GET', ':path': '/big-response', ...reqHeaders }), 200, 'GET /big-response');
  if (JSON.parse(r1.body).blobHeaders !== 20 || r1.headers['x-echo-19'] !== resHeaders['x-echo-19']) throw new Error('large headers: echo');
  const r2 = expectStatus(await request(session, { ':method': 'POST', ':path': '/upload', 'content-type': 'application/json', ...reqHeaders },
    JSON.stringify({ note: 'same large headers again' })), 200, 'POST /upload');
  if (JSON.parse(r2.body).blobHeaders !== 20) throw new Error('large headers: second request');
  await closeSession(session);
  await closeServer(server);
};
verify['large-headers-continuation'] = (file, port, s) => {
  check(s.frames.CONTINUATION >= 2, `CONTINUATION frames present (got ${s.frames.CONTINUATION ?? 0})`);
  const headers = s.frameList.filter((f) => f.type === 'HEADERS' && !(f.flags & FLAG.END_HEADERS));
  check(headers.length >= 2, 'HEADERS without END_HEADERS, continued');
  return `${headers.length} HEADERS without END_HEADERS (streams ${[...new Set(headers.map((f) => f.stream))].join(',')}) + ${s.frames.CONTINUATION} CONTINUATION`;
};

// Padding on every HEADERS and DATA frame (PADDING_STRATEGY_MAX on both ends), PINGs both ways,
// PRIORITY (a HEADERS frame with the PRIORITY flag, and a PRIORITY frame on an open stream),
// SETTINGS header_table_size 256 and max_frame_size 32768 from both ends, and 200 KB bodies up and
// down so WINDOW_UPDATE frames are needed (initial window 65535).
// The server's first SETTINGS has both values; the client's first SETTINGS has max_frame_size 32768 and
// it lowers header_table_size to 256 mid-connection (a second SETTINGS after the first exchange), so
// the server's next response header block starts with a dynamic table size update (RFC 7541 4.2) and
// the decoder must shrink that direction's table, evicting entries. (When the client lowered it in its
// first SETTINGS instead, tshark 4.0.17 could not decode any response header block: "unexpected
// decompression state: -523"; this order keeps tshark usable as the oracle.)
// node never sends frames larger than 16384 bytes whatever the peer allows, so a second connection
// (a hand-framed client, see rawUpload) sends two DATA frames of 30201 (padded) and 20000 bytes that
// are valid only because the server advertised max_frame_size 32768.
const SERVER_SETTINGS = { headerTableSize: 256, maxFrameSize: 32768 };
const CLIENT_SETTINGS = { maxFrameSize: 32768 };
cases['padded-priority-ping'] = async (port) => {
  const upload = prngBytes(200 * 1024, 11);
  const download = Buffer.from('tapwire-padded-download-'.repeat(Math.ceil(200 * 1024 / 24))).subarray(0, 200 * 1024);
  const server = h2Server(async (stream, h, body) => {
    if (h[':path'] === '/upload') {
      return respondJson(stream, 200, { received: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') });
    }
    if (h[':path'] === '/download') {
      stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'application/octet-stream', 'content-length': download.length });
      return stream.end(download);
    }
    return respondJson(stream, 200, { hello: 'padded' }, { 'x-custom': 'abc' });
  }, { paddingStrategy: C.PADDING_STRATEGY_MAX, settings: SERVER_SETTINGS });
  let serverSession;
  server.on('session', (s) => { serverSession = s; });
  await listen(server, port);
  const session = await connect(port, { paddingStrategy: C.PADDING_STRATEGY_MAX, settings: CLIENT_SETTINGS });
  const ping = (s, payload) => new Promise((resolve, reject) => {
    s.ping(Buffer.from(payload), (err) => (err ? reject(err) : resolve()));
  });
  expectStatus(await request(session, { ':method': 'GET', ':path': '/', accept: 'application/json' }), 200, 'GET /');
  await ping(session, 'tapwire1');
  // lower the header table the server's encoder may use, mid-connection; resolves on the SETTINGS ACK
  await new Promise((resolve, reject) => session.settings({ headerTableSize: 256 }, (err) => (err ? reject(err) : resolve())));
  // HEADERS with the PRIORITY flag: depends exclusively on stream 1 (closed), weight 200
  expectStatus(await request(session, { ':method': 'GET', ':path': '/hello', accept: 'application/json' }, undefined,
    { parent: 1, weight: 200, exclusive: true }), 200, 'GET /hello');
  const up = expectStatus(await request(session, { ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' }, upload), 200, 'POST /upload');
  if (JSON.parse(up.body).received !== upload.length) throw new Error('padded: upload size');
  await ping(serverSession, 'tapwire2');
  // a PRIORITY frame on an open stream: sent once the response headers have arrived
  const down = await new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': '/download', 'user-agent': UA }, { endStream: true });
    const chunks = [];
    req.on('response', () => req.priority({ weight: 32, exclusive: false, parent: 0, silent: false }));
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
  if (!down.equals(download)) throw new Error('padded: download mismatch');
  await closeSession(session);
  // node (nghttp2) never sends a frame larger than 16384 bytes, whatever the peer's max frame size;
  // a second connection from a hand-framed client sends DATA frames of 30201 and 20000 bytes, which
  // the node server accepts because it advertised max_frame_size 32768.
  const raw = await rawUpload(port, [prngBytes(30000, 12), prngBytes(20000, 13)]);
  if (raw.received !== 50000) throw new Error(`padded: raw upload: ${JSON.stringify(raw)}`);
  await closeServer(server);
};

/**
 * A minimal HTTP/2 client written frame by frame on a TCP socket: preface, SETTINGS (max frame size
 * 32768) and HEADERS (padded, HPACK literals without Huffman) at once, like node's client (before the
 * server's SETTINGS are acknowledged, so no dynamic table size update is needed); once the server's
 * SETTINGS (max frame size 32768) arrive: SETTINGS ACK and one DATA frame per chunk (the first padded
 * with 200 bytes, the last with END_STREAM). It reads frames until the response DATA ends stream 1,
 * ACKs PINGs on the way, and sends GOAWAY. Resolves with the JSON response body.
 */
function rawUpload(port, chunks) {
  const frame = (type, flags, stream, payload) => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type; h[4] = flags; h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  const settings = (pairs) => Buffer.concat(pairs.map(([id, v]) => { const b = Buffer.alloc(6); b.writeUInt16BE(id, 0); b.writeUInt32BE(v, 2); return b; }));
  const str = (s) => { const b = Buffer.from(s); if (b.length > 126) throw new Error('raw: long string'); return Buffer.concat([Buffer.from([b.length]), b]); };
  // literal header field without indexing, indexed name: 4-bit prefix index
  const lit = (index, value) => Buffer.concat([index < 15 ? Buffer.from([index]) : Buffer.from([0x0f, index - 15]), str(value)]);
  const block = Buffer.concat([
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table 3, 6)
    lit(4, '/upload'), lit(1, `${HOST}:${port}`), lit(31, 'application/octet-stream'),
    lit(28, String(chunks.reduce((n, c) => n + c.length, 0))), lit(58, 'tapwire-raw-h2/1.0'),
  ]);
  const pad = (payload, n) => Buffer.concat([Buffer.from([n]), payload, Buffer.alloc(n)]);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: HOST, localAddress: HOST });
    let buf = Buffer.alloc(0);
    let body = Buffer.alloc(0);
    let sent = false;
    sock.on('connect', () => {
      sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, settings([[5, 32768]])),
        frame(0x1, 0x04 | 0x08, 1, pad(block, 16))]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const len = buf.readUIntBE(0, 3);
        const [type, flags] = [buf[3], buf[4]];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        let payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 0x4 && !(flags & 1)) {
          sock.write(frame(0x4, 1, 0, Buffer.alloc(0))); // SETTINGS ACK
          if (!sent) {
            sent = true;
            chunks.forEach((c, i) => {
              const last = i === chunks.length - 1;
              sock.write(frame(0x0, (last ? 0x01 : 0) | (i === 0 ? 0x08 : 0), 1, i === 0 ? pad(c, 200) : c));
            });
          }
        } else if (type === 0x6 && !(flags & 1)) {
          sock.write(frame(0x6, 1, 0, payload)); // PING ACK
        } else if (type === 0x0 && stream === 1) {
          if (flags & 0x08) payload = payload.subarray(1, payload.length - payload[0]);
          body = Buffer.concat([body, payload]);
          if (flags & 0x01) {
            const goaway = Buffer.alloc(8); goaway.writeUInt32BE(0, 0); goaway.writeUInt32BE(0, 4);
            sock.end(frame(0x7, 0, 0, goaway));
          }
        } else if (type === 0x3 || type === 0x7) {
          if (!body.length) reject(new Error(`raw: ${type === 3 ? 'RST_STREAM' : 'GOAWAY'} ${payload.toString('hex')}`));
        }
      }
    });
    sock.on('close', () => { try { resolve(JSON.parse(body.toString())); } catch (e) { reject(new Error(`raw: bad response body ${body}`)); } });
    sock.on('error', reject);
  });
}
verify['padded-priority-ping'] = (file, port, s) => {
  const padded = s.frameList.filter((f) => f.flags & FLAG.PADDED && (f.type === 'DATA' || f.type === 'HEADERS'));
  check(padded.some((f) => f.type === 'DATA') && padded.some((f) => f.type === 'HEADERS'), 'padded DATA and HEADERS');
  const unpadded = s.frameList.filter((f) => (f.type === 'DATA' || f.type === 'HEADERS') && !(f.flags & FLAG.PADDED));
  check(s.frames.PING >= 4, `PING + ACK both ways (got ${s.frames.PING ?? 0})`);
  check(s.frames.PRIORITY >= 1, 'PRIORITY frame present');
  check(s.frameList.some((f) => f.type === 'HEADERS' && f.flags & FLAG.PRIORITY), 'HEADERS with PRIORITY flag');
  check(s.frames.WINDOW_UPDATE >= 2, 'WINDOW_UPDATE present');
  // SETTINGS values by sender, and the header block that follows the client's header_table_size 256
  const settings = tsharkFields(file, port, 'http2.type == 4 && http2.flags.ack.settings == 0',
    ['tcp.srcport', 'http2.settings.header_table_size', 'http2.settings.max_frame_size']);
  const by = (who, i, v) => settings.filter(([[src]]) => (Number(src) === port) === (who === 'server')).some((r) => r[i].includes(v));
  check(by('server', 1, '256') && by('client', 1, '256'), 'SETTINGS header_table_size 256 from both ends');
  check(by('server', 2, '32768') && by('client', 2, '32768'), 'SETTINGS max_frame_size 32768 from both ends');
  const blocks = tsharkFields(file, port, 'http2.type == 1', ['http2.type', 'http2.header.count']).flatMap(([, counts]) => counts);
  check(blocks.length === s.frames.HEADERS && blocks.every((c) => Number(c) > 0), `tshark decodes every header block (${blocks})`);
  const updates = tsharkFields(file, port, 'http2.header_table_size_update', ['tcp.srcport', 'http2.header_table_size_update.header_table_size'])
    .flatMap(([[src], v]) => v.map((x) => `${Number(src) === port ? 'server' : 'client'}→${x}`));
  check(updates.some((u) => u === 'server→256'), `server header block with a dynamic table size update to 256 (got ${updates})`);
  const biggest = Math.max(...s.frameList.filter((f) => f.type === 'DATA').map((f) => f.length));
  check(biggest > 16384 && biggest <= 32768, `DATA frames larger than 16384 (max ${biggest})`);
  check(s.frameList.filter((f) => f.type === 'DATA' && f.length > 16384).length === 2, 'two DATA frames > 16384 from the raw client');
  const pings = tsharkFields(file, port, 'http2.type == 6', ['http2.ping']).flatMap(([p]) => p);
  return `${padded.length} padded frames (pad ${Math.min(...padded.map((f) => f.padLength))}–${Math.max(...padded.map((f) => f.padLength))} B), `
    + `${unpadded.length} unpadded DATA/HEADERS; SETTINGS header_table_size=256, max_frame_size=32768 (both ends); `
    + `dynamic table size updates ${updates.join(', ')}; `
    + `largest DATA ${biggest} B; PING payloads ${[...new Set(pings)].map((p) => Buffer.from(p.replace(/:/g, ''), 'hex').toString()).join(',')}`;
};

// h2load (nghttp2) against a node:http2 h2c server: 200 requests, 2 connections, 10 streams each.
cases.h2load = async (port) => {
  const body = Buffer.from(JSON.stringify({ service: 'tapwire-h2load', ok: true, note: 'x'.repeat(200) }));
  const server = h2Server(async (stream) => {
    stream.respond({ ':status': 200, date: FIXED_DATE, 'content-type': 'application/json', 'content-length': body.length });
    stream.end(body);
  });
  await listen(server, port);
  const h2load = startChild('h2load', ['-n', '200', '-c', '2', '-m', '10', `http://${HOST}:${port}/`]);
  const { code } = await h2load.exited;
  const out = h2load.output();
  if (code !== 0 || !/200 succeeded/.test(out) || !/h2c/.test(out)) throw new Error(`h2load failed (${code}):\n${out}`);
  await closeServer(server);
};
verify.h2load = (file, port, _s) => {
  const statuses = headerValues(file, port, ':status');
  const methods = headerValues(file, port, ':method');
  check(methods.length === 200 && statuses.length === 200, `200 requests and responses (got ${methods.length}/${statuses.length})`);
  const conns = new Set(tsharkFields(file, port, 'http2.magic', ['tcp.stream']).map(([v]) => v[0]));
  check(conns.size === 2, '2 connections with the h2c preface');
  return `${methods.length} requests, ${statuses.length} responses on ${conns.size} connections (h2c prior knowledge, preface seen on both)`;
};

// ---------------------------------------------------------------------------------------------
// mid-connection.pcap is derived from interleaved.pcap, not re-run.
// N = the number of the first packet that carries a response HEADERS frame (server to client: the
// first wave's). editcap keeps packets N+1..end, so the capture starts mid-connection: no preface, no
// SETTINGS, no request HEADERS, and the first wave's response HEADERS are gone, so the server's HPACK
// dynamic table is unknown when the later waves' HEADERS arrive (they refer to entries the first wave
// added, e.g. the date and content-type), and 5 streams show DATA without any HEADERS. N is found with
// tshark on each run (11 in the committed capture).
function deriveMidConnection(outDir) {
  const src = join(outDir, 'interleaved.pcap');
  const dst = join(outDir, 'mid-connection.pcap');
  const port = PORTS.interleaved;
  const rows = tsharkFields(src, port, `http2.type == 1 && tcp.srcport == ${port}`, ['frame.number']);
  const n = Number(rows[0]?.[0]?.[0]);
  if (!n) throw new Error('mid-connection: no response HEADERS in interleaved.pcap');
  const tmp = `${dst}.tmp`;
  execFileSync('editcap', ['-r', src, tmp, `${n + 1}-${packetCount(src)}`]);
  execFileSync('mv', [tmp, dst]);
  console.log(`wrote ${dst}: ${packetCount(dst)} packets (interleaved.pcap without its first ${n} packets: N=${n})`);
  return n;
}
verify['mid-connection'] = (file, port, s) => {
  check(tsharkFields(file, port, 'http2.magic', ['frame.number']).length === 0, 'no connection preface');
  check(s.frames.DATA > 0, 'DATA frames present');
  const headerStreams = new Set(s.frameList.filter((f) => f.type === 'HEADERS').map((f) => f.stream));
  const dataStreams = new Set(s.frameList.filter((f) => f.type === 'DATA').map((f) => f.stream));
  const orphans = [...dataStreams].filter((id) => !headerStreams.has(id));
  check(headerStreams.size > 0 && orphans.length > 0, 'response HEADERS left after the cut, and streams with DATA but no HEADERS');
  return `no preface, no request HEADERS; ${s.frames.HEADERS} response HEADERS (HPACK state unknown), `
    + `${dataStreams.size} streams with DATA, ${orphans.length} of them without HEADERS (streams ${orphans.join(',')})`;
};

// ---------------------------------------------------------------------------------------------
function verifyCase(name, file) {
  const port = PORTS[name];
  const s = summarize(file, port);
  const note = verify[name](file, port, s);
  return { name, file, port, packets: s.packets, frames: formatFrames(s.frames), grpc: s.grpc, note };
}

function printRow(r) {
  console.log(`  ${r.name}: port ${r.port}, ${r.packets} packets; frames: ${r.frames}\n    ${r.note}`);
}

async function main() {
  requireTools('tcpdump', 'capinfos', 'editcap', 'tshark', 'h2load');
  const args = process.argv.slice(2);
  const verifyOnly = args[0] === '--verify';
  if (verifyOnly) args.shift();
  const outDir = args[0] ?? 'pcaps/http2';
  const wanted = args.slice(1);
  const names = wanted.length ? wanted : Object.keys(PORTS);
  for (const name of names) {
    if (!(name in PORTS)) throw new Error(`unknown case ${name}`);
    const file = join(outDir, `${name}.pcap`);
    if (!verifyOnly) {
      if (name === 'mid-connection') deriveMidConnection(outDir);
      else await capture(file, `tcp port ${PORTS[name]}`, () => cases[name](PORTS[name]));
    }
    printRow(verifyCase(name, file));
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record http2: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
