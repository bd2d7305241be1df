// Structure-aware HTTP/2 (RFC 9113) and HPACK (RFC 7541) generator, and gRPC's length-prefixed
// messages over it (grpc/doc/PROTOCOL-HTTP2.md). The HPACK encoder keeps a model of the peer's
// dynamic table, so indexed references, incremental indexing, eviction and table size updates
// are valid unless a mutation breaks them. The Huffman table is given by the caller (the
// decoder's own, so the generator imports nothing from the project).
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';

/** Protobuf-shaped bytes (varints, fixed, nested length-delimited): decodable, or nearly. */
export function protobuf(rng, depth = 0) {
  const out = [];
  const varint = (v) => { const b = []; let x = BigInt.asUintN(64, BigInt(v)); do { let c = Number(x & 0x7fn); x >>= 7n; if (x) c |= 0x80; b.push(c); } while (x); return b; };
  for (let n = rng.int(0, 6); n > 0; n--) {
    const field = rng.chance(0.9) ? rng.int(1, 12) : rng.int(13, 536870911);
    const wt = rng.weighted([[4, 0], [1, 1], [4, 2], [1, 5], [0.05, 3]]);
    out.push(...varint(field * 8 + wt));
    if (wt === 0) out.push(...varint(rng.pick([0, 1, 42, -1, 2 ** 31, rng.u32()])));
    else if (wt === 1) out.push(...rng.bytes(8));
    else if (wt === 5) out.push(...rng.bytes(4));
    else if (wt === 2) {
      const v = depth < 3 && rng.chance(0.4) ? protobuf(rng, depth + 1) : rng.chance(0.6) ? Buffer.from(rng.token(0, 30)) : rng.bytes(rng.size(40));
      out.push(...varint(v.length), ...v);
    }
  }
  return Buffer.from(out);
}

/**
 * A JSON body, sometimes nested thousands deep or with credential-like names (what redaction
 * reads), sometimes cut short.
 */
export function jsonBody(rng) {
  const secret = rng.pick(['token', 'api_key', 'password', 'name', 'clientSecret']);
  const depth = rng.weighted([[5, () => rng.int(0, 4)], [2, () => rng.int(5, 200)], [1, () => rng.int(1000, 30000)]])();
  const open = rng.chance(0.5) ? '[' : '{"k":';
  const close = open === '[' ? ']' : '}';
  let s = `{"${secret}":"${rng.token()}","n":${rng.int(0, 99)},"v":${open.repeat(depth)}${rng.chance(0.5) ? `{"${secret}":1}` : '0'}${close.repeat(depth)}}`;
  if (rng.chance(0.1)) s = s.slice(0, rng.below(s.length));
  return Buffer.from(s);
}

/** Length-delimited fields nested `depth` deep (each holding the next), for recursive readers. */
export function deepProtobuf(depth) {
  const varint = (n) => { const b = []; do { b.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n); return b; };
  // Sizes from the innermost (field 1 = 1) outwards, then written outermost first, in one pass.
  const sizes = [2];
  for (let i = 0; i < depth; i++) sizes.push(1 + varint(sizes[i]).length + sizes[i]);
  const out = [];
  for (let i = depth; i > 0; i--) out.push(0x12, ...varint(sizes[i - 1]));
  out.push(0x08, 0x01);
  return Buffer.from(out);
}

/** A body and its Content-Encoding (RFC 9110 §8.4): mostly real codings of the bytes, some lies. */
export function encodedBody(rng, body) {
  const enc = rng.weighted([[6, undefined], [2, 'gzip'], [1, 'br'], [1, 'deflate'], [1, 'deflate-raw'], [1, 'gzip, br'], [1, 'identity'], [1, 'bogus']]);
  if (!enc) return { body };
  if (enc === 'gzip') return { enc, body: gzipSync(body) };
  if (enc === 'br') return { enc, body: brotliCompressSync(body) };
  if (enc === 'deflate') return { enc, body: deflateSync(body) };
  if (enc === 'deflate-raw') return { enc: 'deflate', body: deflateRawSync(body) };
  if (enc === 'gzip, br') return { enc, body: brotliCompressSync(gzipSync(body)) };
  return { enc, body: rng.chance(0.5) ? gzipSync(body) : body };
}

