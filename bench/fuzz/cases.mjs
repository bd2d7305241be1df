// What one fuzz case is: a decoder and a mutation chosen from (run seed, case index), then its
// input made from the case's own seed. A case is named `decoder/mutation/seed`, and that name
// alone rebuilds it (`--repro`).
import { genHttp1 } from './gen-http1.mjs';
import { genHpackBlocks, genHttp2 } from './gen-h2.mjs';
import { genPostgres } from './gen-pg.mjs';
import { connection } from './drive.mjs';
import { Rng, caseSeed } from './prng.mjs';

export const DECODERS = ['http1', 'http2', 'grpc', 'postgres', 'hpack'];
/** Protocol-aware mutations of a generated connection's messages; "gen" leaves them valid. */
export const UNIT_MUTATIONS = ['gen', 'lie-len', 'bitflip', 'truncate', 'drop', 'dup', 'swap', 'insert', 'gap', 'random', 'midstream'];

const hex = (n) => n.toString(16).padStart(8, '0');
export const caseId = (c) => `${c.decoder}/${c.mutation}/${hex(c.seed)}`;

export function parseId(id) {
  const [decoder, mutation, seed] = id.split('/');
  return { decoder, mutation, seed: parseInt(seed, 16) >>> 0 };
}

/**
 * Case `index` of a run: whole captures about one case in `captureShare`, else a decoder fed
 * directly. `only` keeps the decoders or mutations of that name (a capture mutation, "capture",
 * or a decoder).
 */
export function planCase(seed, index, captureMutations, only, captureShare = 0.15) {
  const s = caseSeed(seed, index);
  const r = new Rng(s ^ 0x5bd1e995);
  const direct = DECODERS.flatMap((d) => (d === 'hpack' ? UNIT_MUTATIONS.filter((m) => m !== 'lie-len' && m !== 'gap' && m !== 'midstream' && m !== 'drop') : UNIT_MUTATIONS).map((m) => [d, m]));
  const capture = captureMutations.map((m) => ['capture', m]);
  let pool;
  if (only) {
    pool = [...direct, ...capture].filter(([d, m]) => d === only || m === only);
    if (pool.length === 0) throw new Error(`--only ${only}: no decoder or mutation of that name (decoders: ${DECODERS.join(', ')}, capture; mutations: ${[...new Set([...UNIT_MUTATIONS, ...captureMutations])].join(', ')})`);
  } else pool = r.chance(captureShare) ? capture : direct;
  const [decoder, mutation] = r.pick(pool);
  return { index, seed: s, decoder, mutation };
}

// ---- protocol-aware mutations of units ({ dir, bytes, fields } | { dir, gap }) ----

function lieUnit(rng, u) {
  const f = rng.pick(u.fields);
  if (f.text) {
    const v = rng.lie(f.value, 31);
    let s = f.hex ? v.toString(16) : String(v);
    if (rng.chance(0.15)) s = rng.pick(['-1', '', ' 1', '0x10', '1e3', '99999999999999999999', '00000000000000000001', 'ffffffffffffffff', '+5', '4 4']);
    const b = Buffer.from(s, 'latin1');
    const delta = b.length - f.width;
    u.bytes = Buffer.concat([u.bytes.subarray(0, f.off), b, u.bytes.subarray(f.off + f.width)]);
    u.fields = u.fields.filter((x) => x !== f).map((x) => (x.off > f.off ? { ...x, off: x.off + delta } : x));
    return;
  }
  u.bytes = Buffer.from(u.bytes);
  const v = rng.lie(f.value, f.width * 8);
  if (f.width === 3) u.bytes.writeUIntBE(v & 0xffffff, f.off, 3);
  else if (f.width === 4) u.bytes.writeUInt32BE(v >>> 0, f.off);
}

const copy = (u) => ({ ...u, bytes: u.bytes && Buffer.from(u.bytes) });

