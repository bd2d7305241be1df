// Classic pcap files as a header plus records the mutations can reorder, cut and rewrite, and where
// the length fields are inside a packet (pcap record, IP, TCP, and the application protocols'
// own lengths in a TCP payload). pcapng files are only mutated as bytes.

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;

/** Parses a classic pcap; undefined for anything else (pcapng, garbage). Records keep their bytes. */
export function parsePcap(buf) {
  if (buf.length < 24) return undefined;
  let le;
  const m = buf.readUInt32LE(0);
  if (m === MAGIC_US || m === MAGIC_NS) le = true;
  else if (buf.readUInt32BE(0) === MAGIC_US || buf.readUInt32BE(0) === MAGIC_NS) le = false;
  else return undefined;
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20) & 0x0fffffff;
  const records = [];
  let p = 24;
  while (p + 16 <= buf.length) {
    const incl = u32(p + 8);
    if (p + 16 + incl > buf.length) break;
    records.push({ hdr: Buffer.from(buf.subarray(p, p + 16)), data: Buffer.from(buf.subarray(p + 16, p + 16 + incl)) });
    p += 16 + incl;
  }
  return { le, linkType, header: Buffer.from(buf.subarray(0, 24)), records };
}

export function writePcap(f) {
  const parts = [f.header];
  for (const r of f.records) parts.push(r.hdr, r.data);
  return Buffer.concat(parts);
}

export function recU32(f, r, off) {
  return f.le ? r.hdr.readUInt32LE(off) : r.hdr.readUInt32BE(off);
}

export function setRecU32(f, r, off, v) {
  if (f.le) r.hdr.writeUInt32LE(v >>> 0, off);
  else r.hdr.writeUInt32BE(v >>> 0, off);
}

/** Offset of the IP header in a packet of this link type, or -1. */
function ipOffset(linkType, d) {
  switch (linkType) {
    case 1: { // Ethernet, with up to two VLAN tags
      let o = 12;
      let et = d.length >= 14 ? d.readUInt16BE(12) : 0;
      for (let i = 0; i < 2 && (et === 0x8100 || et === 0x88a8) && d.length >= o + 6; i++) { o += 4; et = d.readUInt16BE(o); }
      return et === 0x0800 || et === 0x86dd ? o + 2 : -1;
    }
    case 0: case 108: return 4; // BSD loopback: a 4-byte family
    case 101: case 228: case 229: case 12: case 14: return 0; // raw IP
    case 113: return 16; // Linux cooked (SLL)
    case 276: return 20; // SLL2
    default: return -1;
  }
}

/**
 * Where a packet's IP and TCP headers and TCP payload are, or undefined when it is not TCP over IP
 * that this walker can follow (non-first fragments, extension headers other than none).
 */
export function locate(linkType, d) {
  const ip = ipOffset(linkType, d);
  if (ip < 0 || d.length < ip + 20) return undefined;
  const v = d[ip] >> 4;
  let l4, proto, lenOff, lenBase;
  if (v === 4) {
    const ihl = (d[ip] & 15) * 4;
    proto = d[ip + 9];
    if ((d.readUInt16BE(ip + 6) & 0x1fff) !== 0 || ihl < 20) return undefined;
    l4 = ip + ihl; lenOff = ip + 2; lenBase = 0;
  } else if (v === 6) {
    if (d.length < ip + 40) return undefined;
    proto = d[ip + 6];
    l4 = ip + 40; lenOff = ip + 4; lenBase = 40;
  } else return undefined;
  if (proto !== 6 || d.length < l4 + 20) return undefined;
  const payload = l4 + (d[l4 + 12] >> 4) * 4;
  if (payload > d.length) return undefined;
  return { ip, version: v, lenOff, lenBase, tcp: l4, payload, srcPort: d.readUInt16BE(l4), dstPort: d.readUInt16BE(l4 + 2) };
}

/**
 * Replaces `oldLen` bytes at `off` of record `r`'s data with `bytes`, keeping the pcap lengths and
 * the IP length consistent with the new size (so only the lie under test lies).
 */