const STATIC = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'], [':scheme', 'http'], [':scheme', 'https'],
  [':status', '200'], [':status', '204'], [':status', '206'], [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'],
  ['accept-charset', ''], ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''], ['content-disposition', ''],
  ['content-encoding', ''], ['content-language', ''], ['content-length', ''], ['content-location', ''], ['content-range', ''],
  ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''],
  ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''],
  ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** RFC 7541 §5.1: an integer with an N-bit prefix; `flags` are the first byte's high bits. */
export function hpackInt(value, prefix, flags = 0) {
  const max = (1 << prefix) - 1;
  if (value < max) return [flags | value];
  const out = [flags | max];
  value -= max;
  while (value >= 128) { out.push((value % 128) + 128); value = Math.floor(value / 128); }
  out.push(value);
  return out;
}

export class HpackEncoder {
  /** `huffman`: [code, bits] per symbol 0..256, or undefined for raw strings only. */
  /**
   * `limit`: the decoder's SETTINGS_HEADER_TABLE_SIZE; `max`: the table size it starts with (4096
   * in HTTP/2 until a size update, §4.2). Below the current size, the next block must start with
   * a size update within the limit.
   */
  constructor(rng, huffman, limit = 4096, max = 4096) {
    this.rng = rng; this.huffman = huffman; this.limit = limit; this.max = max;
    this.mustUpdate = limit < max;
    this.table = []; this.size = 0;
  }

  str(s) {
    const raw = Buffer.from(s, 'latin1');
    if (!this.huffman || !this.rng.chance(0.5)) return [...hpackInt(raw.length, 7, 0), ...raw];
    const out = [];
    let acc = 0, bits = 0;
    for (const c of raw) {
      const [code, n] = this.huffman[c];
      for (let i = n - 1; i >= 0; i--) {
        acc = (acc << 1) | ((code / 2 ** i) & 1); bits++;
        if (bits === 8) { out.push(acc); acc = 0; bits = 0; }
      }
    }
    if (bits > 0) out.push((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)); // EOS-prefix padding, §5.2
    return [...hpackInt(out.length, 7, 0x80), ...out];
  }

  add(name, value) {
    const size = name.length + value.length + 32;
    this.table.unshift([name, value, size]);
    this.size += size;
    while (this.size > this.max && this.table.length) this.size -= this.table.pop()[2];
  }

  resize(n) {
    this.max = n;
    while (this.size > this.max && this.table.length) this.size -= this.table.pop()[2];
  }

  /** One header block for `fields` ([name, value] pairs). */
  block(fields) {
    const out = [];
    const rng = this.rng;
    if (this.mustUpdate || rng.chance(0.08)) {
      this.mustUpdate = false;
      // Dynamic table size updates (§6.3), at most two, at the block's start.
      for (let k = rng.int(1, 2); k > 0; k--) {
        const n = Math.min(this.limit, rng.pick([0, 0, 64, 256, 4096, this.limit]));
        this.resize(n);
        out.push(...hpackInt(n, 5, 0x20));
      }
    }
    for (const [name, value] of fields) {
      const d = this.table.findIndex(([n, v]) => n === name && v === value);
      const s = STATIC.findIndex(([n, v]) => n === name && v === value);
      if (s >= 0 && rng.chance(0.8)) { out.push(...hpackInt(s + 1, 7, 0x80)); continue; }
      if (d >= 0 && rng.chance(0.8)) { out.push(...hpackInt(62 + d, 7, 0x80)); continue; }
      const sn = STATIC.findIndex(([n]) => n === name), dn = this.table.findIndex(([n]) => n === name);
      const nameIdx = sn >= 0 ? sn + 1 : dn >= 0 && rng.chance(0.7) ? 62 + dn : 0;
      const mode = rng.weighted([[5, 'incr'], [3, 'without'], [1, 'never']]);
      const [prefix, flag] = mode === 'incr' ? [6, 0x40] : mode === 'without' ? [4, 0x00] : [4, 0x10];
      out.push(...hpackInt(nameIdx, prefix, flag));
      if (nameIdx === 0) out.push(...this.str(name));
      out.push(...this.str(value));
      if (mode === 'incr') this.add(name, value);
    }
    return Buffer.from(out);
  }
}