export function mutateUnits(rng, units, mutation, ctx) {
  if (units.length === 0) return units;
  const at = () => rng.below(units.length);
  const data = () => { const i = at(); return units[i].bytes ? i : -1; };
  switch (mutation) {
    case 'gen': return units;
    case 'lie-len': {
      const withFields = units.filter((u) => u.fields?.length);
      if (withFields.length === 0) return mutateUnits(rng, units, 'bitflip', ctx);
      lieUnit(rng, rng.pick(withFields));
      return units;
    }
    case 'bitflip': {
      const i = data();
      if (i < 0 || units[i].bytes.length === 0) return units;
      const u = units[i] = copy(units[i]);
      for (let k = rng.int(1, 8); k > 0; k--) {
        const p = rng.below(u.bytes.length);
        if (rng.chance(0.7)) u.bytes[p] ^= 1 << rng.below(8);
        else u.bytes[p] = rng.pick([0, 0xff, 0x7f, 0x80, 0x0d, 0x0a, 0x3a]);
      }
      return units;
    }
    case 'truncate': {
      const i = data();
      if (i < 0) return units;
      units[i] = { ...units[i], bytes: units[i].bytes.subarray(0, rng.below(units[i].bytes.length + 1)), fields: [] };
      return rng.chance(0.5) ? units.slice(0, i + 1) : units;
    }
    case 'drop': units.splice(at(), 1); return units;
    case 'dup': { const i = at(); units.splice(rng.chance(0.6) ? i + 1 : rng.below(units.length + 1), 0, copy(units[i])); return units; }
    case 'swap': {
      const i = at(), j = Math.min(units.length - 1, i + rng.int(1, 3));
      [units[i], units[j]] = [units[j], units[i]];
      return units;
    }
    case 'insert': {
      const junk = rng.weighted([[3, () => rng.bytes(rng.size(64))], [1, () => Buffer.from(rng.pick(['\r\n', '\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\n', 'GET / HTTP/1.1\r\n\r\n', '\0\0\0\x08', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'Z\0\0\0\x05I']))]])();
      const i = data();
      if (i < 0 || rng.chance(0.3)) { units.splice(at(), 0, { dir: rng.below(2), bytes: junk, fields: [] }); return units; }
      const u = units[i], p = rng.below(u.bytes.length + 1);
      units[i] = { ...u, bytes: Buffer.concat([u.bytes.subarray(0, p), junk, u.bytes.subarray(p)]), fields: [] };
      return units;
    }
    case 'gap': {
      const i = data();
      if (i < 0) return units;
      const u = units[i];
      const a = rng.below(u.bytes.length + 1), b = rng.int(a, u.bytes.length);
      const parts = [];
      if (a > 0) parts.push({ dir: u.dir, bytes: u.bytes.subarray(0, a), fields: [] });
      parts.push({ dir: u.dir, gap: Math.max(1, b - a) });
      if (b < u.bytes.length) parts.push({ dir: u.dir, bytes: u.bytes.subarray(b), fields: [] });
      units.splice(i, 1, ...parts);
      return units;
    }
    case 'random': {
      const junk = { dir: rng.below(2), bytes: rng.bytes(rng.size(2000)), fields: [] };
      if (rng.chance(0.5)) units.splice(at(), 1, junk);
      else units.push(junk);
      return units;
    }
    case 'midstream': {
      // The capture began inside the connection: units before a point are gone, the first is cut.
      const i = at();
      const rest = units.slice(i);
      if (rest[0]?.bytes) rest[0] = { ...rest[0], bytes: rest[0].bytes.subarray(rng.below(rest[0].bytes.length + 1)), fields: [] };
      ctx.resync = rng.chance(0.8);
      ctx.conn.midStream = true;
      ctx.conn.handshakeSeen = false;
      return rest;
    }
    default: throw new Error(`unknown mutation ${mutation}`);
  }
}

/** Units to session calls: same-direction units sometimes coalesced, each cut at random points. */
export function toSteps(rng, units) {
  const steps = [];
  const blobs = [];
  for (const u of units) {
    const last = blobs[blobs.length - 1];
    if (u.bytes && last?.bytes && last.dir === u.dir && rng.chance(0.4)) last.bytes = Buffer.concat([last.bytes, u.bytes]);
    else blobs.push({ ...u });
  }
  for (const b of blobs) {
    const dt = rng.chance(0.9) ? rng.float() * 0.01 : rng.pick([0, 5, 120, -1]);
    if (!b.bytes) { steps.push({ op: 'gap', dir: b.dir, len: b.gap, dt }); continue; }
    if (b.bytes.length === 0) continue;
    const every = b.bytes.length <= 48 && rng.chance(0.1);
    // As TCP delivers it, often: segments of one MSS (where a parser that re-joins a partial
    // message on every segment turns quadratic).
    const mss = !every && b.bytes.length > 1460 && rng.chance(0.3) ? rng.pick([536, 1460, 1460, 16384]) : 0;
    const cuts = every ? Array.from({ length: b.bytes.length - 1 }, (_, k) => k + 1)
      : mss ? Array.from({ length: Math.ceil(b.bytes.length / mss) - 1 }, (_, k) => (k + 1) * mss)
        : rng.cuts(b.bytes.length, rng.weighted([[4, 0], [4, rng.int(1, 3)], [1, rng.int(4, 20)]]));
    let a = 0;
    for (const c of [...cuts, b.bytes.length]) {
      steps.push({ op: 'data', dir: b.dir, bytes: b.bytes.subarray(a, c), dt: a === 0 ? dt : 0.00001 });
      a = c;
    }
  }
  if (rng.chance(0.7)) steps.push({ op: 'fin', dir: rng.below(2) });
  if (rng.chance(0.5)) steps.push({ op: 'fin', dir: rng.below(2) });
  if (rng.chance(0.95)) steps.push({ op: 'end', reason: rng.pick(['fin', 'fin', 'rst', 'idle', 'evicted', 'eof', 'reused']) });
  return steps;
}

