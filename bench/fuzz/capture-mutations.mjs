// Mutations of whole capture files: each takes the file's bytes (and a second capture for splices)
// and returns new bytes. Packet-level ones need a classic pcap; on pcapng they fall back to bytes.
import { lengthFields, lieField, locate, parsePcap, recU32, setRecU32, toPcapng, writePcap } from './pcapio.mjs';

const clone = (f) => ({ ...f, header: Buffer.from(f.header), records: f.records.map((r) => ({ hdr: Buffer.from(r.hdr), data: Buffer.from(r.data) })) });

function bitflip(buf, rng) {
  const out = Buffer.from(buf);
  const n = rng.int(1, 24);
  for (let i = 0; i < n; i++) {
    // Mostly past the file header, where the packets are; sometimes in it.
    const at = rng.chance(0.05) ? rng.below(Math.min(24, out.length)) : rng.below(out.length);
    if (rng.chance(0.7)) out[at] ^= 1 << rng.below(8);
    else out[at] = rng.pick([0, 0xff, 0x7f, 0x80, 0x01, 0xfe]);
  }
  return out;
}

function truncateFile(buf, rng) {
  return buf.subarray(0, rng.chance(0.2) ? rng.below(64) : rng.below(buf.length));
}

/** Packet-level mutation helper: runs `fn` on a parsed copy; bytes-level fallback on pcapng. */
function packets(fn) {
  return (buf, rng, other) => {
    const f = parsePcap(buf);
    if (!f || f.records.length === 0) return bitflip(buf, rng);
    const g = clone(f);
    fn(g, rng, other);
    return writePcap(g);
  };
}

const pickIndex = (f, rng) => rng.below(f.records.length);
const count = (f, rng) => rng.int(1, Math.max(1, Math.min(8, f.records.length >> 1)));

/** Snap-length style: packets cut short, caplen says so, the wire length does not. */
const truncatePacket = packets((f, rng) => {
  for (let k = count(f, rng); k > 0; k--) {
    const r = f.records[pickIndex(f, rng)];
    r.data = r.data.subarray(0, rng.below(r.data.length + 1));
    setRecU32(f, r, 8, r.data.length);
  }
});

const reorder = packets((f, rng) => {
  const n = f.records.length;
  for (let k = count(f, rng); k > 0; k--) {
    if (rng.chance(0.5)) {
      const i = rng.below(n), j = Math.min(n - 1, i + rng.int(1, 5));
      [f.records[i], f.records[j]] = [f.records[j], f.records[i]];
    } else {
      // Out of time order too: a timestamp moved back or forward.
      const r = f.records[rng.below(n)];
      if (rng.chance(0.8)) setRecU32(f, r, 0, recU32(f, r, 0) + rng.pick([-3600, -1, 1, 86400, -86400 * 365]));
      else setRecU32(f, r, 4, rng.pick([999_999, 1_000_000, 0xffffffff, rng.u32()])); // sub-second field past its range
    }
  }
  if (rng.chance(0.2)) {
    // Shuffle a window.
    const i = rng.below(n), w = Math.min(n - i, rng.int(2, 16));
    for (let a = w - 1; a > 0; a--) {
      const b = rng.below(a + 1);
      [f.records[i + a], f.records[i + b]] = [f.records[i + b], f.records[i + a]];
    }
  }
});

const duplicate = packets((f, rng) => {
  for (let k = count(f, rng); k > 0; k--) {
    const i = pickIndex(f, rng);
    const r = f.records[i];
    const at = rng.chance(0.5) ? i + 1 : rng.below(f.records.length + 1);
    f.records.splice(at, 0, { hdr: Buffer.from(r.hdr), data: Buffer.from(r.data) });
  }
});

const drop = packets((f, rng) => {
  for (let k = count(f, rng); k > 0 && f.records.length > 0; k--) f.records.splice(pickIndex(f, rng), 1);
});

/** pcap record caplen / wire length that disagree with the data (written raw: no record boundaries kept). */
function lieCaplen(buf, rng) {
  const f = parsePcap(buf);
  if (!f || f.records.length === 0) return bitflip(buf, rng);
  const g = clone(f);
  const i = pickIndex(g, rng);
  const r = g.records[i];
  if (rng.chance(0.5)) setRecU32(g, r, 8, rng.lie(r.data.length, 32));
  else setRecU32(g, r, 12, rng.lie(r.data.length, 32));
  return writePcap(g);
}