/** A frame: 24-bit length, type, flags, 31-bit stream id (RFC 9113 §4.1). */
export function frame(type, flags, stream, payload) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3); h[3] = type; h[4] = flags; h.writeUInt32BE(stream >>> 0, 5);
  return Buffer.concat([h, payload]);
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH: 5, PING: 6, GOAWAY: 7, WINDOW: 8, CONT: 9 };

function settings(rng, ack, table, maxFrame) {
  if (ack) return frame(T.SETTINGS, 1, 0, Buffer.alloc(0));
  const ps = [];
  if (table !== undefined) ps.push([1, table]);
  if (maxFrame) ps.push([5, maxFrame]);
  for (let k = rng.int(0, 3); k > 0; k--) ps.push(rng.pick([[3, 100], [4, 65535], [5, rng.pick([16384, 32768, 16777215])], [6, rng.int(0, 65536)], [2, 0], [8, 1]]));
  const b = Buffer.alloc(ps.length * 6);
  ps.forEach(([id, v], i) => { b.writeUInt16BE(id, i * 6); b.writeUInt32BE(v >>> 0, i * 6 + 2); });
  return frame(T.SETTINGS, 0, 0, b);
}

/** A direction's frames under construction: one unit per frame, with its length fields. */
class Dir {
  /** `maxData`: the DATA payload the peer allows (SETTINGS_MAX_FRAME_SIZE, RFC 9113 §6.5.2). */
  constructor(dir, units, maxData = 16384) { this.dir = dir; this.units = units; this.maxData = maxData; }
  push(bytes, fields = []) {
    this.units.push({ dir: this.dir, bytes, fields: [{ off: 0, width: 3, kind: 'h2-len', value: bytes.length - 9 }, ...fields] });
  }
  /** A header block as HEADERS (+ PRIORITY / PADDED) and CONTINUATION frames (§6.2, §6.10). */
  headers(rng, stream, block, endStream, type = T.HEADERS, promised) {
    let flags = endStream ? 1 : 0;
    const pre = [];
    if (type === T.PUSH) { const b = Buffer.alloc(4); b.writeUInt32BE(promised); pre.push(b); }
    let pad = 0;
    if (rng.chance(0.1)) { flags |= 0x8; pad = rng.int(0, 20); pre.unshift(Buffer.from([pad])); }
    if (type === T.HEADERS && rng.chance(0.1)) { flags |= 0x20; const p = Buffer.alloc(5); p.writeUInt32BE(rng.below(stream + 2)); p[4] = rng.int(0, 255); pre.push(p); }
    const cut = block.length > 1 && rng.chance(0.15) ? rng.cuts(block.length, rng.int(1, 3)) : [];
    const pieces = [];
    let a = 0;
    for (const c of [...cut, block.length]) { pieces.push(block.subarray(a, c)); a = c; }
    if (pieces.length === 1) flags |= 0x4;
    this.push(frame(type, flags, stream, Buffer.concat([...pre, pieces[0], Buffer.alloc(pad)])));
    for (let i = 1; i < pieces.length; i++) this.push(frame(T.CONT, i === pieces.length - 1 ? 0x4 : 0, stream, pieces[i]));
  }
  /** Bytes as DATA frames, with gRPC message-length fields where a whole prefix falls in one frame. */
  data(rng, stream, bytes, endStream, grpcFields = []) {
    let a = 0;
    do {
      const padded = rng.chance(0.1);
      const pad = padded ? rng.int(0, 16) : 0;
      // Within SETTINGS_MAX_FRAME_SIZE's default, padding included (§4.2).
      const n = Math.min(bytes.length - a, rng.chance(0.3) ? rng.int(1, 64) : rng.int(1, this.maxData - 17));
      const last = a + n >= bytes.length;
      let flags = last && endStream ? 1 : 0;
      if (padded) flags |= 0x8;
      const head = padded ? 10 : 9;
      const fields = grpcFields.filter((s) => s >= a && s + 4 <= a + n).map((s) => ({ off: head + s - a, width: 4, kind: 'grpc-len', value: bytes.readUInt32BE(s) }));
      this.push(frame(T.DATA, flags, stream, Buffer.concat([padded ? Buffer.from([pad]) : Buffer.alloc(0), bytes.subarray(a, a + n), Buffer.alloc(pad)])), fields);
      a += n;
    } while (a < bytes.length);
  }
  control(rng, streams) {
    const s = streams.length ? rng.pick(streams) : 1;
    const c = rng.weighted([[3, 'ping'], [3, 'window'], [1, 'priority'], [1, 'rst'], [1, 'unknown'], [1, 'goaway'], [1, 'settings']]);
    const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
    if (c === 'ping') this.push(frame(T.PING, rng.chance(0.5) ? 1 : 0, 0, rng.bytes(8)));
    else if (c === 'window') this.push(frame(T.WINDOW, 0, rng.chance(0.5) ? 0 : s, u32(rng.int(1, 2 ** 31 - 1))));
    else if (c === 'priority') this.push(frame(T.PRIORITY, 0, s, Buffer.concat([u32(rng.below(9)), Buffer.from([rng.int(0, 255)])])));
    else if (c === 'rst') this.push(frame(T.RST, 0, s, u32(rng.below(14))));
    else if (c === 'unknown') this.push(frame(rng.int(10, 255), rng.int(0, 255), s, rng.bytes(rng.size(40))));
    else if (c === 'goaway') this.push(frame(T.GOAWAY, 0, 0, Buffer.concat([u32(s), u32(rng.below(14)), Buffer.from(rng.token(0, 20))])));
    else this.push(settings(rng, rng.chance(0.5)));
  }
}