export function replaceBytes(f, r, loc, off, oldLen, bytes) {
  const delta = bytes.length - oldLen;
  r.data = Buffer.concat([r.data.subarray(0, off), bytes, r.data.subarray(off + oldLen)]);
  if (delta === 0) return;
  setRecU32(f, r, 8, r.data.length);
  setRecU32(f, r, 12, Math.max(0, recU32(f, r, 12) + delta));
  if (loc && r.data.length >= loc.lenOff + 2) {
    const cur = r.data.readUInt16BE(loc.lenOff);
    r.data.writeUInt16BE(Math.max(0, Math.min(0xffff, cur + delta)), loc.lenOff);
  }
}

// Length fields inside a TCP payload, by protocol. Each returns [{ off, width, kind, value }] with
// offsets relative to the payload start; `width` is in bytes for binary fields, digits for text.

/** HTTP/1 Content-Length values and chunk-size lines. */
export function httpLengths(p) {
  const out = [];
  const s = p.toString('latin1');
  for (const m of s.matchAll(/content-length[ \t]*:[ \t]*(\d+)/gi)) {
    out.push({ off: m.index + m[0].length - m[1].length, width: m[1].length, kind: 'http-cl', value: Number(m[1]), text: true });
  }
  for (const m of s.matchAll(/(?:^|\r\n)([0-9a-fA-F]{1,8})(;[^\r\n]*)?\r\n/g)) {
    const start = m.index + (m[0].startsWith('\r\n') ? 2 : 0);
    // A chunk size follows a blank line (end of headers) or a chunk's CRLF; digits-only lines
    // elsewhere (status codes) are rare in payload starts; both are fine lies anyway.
    out.push({ off: start, width: m[1].length, kind: 'http-chunk', value: parseInt(m[1], 16), text: true, hex: true });
  }
  return out;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** HTTP/2 frame lengths walked from the payload start, and gRPC message lengths in DATA frames. */
export function h2Lengths(p) {
  const out = [];
  let o = p.subarray(0, H2_PREFACE.length).equals(H2_PREFACE) ? H2_PREFACE.length : 0;
  while (o + 9 <= p.length) {
    const len = p.readUIntBE(o, 3), type = p[o + 3], flags = p[o + 4];
    if (type > 9 || len > 16_777_215) break;
    out.push({ off: o, width: 3, kind: 'h2-len', value: len });
    if (type === 0 && len >= 5) {
      const pad = flags & 0x8 ? 1 : 0;
      const m = o + 9 + pad;
      if (m + 5 <= p.length && p[m] <= 1) out.push({ off: m + 1, width: 4, kind: 'grpc-len', value: p.readUInt32BE(m + 1) });
    }
    o += 9 + len;
  }
  return out;
}

/** PostgreSQL message lengths walked from the payload start (untyped startup packets too). */
export function pgLengths(p) {
  const out = [];
  let o = 0;
  if (p.length >= 8 && p[0] === 0) {
    const len = p.readInt32BE(0);
    if (len >= 8 && len <= 10_000) { out.push({ off: 0, width: 4, kind: 'pg-len', value: len }); o = len; }
  }
  while (o + 5 <= p.length) {
    const t = p[o], len = p.readInt32BE(o + 1);
    if (t < 0x41 || t > 0x7a || len < 4) break;
    out.push({ off: o + 1, width: 4, kind: 'pg-len', value: len });
    o += 1 + len;
  }
  return out;
}

/** Every length field of `kind` in a capture: [{ rec, loc, field }]. */
export function lengthFields(f, kind) {
  const out = [];
  for (let i = 0; i < f.records.length; i++) {
    const r = f.records[i];
    const loc = locate(f.linkType, r.data);
    if (!loc || loc.payload >= r.data.length) continue;
    const p = r.data.subarray(loc.payload);
    const fields = kind === 'http-cl' || kind === 'http-chunk' ? httpLengths(p) : kind === 'pg-len' ? pgLengths(p) : h2Lengths(p);
    for (const field of fields) if (field.kind === kind) out.push({ index: i, loc, field });
  }
  return out;
}

/** Writes a lying value into a length field (text fields may change width). */
export function lieField(f, rng, hit) {
  const r = f.records[hit.index];
  const at = hit.loc.payload + hit.field.off;
  const { field } = hit;
  if (field.text) {
    const v = rng.lie(field.value, 31);
    let s = field.hex ? v.toString(16) : String(v);
    if (rng.chance(0.15)) s = rng.pick(['-1', '', ' ', '0x10', '1e3', '99999999999999999999', '00000000000000000001', 'ffffffffffffffff', '+5', '4 4']);
    replaceBytes(f, r, hit.loc, at, field.width, Buffer.from(s, 'latin1'));
    return;
  }
  const v = rng.lie(field.value, field.width * 8);
  if (field.width === 3) r.data.writeUIntBE(v & 0xffffff, at, 3);
  else r.data.writeUInt32BE(v >>> 0, at);
}

/**
 * The same packets as pcapng (pcapng draft §4): a section header, an interface description with
 * a timestamp resolution and offset of the case's choosing, then enhanced (sometimes simple or
 * obsolete) packet blocks, in little- or big-endian, sometimes across two sections.
 */
export function toPcapng(f, rng) {
  const le = rng.chance(0.7);
  const u16 = (v) => { const b = Buffer.alloc(2); if (le) b.writeUInt16LE(v & 0xffff); else b.writeUInt16BE(v & 0xffff); return b; };
  const u32 = (v) => { const b = Buffer.alloc(4); if (le) b.writeUInt32LE(v >>> 0); else b.writeUInt32BE(v >>> 0); return b; };
  const block = (type, body) => {
    const pad = Buffer.alloc((4 - (body.length % 4)) % 4);
    const len = 12 + body.length + pad.length;
    return Buffer.concat([u32(type), u32(len), body, pad, u32(len)]);
  };
  const opt = (code, value) => Buffer.concat([u16(code), u16(value.length), value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
  const shb = () => block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d), u16(1), u16(0), Buffer.alloc(8, 0xff)]));
  const resol = rng.weighted([[5, 6], [2, 9], [1, 0x80 | 20], [1, () => rng.int(0, 255)]]);
  const r = typeof resol === 'function' ? resol() : resol;
  const perSec = r & 0x80 ? 2n ** BigInt(r & 0x7f) : 10n ** BigInt(r);
  const options = [];
  if (r !== 6 || rng.chance(0.5)) options.push(opt(9, Buffer.from([r])));
  if (rng.chance(0.15)) { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(rng.pick([-1_000_000_000, 1, 2 ** 40, -(2 ** 52)]))); options.push(opt(14, le ? b : Buffer.from(b).reverse())); }
  if (options.length) options.push(Buffer.alloc(4));
  const idb = () => block(1, Buffer.concat([u16(f.linkType), u16(0), u32(rng.chance(0.9) ? 262144 : rng.int(0, 100)), ...options]));
  const nsPerTick = f.header.readUInt32LE(0) === 0xa1b23c4d || f.header.readUInt32BE(0) === 0xa1b23c4d ? 1_000_000_000n : 1_000_000n;
  const parts = [shb(), idb()];
  const split = rng.chance(0.1) ? rng.below(f.records.length) : -1;
  f.records.forEach((rec, i) => {
    if (i === split) parts.push(shb(), idb());
    const sec = BigInt(recU32(f, rec, 0)), sub = BigInt(recU32(f, rec, 4));
    const ts = BigInt.asUintN(64, sec * perSec + (sub * perSec) / nsPerTick);
    const orig = recU32(f, rec, 12);
    const kind = rng.weighted([[20, 'epb'], [1, 'spb'], [1, 'opb']]);
    if (kind === 'spb') parts.push(block(3, Buffer.concat([u32(orig), rec.data])));
    else if (kind === 'opb') parts.push(block(2, Buffer.concat([u16(0), u16(0), u32(Number(ts >> 32n)), u32(Number(ts & 0xffffffffn)), u32(rec.data.length), u32(orig), rec.data])));
    else parts.push(block(6, Buffer.concat([u32(rng.chance(0.01) ? rng.int(1, 3) : 0), u32(Number(ts >> 32n)), u32(Number(ts & 0xffffffffn)), u32(rec.data.length), u32(orig), rec.data])));
  });
  return Buffer.concat(parts);
}