function hpackMutate(rng, blocks, mutation) {
  const units = blocks.map((b) => ({ dir: 0, bytes: b, fields: [] }));
  let out = mutation === 'gen' ? units : mutateUnits(rng, units, mutation, {});
  if (mutation !== 'gen' && rng.chance(0.3)) {
    // HPACK's own lies: an overlong integer, a string length past the block, a huge size update.
    const i = rng.below(out.length);
    const lie = Buffer.from(rng.pick([[0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f], [0x3f, 0xe1, 0xff, 0x03], [0x00, 0x7f, 0xff, 0x7f], [0x40, 0x85], [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x80], [0xbe], [0x40, 0x81, 0x00, 0x81, 0xff]]));
    if (out[i]) out[i] = { ...out[i], bytes: rng.chance(0.5) ? Buffer.concat([lie, out[i].bytes]) : Buffer.concat([out[i].bytes, lie]) };
  }
  out = out.filter((u) => u.bytes);
  return out.map((u) => u.bytes);
}

/** The input of a case: { kind: 'session', analyzer, conn, steps, … } or { kind: 'hpack', … }. */
export function buildDirect(c, huffman) {
  const rng = new Rng(c.seed);
  if (c.decoder === 'hpack') {
    const { limit, blocks } = genHpackBlocks(rng, huffman);
    return { kind: 'hpack', limit, blocks: hpackMutate(rng, blocks, c.mutation), desyncOnError: rng.chance(0.7), resize: rng.chance(0.2) ? rng.pick([0, 100, 4096, 65536]) : undefined, desynced: rng.chance(0.1) };
  }
  const h2 = (r, o = {}) => genHttp2(r, { ...o, huffman });
  const units = c.decoder === 'http1' ? genHttp1(rng, { after: (r) => h2(r, { upgraded: true }) })
    : c.decoder === 'http2' ? h2(rng)
      : c.decoder === 'grpc' ? h2(rng, { grpc: true })
        : genPostgres(rng);
  const conn = connection(rng);
  const ctx = { conn, resync: conn.midStream && rng.chance(0.5) };
  let out = mutateUnits(rng, units, c.mutation, ctx);
  for (let k = c.mutation === 'gen' ? 0 : rng.weighted([[6, 0], [3, 1], [1, 2]]); k > 0; k--) out = mutateUnits(rng, out, rng.pick(UNIT_MUTATIONS.filter((m) => m !== 'midstream')), ctx);
  return {
    kind: 'session', analyzer: c.decoder === 'grpc' ? 'http2' : c.decoder === 'http1' ? 'http' : c.decoder, conn, resync: ctx.resync,
    bodyLimit: rng.pick([0, 16, 1024, 65536]), maxMessages: rng.pick([undefined, 1, 4]), previewRows: rng.pick([undefined, 0, 2]), redact: rng.chance(0.2), protos: rng.chance(0.5),
    steps: toSteps(rng, out),
  };
}

// ---- fixtures: a case's input as JSON, independent of the generators that made it ----

/** Bytes in a fixture: base64 (`b64`), which keeps files small; `hex` is read too, for hand-made ones. */
const fromBytes = (s) => (s.b64 !== undefined ? Buffer.from(s.b64, 'base64') : Buffer.from(s.hex, 'hex'));

export function toFixture(input) {
  if (input.kind === 'hpack') return { ...input, blocks: input.blocks.map((b) => ({ b64: b.toString('base64') })) };
  return {
    ...input,
    steps: input.steps.map(({ bytes, ...s }) => (bytes ? { ...s, b64: bytes.toString('base64') } : s)),
  };
}

export function fromFixture(f) {
  if (f.kind === 'hpack') return { ...f, blocks: f.blocks.map(fromBytes) };
  // `repeat`: the same bytes as that many consecutive calls (hand-made fixtures of long streams).
  return {
    ...f, conn: { ...f.conn },
    steps: f.steps.flatMap(({ b64, hex, repeat, ...s }) => {
      const step = b64 !== undefined || hex !== undefined ? { ...s, bytes: fromBytes({ b64, hex }) } : s;
      return Array.from({ length: repeat ?? 1 }, () => step);
    }),
  };
}