function reqHeaders(rng, grpc, stream) {
  const h = [[':method', grpc ? 'POST' : rng.pick(['GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD'])], [':scheme', 'http'], [':path', grpc ? `/${rng.pick(['tapwire.demo.Orders', 'tapwire.demo.Orders', 'shop.Cart', 'Orders'])}/${rng.pick(['GetOrder', 'UpdateOrder', 'ListOrders', 'UploadItems', 'Chat', 'Get'])}` : `/${rng.token()}/${stream}`], [':authority', `${rng.token()}:${rng.int(1, 65535)}`]];
  if (grpc) {
    h.push(['content-type', rng.pick(['application/grpc', 'application/grpc+proto', 'application/grpc; charset=x'])], ['te', 'trailers']);
    if (rng.chance(0.3)) h.push(['grpc-timeout', rng.pick([`${rng.int(1, 99999)}m`, `${rng.int(1, 9)}S`, `${rng.int(1, 99)}u`, '1H', 'xx', '123456789m'])]);
  }
  for (let k = rng.int(0, 5); k > 0; k--) h.push(rng.pick([['user-agent', `gen/${rng.int(0, 9)}`], ['accept', '*/*'], ['authorization', `Bearer ${rng.token(8, 32)}`], [`x-${rng.token()}`, rng.token(0, 40)], ['cookie', rng.token()], ['traceparent', `00-${rng.token(32, 32)}-${rng.token(16, 16)}-01`]]));
  if (rng.chance(0.05)) h.unshift(['x-before-pseudo', '1']);
  return h;
}