/** Fields of IP and TCP headers: total / payload length, TCP data offset. */
function headerLie(which) {
  return packets((f, rng) => {
    const cands = [];
    for (let i = 0; i < f.records.length; i++) {
      const loc = locate(f.linkType, f.records[i].data);
      if (loc) cands.push([i, loc]);
    }
    if (cands.length === 0) return;
    for (let k = rng.int(1, 4); k > 0; k--) {
      const [i, loc] = rng.pick(cands);
      const d = f.records[i].data;
      if (which === 'ip') d.writeUInt16BE(rng.lie(d.readUInt16BE(loc.lenOff), 16), loc.lenOff);
      else if (rng.chance(0.7)) d[loc.tcp + 12] = (rng.below(16) << 4) | (d[loc.tcp + 12] & 15);
      else d[loc.ip] = (d[loc.ip] & 0xf0) | rng.below(16); // IPv4 IHL (IPv6: a traffic class nibble)
    }
  });
}

/** An application protocol's length field in the payload (found by walking from the payload start). */
function protoLie(kind) {
  return packets((f, rng) => {
    const hits = lengthFields(f, kind);
    if (hits.length === 0) {
      // Nothing of that kind here: lie about some bytes of a payload instead.
      const r = f.records[pickIndex(f, rng)];
      if (r.data.length > 0) r.data[rng.below(r.data.length)] = rng.pick([0, 0xff, 0x7f]);
      return;
    }
    for (let k = rng.int(1, 3); k > 0; k--) lieField(f, rng, rng.pick(hits));
  });
}

/**
 * IPv4 packets cut into fragments (RFC 791 §3.2): offsets in 8-byte units, MF on all but the last,
 * then sometimes overlapping, duplicated, lost, reordered, or with a lying offset.
 */
const fragment = packets((f, rng) => {
  const cands = [];
  for (let i = 0; i < f.records.length; i++) {
    const loc = locate(f.linkType, f.records[i].data);
    if (loc && loc.version === 4 && f.records[i].data.length - loc.tcp >= 16) cands.push(i);
  }
  if (cands.length === 0) return;
  const chosen = new Set();
  for (let k = rng.int(1, 4); k > 0; k--) chosen.add(rng.pick(cands));
  for (const i of [...chosen].sort((a, b) => b - a)) {
    const r = f.records[i];
    const loc = locate(f.linkType, r.data);
    const head = r.data.subarray(0, loc.tcp), body = r.data.subarray(loc.tcp);
    const ihl = loc.tcp - loc.ip;
    const cuts = rng.cuts(Math.ceil(body.length / 8), rng.int(1, 3)).map((c) => c * 8).filter((c) => c < body.length);
    const edges = [0, ...cuts, body.length];
    let frags = [];
    const id = rng.int(0, 0xffff);
    for (let k = 0; k + 1 < edges.length; k++) {
      let a = edges[k];
      const b = edges[k + 1];
      if (rng.chance(0.1) && a >= 8) a -= 8; // overlap the previous fragment
      const d = Buffer.concat([head, body.subarray(a, b)]);
      const more = k + 2 < edges.length ? 0x2000 : 0;
      let off = a / 8;
      if (rng.chance(0.05)) off = rng.int(0, 0x1fff); // a lying offset
      d.writeUInt16BE(id, loc.ip + 4);
      d.writeUInt16BE(more | off, loc.ip + 6);
      d.writeUInt16BE(Math.min(0xffff, ihl + b - a), loc.ip + 2);
      const hdr = Buffer.from(r.hdr);
      setRecU32(f, { hdr }, 8, d.length);
      setRecU32(f, { hdr }, 12, d.length);
      frags.push({ hdr, data: d });
    }
    if (rng.chance(0.15)) frags.splice(rng.below(frags.length), 1);
    if (rng.chance(0.15)) frags.push(frags[rng.below(frags.length)]);
    if (rng.chance(0.3)) frags = frags.reverse();
    f.records.splice(i, 1, ...frags);
  }
});

/** TCP sequence and flags that lie: overlapping or far retransmissions, stray SYN / FIN / RST. */
const tcpSeq = packets((f, rng) => {
  const cands = [];
  for (let i = 0; i < f.records.length; i++) {
    const loc = locate(f.linkType, f.records[i].data);
    if (loc && f.records[i].data.length >= loc.tcp + 20) cands.push([f.records[i], loc]);
  }
  if (cands.length === 0) return;
  for (let k = rng.int(1, 6); k > 0; k--) {
    // Records, not indices: a retransmission inserted below shifts the indices.
    const [rec, loc] = rng.pick(cands);
    const d = rec.data;
    const what = rng.weighted([[3, 'seq'], [2, 'flags'], [2, 'retransmit'], [1, 'ack']]);
    if (what === 'seq') d.writeUInt32BE((d.readUInt32BE(loc.tcp + 4) + rng.pick([-1, 1, -100, 100, 2 ** 31, -(2 ** 31), rng.u32()])) >>> 0, loc.tcp + 4);
    else if (what === 'ack') d.writeUInt32BE(rng.u32(), loc.tcp + 8);
    else if (what === 'flags') d[loc.tcp + 13] = rng.pick([0x02, 0x12, 0x01, 0x04, 0x11, 0x14, 0x18, 0x00, 0xff, rng.int(0, 255)]);
    else {
      // The same segment again with different bytes, a little earlier in sequence space.
      const copy = Buffer.from(d);
      for (let p = loc.payload; p < copy.length; p++) if (rng.chance(0.2)) copy[p] = rng.int(0, 255);
      copy.writeUInt32BE((copy.readUInt32BE(loc.tcp + 4) - rng.int(0, 64)) >>> 0, loc.tcp + 4);
      f.records.splice(f.records.indexOf(rec) + rng.int(1, 3), 0, { hdr: Buffer.from(rec.hdr), data: copy });
    }
  }
});

