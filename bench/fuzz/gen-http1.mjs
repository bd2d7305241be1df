// Structure-aware HTTP/1.x generator (RFC 9112): requests and responses with Content-Length,
// chunked bodies (extensions, trailers), close-delimited bodies, 1xx interim responses, HEAD /
// 204 / 304, pipelining and Upgrade. Output is a list of units (one message each) with the
// positions of their length fields, which the protocol-aware mutations lie about.
import { encodedBody, jsonBody } from './gen-h2.mjs';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'M-SEARCH', 'PURGE'];
const REASONS = { 100: 'Continue', 101: 'Switching Protocols', 103: 'Early Hints', 200: 'OK', 201: 'Created', 204: 'No Content', 206: 'Partial Content', 301: 'Moved', 304: 'Not Modified', 400: 'Bad Request', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' };
const EXTRA = ['host', 'user-agent', 'accept', 'accept-encoding', 'content-type', 'authorization', 'cookie', 'x-request-id', 'traceparent', 'cache-control', 'etag', 'if-none-match', 'transfer-encoding', 'connection', 'keep-alive', 'expect', 'x-api-key', 'set-cookie', 'vary'];

/** A message under construction: text pieces plus the length fields' offsets. */
class Msg {
  constructor() { this.parts = []; this.len = 0; this.fields = []; }
  add(s) {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    this.parts.push(b); this.len += b.length;
    return this;
  }
  /** A length written as text; its position is recorded. */
  field(kind, value, text) {
    this.fields.push({ off: this.len, width: text.length, kind, value, text: true, hex: kind === 'http-chunk' });
    return this.add(text);
  }
  bytes() { return Buffer.concat(this.parts, this.len); }
}

function headerValue(rng) {
  return rng.weighted([
    [6, () => rng.token(1, 24)],
    [1, () => ''],
    [1, () => ` ${rng.token()} `],
    [1, () => `Bearer ${rng.token(16, 40)}`],
    [1, () => 'x'.repeat(rng.int(100, 3000))],
    [1, () => rng.bytes(rng.int(1, 20)).toString('latin1').replace(/[\r\n]/g, 'x')],
  ])();
}

function headers(m, rng, fixed) {
  const names = [];
  for (let k = rng.int(0, 8); k > 0; k--) names.push(rng.pick(EXTRA));
  const all = [...fixed];
  for (const n of names) {
    if (n === 'content-length' || n === 'transfer-encoding') continue;
    all.push([rng.chance(0.3) ? n.toUpperCase() : n, headerValue(rng)]);
  }
  for (let i = all.length - 1; i > 0 && rng.chance(0.5); i--) {
    const j = rng.below(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  for (const [n, v] of all) {
    if (n === '\0cl') m.add('Content-Length: ').field('http-cl', v, String(v)).add('\r\n');
    else m.add(`${n}:${rng.chance(0.9) ? ' ' : ''}${v}\r\n`);
  }
  if (rng.chance(0.03)) m.add(' obs-fold continuation\r\n');
  m.add(rng.chance(0.97) ? '\r\n' : '\n');
}

function body(rng) {
  return rng.weighted([[4, () => Buffer.from(rng.token(0, 64))], [2, () => rng.bytes(rng.size(4000))], [1, () => Buffer.alloc(rng.int(2000, 70000), 0x61)], [0.03, () => Buffer.alloc(rng.int(1 << 20, 3 << 20), 0x62)], [2, () => jsonBody(rng)], [1, () => Buffer.from(`user=a&password=${rng.token()}&x=%zz&token`)]])();
}

/** The body framing of a message: content-length, chunked, or none; close-delimited for responses. */
function framed(m, rng, fixed, canClose) {
  const kind = rng.weighted([[4, 'cl'], [3, 'chunked'], [2, 'none'], [canClose ? 1 : 0, 'close']]);
  let b = kind === 'none' ? Buffer.alloc(0) : body(rng);
  if (b.length) {
    const e = encodedBody(rng, b);
    b = e.body;
    if (e.enc) fixed.push(['Content-Encoding', e.enc]);
  }
  if (kind === 'cl') fixed.push(['\0cl', b.length]);
  if (kind === 'chunked') fixed.push(['Transfer-Encoding', rng.chance(0.9) ? 'chunked' : rng.pick(['gzip, chunked', 'Chunked', 'chunked, gzip'])]);
  if (kind === 'close') fixed.push(['Connection', 'close']);
  headers(m, rng, fixed);
  if (kind === 'cl' || kind === 'close') m.add(b);
  if (kind === 'chunked') {
    let p = 0;
    while (p < b.length) {
      const n = Math.min(b.length - p, rng.int(1, 3000));
      const hex = n.toString(16);
      m.field('http-chunk', n, rng.chance(0.1) ? hex.toUpperCase().padStart(hex.length + rng.int(0, 3), '0') : hex);
      if (rng.chance(0.1)) m.add(`;ext=${rng.token()}`);
      m.add('\r\n').add(b.subarray(p, p + n)).add('\r\n');
      p += n;
    }
    m.field('http-chunk', 0, '0');
    m.add('\r\n');
    if (rng.chance(0.3)) m.add(`x-trailer: ${rng.token()}\r\n`);
    if (rng.chance(0.1)) m.add(`grpc-status: ${rng.int(0, 16)}\r\n`);
    m.add('\r\n');
  }
  return kind;
}

function request(rng) {
  const m = new Msg();
  const method = rng.weighted([[6, 'GET'], [3, 'POST'], [2, () => rng.pick(METHODS)]]);
  const meth = typeof method === 'function' ? method() : method;
  const path = meth === 'CONNECT' ? `${rng.token()}:443` : rng.pick(['/', `/${rng.token()}`, `/a/${rng.int(1, 999)}?q=${rng.token()}`, '*', `http://h/${rng.token()}`, `/${'p'.repeat(rng.int(100, 9000))}`]);
  const version = rng.weighted([[8, 'HTTP/1.1'], [2, 'HTTP/1.0'], [1, () => rng.pick(['HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'http/1.1', 'HTTP/1'])]]);
  m.add(`${meth} ${path} ${typeof version === 'function' ? version() : version}\r\n`);
  const fixed = [['Host', `${rng.token()}.test`]];
  let upgrade;
  if (rng.chance(0.05)) {
    upgrade = rng.pick(['websocket', 'h2c']);
    fixed.push(['Connection', 'Upgrade'], ['Upgrade', upgrade]);
    if (upgrade === 'h2c') fixed.push(['HTTP2-Settings', 'AAMAAABkAAQAoAAAAAIAAAAA']);
  }
  const expect = rng.chance(0.05);
  if (expect) fixed.push(['Expect', '100-continue']);
  const kind = ['GET', 'HEAD'].includes(meth) && rng.chance(0.8) ? (headers(m, rng, fixed), 'none') : framed(m, rng, fixed, false);
  return { method: meth, m, upgrade: meth === 'CONNECT' ? 'tunnel' : upgrade, expect, kind };
}

function response(rng, req) {
  const m = new Msg();
  const interim = [];
  if (req.expect || rng.chance(0.05)) {
    const st = rng.pick([100, 100, 103]);
    const im = new Msg().add(`HTTP/1.1 ${st} ${REASONS[st]}\r\n`);
    if (st === 103) im.add('Link: </s.css>; rel=preload\r\n');
    interim.push(im.add('\r\n'));
  }
  let status = rng.weighted([[8, 200], [1, 204], [1, 304], [1, 404], [1, 500], [1, 503], [1, 201], [1, 301], [1, () => rng.int(0, 999)]]);
  if (typeof status === 'function') status = status();
  if (req.upgrade === 'websocket' || req.upgrade === 'h2c') status = rng.chance(0.8) ? 101 : status;
  if (req.upgrade === 'tunnel' && rng.chance(0.8)) status = 200;
  const version = rng.chance(0.95) ? 'HTTP/1.1' : rng.pick(['HTTP/1.0', 'HTTP/2', 'HTTP/1.1x', 'ICY']);
  m.add(`${version} ${status}${rng.chance(0.95) ? ` ${REASONS[status] ?? rng.token()}` : ''}\r\n`);
  const fixed = [];
  if (status === 101) {
    fixed.push(['Connection', 'Upgrade'], ['Upgrade', req.upgrade]);
    headers(m, rng, fixed);
  } else if (req.method === 'HEAD' || status === 204 || status === 304 || (req.upgrade === 'tunnel' && status === 200)) {
    if (rng.chance(0.5)) fixed.push(['\0cl', rng.int(0, 5000)]);
    headers(m, rng, fixed);
  } else framed(m, rng, fixed, true);
  return { status, m, interim };
}

/**
 * One HTTP/1 connection: a few exchanges, sometimes pipelined, ending in an upgrade (with the new
 * protocol's bytes, or garbage) or a close-delimited body. Units: { dir, bytes, fields }.
 */
export function genHttp1(rng, opts = {}) {
  const units = [];
  // Now and then a long connection: queues and pairing over hundreds of messages.
  const n = rng.chance(0.05) ? rng.int(20, 200) : rng.int(1, opts.maxExchanges ?? 5);
  const pending = [];
  const unit = (dir, m) => units.push({ dir, bytes: m.bytes(), fields: m.fields });
  for (let i = 0; i < n; i++) {
    const req = request(rng);
    unit(0, req.m);
    pending.push(req);
    // Pipelined: several requests before their responses.
    if (i + 1 < n && !req.upgrade && rng.chance(0.2)) continue;
    let stop = false;
    while (pending.length) {
      const r = pending.shift();
      const res = response(rng, r);
      for (const im of res.interim) unit(1, im);
      unit(1, res.m);
      if ((r.upgrade && (res.status === 101 || (r.upgrade === 'tunnel' && res.status === 200))) || (res.m.fields.length === 0 && rng.chance(0.05))) {
        // After the switch: the new protocol (h2c's preface and frames), or opaque bytes.
        if (opts.after && r.upgrade === 'h2c') for (const u of opts.after(rng)) units.push(u);
        else { units.push({ dir: 0, bytes: rng.bytes(rng.size(300)), fields: [] }); units.push({ dir: 1, bytes: rng.bytes(rng.size(300)), fields: [] }); }
        stop = true;
        break;
      }
    }
    if (stop) break;
  }
  return units;
}