/** gRPC messages as one direction's DATA bytes, and the offsets of their length prefixes. */
function grpcMessages(rng, gzip) {
  const parts = [], offs = [];
  let off = 0;
  for (let k = rng.int(0, 4); k > 0; k--) {
    let m = rng.weighted([[5, () => protobuf(rng)], [2, () => rng.bytes(rng.size(300))], [1, () => deepProtobuf(rng.int(1, 3000))], [0.03, () => Buffer.alloc(rng.int(1 << 20, 3 << 20), 9)], [1, () => Buffer.alloc(rng.int(1000, 40000), 7)], [1, () => Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63, 0x10, 0x2a])]])();
    const compressed = gzip && rng.chance(0.7);
    if (compressed) m = rng.chance(0.9) ? gzipSync(m) : rng.bytes(m.length);
    const h = Buffer.alloc(5);
    h[0] = compressed ? 1 : rng.chance(0.02) ? rng.int(2, 255) : 0;
    h.writeUInt32BE(m.length, 1);
    offs.push(off + 1);
    parts.push(h, m);
    off += 5 + m.length;
  }
  return { bytes: Buffer.concat(parts), offs };
}

/**
 * One HTTP/2 connection with prior knowledge (or after an h2c upgrade): preface, SETTINGS both
 * ways, a few streams (request and response header blocks, DATA, trailers, pushes, resets) and
 * control frames. With `grpc`, streams are gRPC calls.
 */