/** The packets as pcapng with a chosen timestamp resolution and offset, then a few bytes flipped. */
function pcapng(buf, rng) {
  const f = parsePcap(buf);
  if (!f) return bitflip(buf, rng);
  const out = toPcapng(f, rng);
  return rng.chance(0.5) ? bitflip(out, rng) : out;
}

/** Timestamps that lie: the end of time, zero, sub-second fields past their range. */
const lieTime = packets((f, rng) => {
  for (let k = count(f, rng); k > 0; k--) {
    const r = f.records[pickIndex(f, rng)];
    setRecU32(f, r, rng.chance(0.5) ? 0 : 4, rng.pick([0, 0xffffffff, 0x7fffffff, 1_000_000, 999_999_999, rng.u32()]));
  }
});

/** Two captures in one: A's start then B's rest (B's times moved after A's), or interleaved. */
function splice(buf, rng, other) {
  const a = parsePcap(buf), b = other && parsePcap(other);
  if (!a || !b || a.linkType !== b.linkType || a.le !== b.le) {
    const o = other ?? buf;
    return Buffer.concat([buf.subarray(0, rng.below(buf.length + 1)), o.subarray(rng.below(o.length + 1))]);
  }
  const g = clone(a), h = clone(b);
  const last = g.records.length ? recU32(g, g.records[g.records.length - 1], 0) : 0;
  const first = h.records.length ? recU32(h, h.records[0], 0) : 0;
  const shift = rng.chance(0.5) ? last - first + rng.int(0, 2) : 0;
  for (const r of h.records) setRecU32(h, r, 0, recU32(h, r, 0) + shift);
  if (rng.chance(0.5)) {
    g.records = [...g.records.slice(0, rng.int(0, g.records.length)), ...h.records.slice(rng.int(0, h.records.length))];
  } else {
    const out = [];
    let i = 0, j = 0;
    while (i < g.records.length || j < h.records.length) {
      if (j >= h.records.length || (i < g.records.length && rng.chance(0.5))) out.push(g.records[i++]);
      else out.push(h.records[j++]);
    }
    g.records = out;
  }
  return writePcap(g);
}

/** Name → mutation(buf, rng, otherBuf) → bytes. `needs`: the length field a base capture must hold. */
export const CAPTURE_MUTATIONS = {
  bitflip: { fn: bitflip },
  'truncate-file': { fn: truncateFile },
  'truncate-packet': { fn: truncatePacket },
  reorder: { fn: reorder },
  duplicate: { fn: duplicate },
  drop: { fn: drop },
  'lie-caplen': { fn: lieCaplen },
  'lie-iplen': { fn: headerLie('ip') },
  'lie-tcpoff': { fn: headerLie('tcp') },
  'lie-http-cl': { fn: protoLie('http-cl'), needs: 'http-cl' },
  'lie-chunk': { fn: protoLie('http-chunk'), needs: 'http-chunk' },
  'lie-h2len': { fn: protoLie('h2-len'), needs: 'h2-len' },
  'lie-grpclen': { fn: protoLie('grpc-len'), needs: 'grpc-len' },
  'lie-pglen': { fn: protoLie('pg-len'), needs: 'pg-len' },
  splice: { fn: splice, pair: true },
  fragment: { fn: fragment },
  pcapng: { fn: pcapng },
  'lie-time': { fn: lieTime },
  'tcp-seq': { fn: tcpSeq },
};

/** Applies 1–3 mutations (the first is the case's named one), so faults combine now and then. */
export function mutateCapture(name, buf, rng, other) {
  let out = CAPTURE_MUTATIONS[name].fn(buf, rng, other);
  if (rng.chance(0.15)) {
    const extra = rng.pick(Object.keys(CAPTURE_MUTATIONS));
    out = CAPTURE_MUTATIONS[extra].fn(out, rng, other);
  }
  return out;
}