export function genHttp2(rng, opts = {}) {
  const units = [];
  // Now and then both ends allow the largest frames, and bodies come in megabytes.
  const big = rng.chance(0.04) ? 16_777_215 : undefined;
  const c = new Dir(0, units, big), s = new Dir(1, units, big);
  const huff = opts.huffman;
  // What each side's decoder allows (SETTINGS_HEADER_TABLE_SIZE, §6.5.2) bounds the other's encoder.
  const cTable = rng.chance(0.2) ? rng.pick([0, 256, 4096, 65536]) : undefined;
  const sTable = rng.chance(0.2) ? rng.pick([0, 256, 4096, 65536]) : undefined;
  const encC = new HpackEncoder(rng, huff, sTable ?? 4096), encS = new HpackEncoder(rng, huff, cTable ?? 4096);
  if (!opts.upgraded || rng.chance(0.9)) units.push({ dir: 0, bytes: PREFACE, fields: [] });
  s.push(settings(rng, false, sTable, big));
  c.push(settings(rng, false, cTable, big));
  s.push(settings(rng, true)); c.push(settings(rng, true));
  const streams = [];
  let id = opts.upgraded ? 3 : 1;
  let push = 2;
  if (opts.upgraded) {
    // Stream 1 is the upgraded request's (RFC 7540 §3.2): only its response comes in HTTP/2.
    s.headers(rng, 1, encS.block([[':status', '200']]), false);
    s.data(rng, 1, rng.bytes(rng.size(200)), true);
  }
  const grpc = !!opts.grpc;
  for (let n = rng.chance(0.05) ? rng.int(20, 300) : rng.int(1, 6); n > 0; n--) {
    const sid = rng.chance(0.03) ? rng.pick([0, 2, id - 2, 2 ** 31 - 1]) : id;
    id += 2;
    streams.push(sid);
    const gzip = grpc && rng.chance(0.3);
    const req = reqHeaders(rng, grpc, sid);
    if (gzip) req.push(['grpc-encoding', 'gzip']);
    const plain = grpc ? undefined : encodedBody(rng, rng.chance(0.5) ? Buffer.alloc(0) : rng.chance(0.01) ? Buffer.alloc(rng.int(1 << 20, 3 << 20), 0x62) : rng.bytes(rng.size(3000)));
    if (plain?.enc) req.push(['content-encoding', plain.enc]);
    const body = grpc ? grpcMessages(rng, gzip) : { bytes: plain.body, offs: [] };
    c.headers(rng, sid, encC.block(req), body.bytes.length === 0 && !grpc);
    if (body.bytes.length || grpc) c.data(rng, sid, body.bytes, true, body.offs);
    if (rng.chance(0.2)) c.control(rng, streams);
    if (rng.chance(0.05)) { c.control(rng, [sid]); continue; }
    // Server push (§8.4): a PUSH_PROMISE on the request's stream, then the pushed response.
    if (!grpc && rng.chance(0.08)) {
      s.headers(rng, sid, encS.block([[':method', 'GET'], [':scheme', 'http'], [':path', `/push/${push}`], [':authority', 'x']]), false, T.PUSH, push);
      s.headers(rng, push, encS.block([[':status', '200']]), false);
      s.data(rng, push, rng.bytes(rng.size(100)), true);
      push += 2;
    }
    const trailersOnly = grpc && rng.chance(0.15);
    const st = String(rng.weighted([[8, 200], [1, 404], [1, 500], [1, 204], [1, () => rng.int(100, 999)]]));
    const res = [[':status', st.startsWith('(') ? String(rng.int(0, 999)) : st]];
    if (grpc) res.push(['content-type', 'application/grpc']);
    if (gzip) res.push(['grpc-encoding', 'gzip']);
    for (let k = rng.int(0, 3); k > 0; k--) res.push(rng.pick([['server', 'gen'], ['date', 'Mon, 07 Dec 2026 10:00:00 GMT'], [`x-${rng.token()}`, rng.token()], ['content-length', String(rng.int(0, 99999))]]));
    const status = [['grpc-status', String(rng.chance(0.9) ? rng.int(0, 16) : rng.int(17, 99999))]];
    if (rng.chance(0.4)) status.push(['grpc-message', rng.pick(['not found', 'deadline%20exceeded', '%E2%9C%93', '%zz', rng.token()])]);
    if (rng.chance(0.1) && !grpc) {
      // 1xx before the response (§8.1).
      s.headers(rng, sid, encS.block([[':status', rng.pick(['100', '103'])]]), false);
    }
    if (trailersOnly) { s.headers(rng, sid, encS.block([...res, ...status]), true); continue; }
    const resBody = grpc ? undefined : encodedBody(rng, rng.chance(0.3) ? Buffer.alloc(0) : rng.chance(0.5) ? jsonBody(rng) : rng.bytes(rng.size(5000)));
    if (resBody?.enc) res.push(['content-encoding', resBody.enc]);
    if (!grpc && rng.chance(0.5)) res.push(['content-type', rng.pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded'])]);
    const out = grpc ? grpcMessages(rng, gzip) : { bytes: resBody.body, offs: [] };
    const trailers = grpc || rng.chance(0.1);
    s.headers(rng, sid, encS.block(res), out.bytes.length === 0 && !trailers);
    if (out.bytes.length) s.data(rng, sid, out.bytes, !trailers, out.offs);
    if (trailers) s.headers(rng, sid, encS.block(grpc ? status : [['x-trailer', rng.token()]]), true);
    if (rng.chance(0.15)) s.control(rng, streams);
  }
  if (rng.chance(0.2)) s.control(rng, streams);
  // Interleave: streams were built client-then-server; sometimes shuffle frames within a direction a bit.
  return units;
}

/** Header blocks for the HPACK decoder alone: a sequence sharing one dynamic table. */
export function genHpackBlocks(rng, huffman) {
  const limit = rng.pick([4096, 4096, 0, 256, 65536]);
  const enc = new HpackEncoder(rng, huffman, limit, limit);
  const blocks = [];
  for (let n = rng.int(1, 8); n > 0; n--) {
    const fields = reqHeaders(rng, rng.chance(0.3), rng.int(1, 99));
    if (rng.chance(0.3)) fields.push(['x-big', 'v'.repeat(rng.int(100, 5000))]);
    blocks.push(enc.block(fields));
  }
  return { limit, blocks };
}
