import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HpackDecoder, HpackError, type DecodeResult, type HeaderField } from '../../src/protocols/http2/hpack.js';
import { HUFFMAN_CODES } from '../../src/protocols/http2/huffman.js';
import { STATIC_TABLE } from '../../src/protocols/http2/static-table.js';
import { int } from './hpack-int.js';

// ---- a small independent encoder ---------------------------------------------------------------


function huffman(octets: number[]): number[] {
  const bits: number[] = [];
  for (const o of octets) {
    const [code, len] = HUFFMAN_CODES[o]!;
    for (let i = len - 1; i >= 0; i--) bits.push(Math.floor(code / 2 ** i) % 2);
  }
  while (bits.length % 8) bits.push(1);
  const out: number[] = [];
  for (let i = 0; i < bits.length; i += 8) out.push(bits.slice(i, i + 8).reduce((a, b) => a * 2 + b, 0));
  return out;
}

const octets = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** §5.2 string literal, raw or Huffman-coded. */
function str(s: string, huff: boolean): number[] {
  const body = huff ? huffman(octets(s)) : octets(s);
  return [...int(7, huff ? 0x80 : 0, body.length), ...body];
}

type Kind = 'indexed' | 'incremental' | 'without' | 'never';
/** How to encode one field; the encoder falls back to a literal when an index is not available. */
interface Plan { kind: Kind; indexName: boolean; huffName: boolean; huffValue: boolean }

/** An HPACK encoder with its own dynamic table: the truth the decoder is compared against. */
class Encoder {
  /** Newest first. */
  entries: [string, string][] = [];
  size = 0;
  constructor(public max = 4096) {}

  private static entrySize(n: string, v: string): number {
    return n.length + v.length + 32;
  }
  private evict(): void {
    while (this.size > this.max) {
      const [n, v] = this.entries.pop()!;
      this.size -= Encoder.entrySize(n, v);
    }
  }
  private add(n: string, v: string): void {
    const s = Encoder.entrySize(n, v);
    if (s > this.max) {
      this.entries = [];
      this.size = 0;
      return;
    }
    this.entries.unshift([n, v]);
    this.size += s;
    this.evict();
  }
  /** HPACK index of (name, value), or of the name alone; 0 when absent. */
  private find(n: string, v?: string): number {
    const s = STATIC_TABLE.findIndex(([sn, sv]) => sn === n && (v === undefined || sv === v));
    if (s >= 0) return s + 1;
    const d = this.entries.findIndex(([dn, dv]) => dn === n && (v === undefined || dv === v));
    return d >= 0 ? STATIC_TABLE.length + d + 1 : 0;
  }

  /** Encodes one field; the block's bytes are the concatenation. */
  field(f: HeaderField, p: Plan): number[] {
    if (p.kind === 'indexed') {
      const i = this.find(f.name, f.value);
      if (i) return int(7, 0x80, i);
    }
    const kind = p.kind === 'indexed' ? 'incremental' : p.kind;
    const nameIndex = p.indexName ? this.find(f.name) : 0;
    const [prefix, flags] = kind === 'incremental' ? [6, 0x40] : kind === 'never' ? [4, 0x10] : [4, 0x00];
    const out = [...int(prefix, flags, nameIndex), ...(nameIndex ? [] : str(f.name, p.huffName)), ...str(f.value, p.huffValue)];
    if (kind === 'incremental') this.add(f.name, f.value);
    return out;
  }

  /** §6.3 dynamic table size update. */
  sizeUpdate(max: number): number[] {
    this.max = max;
    this.evict();
    return int(5, 0x20, max);
  }
}

/** One header block as separately encoded representations (size updates first). */
interface EncodedBlock { fields: HeaderField[]; parts: number[][]; updates: number[][] }
const whole = (b: EncodedBlock): Uint8Array => Uint8Array.from([...b.updates.flat(), ...b.parts.flat()]);

// ---- generators ----------------------------------------------------------------------------------

const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 12 });
const nameArb = fc.oneof(
  fc.constantFrom(':method', ':path', ':authority', ':status', 'content-type', 'cookie', 'user-agent', 'accept-encoding', 'cache-control'),
  fc.constantFrom('x-a', 'x-b', 'x-request-id', 'grpc-status'),
  latin1,
);
const valueArb = fc.oneof(
  fc.constantFrom('', 'GET', '/', '200', 'gzip, deflate', 'no-cache', 'application/json', 'a', 'b'),
  latin1,
  fc.string({ minLength: 40, maxLength: 300 }), // large entries force evictions
);
const planArb: fc.Arbitrary<Plan> = fc.record({
  kind: fc.constantFrom<Kind>('indexed', 'indexed', 'incremental', 'without', 'never'),
  indexName: fc.boolean(),
  huffName: fc.boolean(),
  huffValue: fc.boolean(),
});
const fieldArb = fc.record({ name: nameArb, value: valueArb });
const updatesArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant([] as number[]) },
  { weight: 2, arbitrary: fc.array(fc.constantFrom(0, 64, 100, 256, 1000, 4096), { minLength: 1, maxLength: 2 }) },
);
/** Blocks drawing most fields from a small per-sequence pool, as real header lists repeat. */
const blocksArb: fc.Arbitrary<BlockSpec[]> = fc.array(fieldArb, { minLength: 1, maxLength: 8 }).chain((pool) =>
  fc.array(
    fc.record({
      fields: fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: fieldArb }), { maxLength: 12 }),
      plans: fc.array(planArb, { minLength: 12, maxLength: 12 }),
      updates: updatesArb,
    }),
    { minLength: 1, maxLength: 12 },
  ),
);
type BlockSpec = { fields: HeaderField[]; plans: Plan[]; updates: number[] };

function encodeAll(enc: Encoder, specs: BlockSpec[]): { blocks: EncodedBlock[]; tables: [string, string][][] } {
  const blocks: EncodedBlock[] = [];
  const tables: [string, string][][] = [];
  for (const s of specs) {
    const updates = s.updates.map((u) => enc.sizeUpdate(u));
    const parts = s.fields.map((f, i) => enc.field(f, s.plans[i]!));
    blocks.push({ fields: s.fields, parts, updates });
    tables.push(enc.entries.map(([n, v]) => [n, v]));
  }
  return { blocks, tables };
}

const tableOf = (d: HpackDecoder): [string | undefined, string][] => d.dynamicTable().entries.map((e) => [e.name, e.value]);

// ---- RFC 7541 Appendix C -------------------------------------------------------------------------

/** The spec's hex dumps, pasted as printed (whitespace ignored). */
/**
 * Field representations in a well-formed block, counted without a table (RFC 7541 §6): indexed
 * (§6.1) and literal (§6.2) fields count, dynamic table size updates (§6.3) do not.
 */
function representations(b: Uint8Array): number {
  let p = 0, n = 0;
  const integer = (bits: number): number => {
    const max = (1 << bits) - 1;
    let v = b[p++]! & max;
    if (v < max) return v;
    for (let m = 0; ; m += 7) {
      const x = b[p++]!;
      v += (x & 0x7f) * 2 ** m;
      if (x < 0x80) return v;
    }
  };
  const skipString = () => {
    const length = integer(7); // read before adding: integer() moves p
    p += length;
  };
  while (p < b.length) {
    const first = b[p]!;
    if (first >= 0x80) integer(7);
    else if (first >= 0x20 && first < 0x40) { integer(5); continue; }
    else {
      if (integer(first >= 0x40 ? 6 : 4) === 0) skipString();
      skipString();
    }
    n++;
  }
  return n;
}

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
type Row = [name: string, value: string, size?: number];
interface Step { block: string; fields: Row[]; table: Row[]; size: number }

const REQ1: Row[] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: Row[] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: Row[] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const REQ_TABLES: [Row[], number][] = [
  [[[':authority', 'www.example.com', 57]], 57],
  [[['cache-control', 'no-cache', 53], [':authority', 'www.example.com', 57]], 110],
  [[['custom-key', 'custom-value', 54], ['cache-control', 'no-cache', 53], [':authority', 'www.example.com', 57]], 164],
];
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT', DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT', LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RES1: Row[] = [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]];
const RES2: Row[] = [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', LOC]];
const RES3: Row[] = [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', LOC], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]];
const RES_TABLES: [Row[], number][] = [
  [[['location', LOC, 63], ['date', DATE1, 65], ['cache-control', 'private', 52], [':status', '302', 42]], 222],
  [[[':status', '307', 42], ['location', LOC, 63], ['date', DATE1, 65], ['cache-control', 'private', 52]], 222],
  [[['set-cookie', COOKIE, 98], ['content-encoding', 'gzip', 52], ['date', DATE2, 65]], 215],
];
const steps = (blocks: string[], fields: Row[][], tables: [Row[], number][]): Step[] =>
  blocks.map((block, i) => ({ block, fields: fields[i]!, table: tables[i]![0], size: tables[i]![1] }));

const APPENDIX_C: { name: string; maxTableSize?: number; steps: Step[] }[] = [
  { name: 'C.2.1 literal with indexing', steps: [{ block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', fields: [['custom-key', 'custom-header']], table: [['custom-key', 'custom-header', 55]], size: 55 }] },
  { name: 'C.2.2 literal without indexing', steps: [{ block: '040c 2f73 616d 706c 652f 7061 7468', fields: [[':path', '/sample/path']], table: [], size: 0 }] },
  { name: 'C.2.3 literal never indexed', steps: [{ block: '1008 7061 7373 776f 7264 0673 6563 7265 74', fields: [['password', 'secret']], table: [], size: 0 }] },
  { name: 'C.2.4 indexed field', steps: [{ block: '82', fields: [[':method', 'GET']], table: [], size: 0 }] },
  {
    name: 'C.3 requests without Huffman',
    steps: steps([
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ], [REQ1, REQ2, REQ3], REQ_TABLES),
  },
  {
    name: 'C.4 requests with Huffman',
    steps: steps([
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ], [REQ1, REQ2, REQ3], REQ_TABLES),
  },
  {
    name: 'C.5 responses without Huffman (table size 256, evictions)',
    maxTableSize: 256,
    steps: steps([
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
    ], [RES1, RES2, RES3], RES_TABLES),
  },
  {
    name: 'C.6 responses with Huffman (table size 256, evictions)',
    maxTableSize: 256,
    steps: steps([
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      '4883 640e ffc1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ], [RES1, RES2, RES3], RES_TABLES),
  },
];

describe('HPACK RFC 7541 Appendix C examples', () => {
  for (const c of APPENDIX_C) {
    it(c.name, () => {
      const d = new HpackDecoder({ maxTableSize: c.maxTableSize });
      for (const s of c.steps) {
        const r = d.decode(hex(s.block));
        expect(r).toEqual({ fields: s.fields.map(([name, value]) => ({ name, value })), unknown: 0 });
        const t = d.dynamicTable();
        expect(t.entries).toEqual(s.table.map(([name, value, size]) => ({ name, value, size })));
        expect(t.size).toBe(s.size);
        expect(d.desynced).toBe(false);
      }
    });
  }

  it('C.1 integers: 10 and 1337 on a 5-bit prefix (as table size updates)', () => {
    const d = new HpackDecoder({ maxTableSize: 4096 });
    d.decode(Uint8Array.from([0x20 | 10]));
    expect(d.dynamicTable().maxSize).toBe(10);
    d.decode(Uint8Array.from([0x3f, 0x9a, 0x0a])); // 31 + 26 + 10 * 128
    expect(d.dynamicTable().maxSize).toBe(1337);
    // 42 on an 8-bit prefix has no HPACK representation; on the 7-bit index prefix it is static 42.
    expect(d.decode(Uint8Array.from([0x80 | 42])).fields).toEqual([{ name: 'if-range', value: '' }]);
  });

  it('every prefix of every Appendix C block is a valid prefix of its fields or hpack.truncated', () => {
    for (const c of APPENDIX_C) {
      c.steps.forEach((s, k) => {
        const block = hex(s.block);
        for (let len = 0; len < block.length; len++) {
          const d = new HpackDecoder({ maxTableSize: c.maxTableSize });
          for (const prev of c.steps.slice(0, k)) d.decode(hex(prev.block));
          checkPrefix(d, block.subarray(0, len), s.fields.map(([name, value]) => ({ name, value })));
        }
      });
    }
  });
});

/** Decoding a cut block gives the first fields or hpack.truncated, never another error. */
function checkPrefix(d: HpackDecoder, cut: Uint8Array, all: HeaderField[]): void {
  let r: DecodeResult | undefined;
  try {
    r = d.decode(cut);
  } catch (err) {
    expect(err).toBeInstanceOf(HpackError);
    expect((err as HpackError).code).toBe('hpack.truncated');
    return;
  }
  expect(r.unknown).toBe(0);
  expect(r.fields).toEqual(all.slice(0, r.fields.length));
}

// ---- malformed input -----------------------------------------------------------------------------

function errorOf(d: HpackDecoder, bytes: number[]): { code: string; offset: number } | undefined {
  try {
    d.decode(Uint8Array.from(bytes));
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(HpackError);
    const e = err as HpackError;
    return { code: e.code, offset: e.offset };
  }
}

describe('HPACK malformed input', () => {
  it('index 0 and indexes past the table are hpack.bad_index (§2.3.3, §6.1)', () => {
    expect(errorOf(new HpackDecoder(), [0x82, 0x80])).toEqual({ code: 'hpack.bad_index', offset: 1 });
    expect(errorOf(new HpackDecoder(), [0x80 | 62])).toEqual({ code: 'hpack.bad_index', offset: 0 });
    expect(errorOf(new HpackDecoder(), [0x40 | 62, 0x01, 0x61])).toEqual({ code: 'hpack.bad_index', offset: 0 });
    expect(errorOf(new HpackDecoder(), [0x0f, 62 - 15, 0x01, 0x61])).toEqual({ code: 'hpack.bad_index', offset: 0 });
    // After one insertion, 62 is valid and 63 is not.
    const d = new HpackDecoder();
    expect(d.decode(Uint8Array.from([0x40, ...str('x', false), ...str('y', false), 0x80 | 62])).fields).toEqual([{ name: 'x', value: 'y' }, { name: 'x', value: 'y' }]);
    expect(errorOf(d, [0x80 | 63])?.code).toBe('hpack.bad_index');
  });

  it('integers above 2^31 - 1 or with too many continuation octets are hpack.integer_overflow (§5.1)', () => {
    expect(errorOf(new HpackDecoder(), [0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])?.code).toBe('hpack.integer_overflow');
    expect(errorOf(new HpackDecoder(), [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])?.code).toBe('hpack.integer_overflow');
    // A string length of exactly 2^31 - 1 is an integer; the block just does not hold it.
    expect(errorOf(new HpackDecoder(), [0x00, ...int(7, 0, 2 ** 31 - 1)])?.code).toBe('hpack.truncated');
    expect(errorOf(new HpackDecoder(), [0x00, ...int(7, 0, 2 ** 31)])?.code).toBe('hpack.integer_overflow');
    // Zero-valued continuation octets are allowed: 31 + 0 + 0 → size update to 31.
    const d = new HpackDecoder();
    d.decode(Uint8Array.from([0x3f, 0x80, 0x80, 0x00]));
    expect(d.dynamicTable().maxSize).toBe(31);
  });

  it('Huffman strings with EOS or bad padding are rejected (§5.2)', () => {
    expect(errorOf(new HpackDecoder(), [0x00, 0x01, 0x61, 0x84, 0xff, 0xff, 0xff, 0xff])).toEqual({ code: 'hpack.huffman_eos', offset: 3 });
    expect(errorOf(new HpackDecoder(), [0x00, 0x81, 0xff, 0x00])).toEqual({ code: 'hpack.huffman_padding', offset: 1 });
    expect(errorOf(new HpackDecoder(), [0x00, 0x81, 0x18, 0x00])).toEqual({ code: 'hpack.huffman_padding', offset: 1 });
    expect(errorOf(new HpackDecoder(), [0x00, 0x82, 0x1f, 0xff, 0x00])?.code).toBe('hpack.huffman_padding');
  });

  it('table size updates above the limit or after a field are hpack.table_size_update (§4.2, §6.3)', () => {
    expect(errorOf(new HpackDecoder(), [...int(5, 0x20, 4097)])?.code).toBe('hpack.table_size_update');
    expect(errorOf(new HpackDecoder({ maxTableSize: 256 }), [...int(5, 0x20, 257)])?.code).toBe('hpack.table_size_update');
    expect(errorOf(new HpackDecoder(), [0x82, 0x20])).toEqual({ code: 'hpack.table_size_update', offset: 1 });
    // Several updates at the start of a block are fine (§4.2: the smallest, then the final size).
    const d = new HpackDecoder();
    expect(d.decode(Uint8Array.from([0x20, ...int(5, 0x20, 4096), 0x82])).fields).toEqual([{ name: ':method', value: 'GET' }]);
    expect(d.dynamicTable().maxSize).toBe(4096);
  });

  it('blocks that end inside a representation are hpack.truncated', () => {
    expect(errorOf(new HpackDecoder(), [0xff])).toEqual({ code: 'hpack.truncated', offset: 0 });
    expect(errorOf(new HpackDecoder(), [0x40])).toEqual({ code: 'hpack.truncated', offset: 1 });
    expect(errorOf(new HpackDecoder(), [0x40, 0x01, 0x61])).toEqual({ code: 'hpack.truncated', offset: 3 });
    expect(errorOf(new HpackDecoder(), [0x04, 0x05, 0x61])).toEqual({ code: 'hpack.truncated', offset: 1 });
  });

  it('after an error the decoder is desynced (the peer table is no longer known)', () => {
    const d = new HpackDecoder();
    d.decode(Uint8Array.from([0x40, ...str('x', false), ...str('y', false)]));
    expect(errorOf(d, [0x80])?.code).toBe('hpack.bad_index');
    expect(d.desynced).toBe(true);
    expect(d.decode(Uint8Array.from([0x80 | 62, 0x82]))).toEqual({ fields: [{ name: ':method', value: 'GET' }], unknown: 1 });
  });

  it('random bytes only ever throw HpackError, on fresh and on used decoders', () => {
    const bytes = fc.uint8Array({ maxLength: 200 });
    fc.assert(
      fc.property(fc.array(bytes, { minLength: 1, maxLength: 5 }), fc.boolean(), fc.option(fc.integer({ min: 0, max: 70000 })), (blocks, desynced, maxTableSize) => {
        const d = new HpackDecoder({ desynced, maxTableSize: maxTableSize ?? undefined });
        for (const b of blocks) {
          const synced = !d.desynced;
          try {
            const r = d.decode(b);
            // Every field representation is either decoded or counted unknown, never dropped
            // silently; a decoder that knew its whole table has nothing unknown to count.
            expect(r.unknown).toBe(representations(b) - r.fields.length);
            if (synced) expect(r.unknown).toBe(0);
          } catch (err) {
            if (!(err instanceof HpackError)) throw err;
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated valid blocks only ever throw HpackError', () => {
    fc.assert(
      fc.property(blocksArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (specs, muts) => {
        const { blocks } = encodeAll(new Encoder(), specs);
        const d = new HpackDecoder();
        for (const b of blocks) {
          const bytes = whole(b);
          for (const [at, xor] of muts) if (bytes.length) bytes[at % bytes.length] ^= xor;
          try {
            d.decode(bytes);
          } catch (err) {
            if (!(err instanceof HpackError)) throw err;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

// ---- round trips ---------------------------------------------------------------------------------

describe('HPACK round trips with an independent encoder', () => {
  it('random header lists decode to exactly what was encoded, with the same dynamic table', () => {
    fc.assert(
      fc.property(blocksArb, (specs) => {
        const { blocks, tables } = encodeAll(new Encoder(), specs);
        const d = new HpackDecoder();
        blocks.forEach((b, k) => {
          expect(d.decode(whole(b))).toEqual({ fields: b.fields, unknown: 0 });
          expect(tableOf(d)).toEqual(tables[k]);
          expect(d.desynced).toBe(false);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('long Huffman strings round-trip, past the kept scratch buffer too', () => {
    const d = new HpackDecoder();
    for (const len of [5000, 70_000, 200_000, 10]) {
      const value = 'abcdefghij0123456789/?=&'.repeat(len / 10).slice(0, len);
      const plan: Plan = { kind: 'without', indexName: true, huffName: true, huffValue: true };
      expect(d.decode(Uint8Array.from(new Encoder().field({ name: 'cookie', value }, plan))).fields).toEqual([{ name: 'cookie', value }]);
    }
  });

  it('a SETTINGS limit: lower applies once the encoder sends a size update within it, higher at once', () => {
    const enc = new Encoder(4096);
    const d = new HpackDecoder();
    const plan: Plan = { kind: 'incremental', indexName: false, huffName: false, huffValue: false };
    for (let k = 0; k < 5; k++) d.decode(Uint8Array.from(enc.field({ name: 'x-big', value: 'v'.repeat(200) + k }, plan)));
    expect(d.dynamicTable()).toMatchObject({ maxSize: 4096, size: 5 * 238 });
    d.setMaxTableSizeLimit(500);
    // Blocks the encoder sent before it saw the SETTINGS may still use the whole old table.
    expect(d.decode(Uint8Array.from(int(7, 0x80, 66))).fields).toEqual([{ name: 'x-big', value: 'v'.repeat(200) + 0 }]);
    d.decode(Uint8Array.from(int(5, 0x20, 500)));
    expect(d.dynamicTable()).toMatchObject({ maxSize: 500, size: 2 * 238 });
    d.setMaxTableSizeLimit(8192);
    d.decode(Uint8Array.from(int(5, 0x20, 8192)));
    expect(d.dynamicTable().maxSize).toBe(8192);
    d.setMaxTableSizeLimit(100);
    d.decode(Uint8Array.from(int(5, 0x20, 50)));
    expect(errorOf(d, int(5, 0x20, 101))?.code).toBe('hpack.table_size_update');
  });

  it('every prefix of random blocks is a valid prefix of its fields or hpack.truncated', () => {
    fc.assert(
      fc.property(blocksArb, fc.nat(), (specs, pick) => {
        const { blocks } = encodeAll(new Encoder(), specs);
        const k = pick % blocks.length;
        const block = whole(blocks[k]!);
        for (let len = 0; len < block.length; len++) {
          const d = new HpackDecoder();
          for (const b of blocks.slice(0, k)) d.decode(whole(b));
          checkPrefix(d, block.subarray(0, len), blocks[k]!.fields);
        }
      }),
      { numRuns: 100 },
    );
  });
});

// ---- desync --------------------------------------------------------------------------------------

const lit = (name: string, value: string, flags = 0x40): number[] => [flags, ...str(name, false), ...str(value, false)];
const litIndexedName = (index: number, value: string, flags = 0x40, prefix = 6): number[] => [...int(prefix, flags, index), ...str(value, false)];
const fields = (...pairs: [string, string][]): HeaderField[] => pairs.map(([name, value]) => ({ name, value }));

describe('HPACK with a desynced table', () => {
  it('decodes static references and literals, counts unknown dynamic references', () => {
    const d = new HpackDecoder({ desynced: true });
    expect(d.desynced).toBe(true);
    const r = d.decode(Uint8Array.from([0x82, 0x80 | 62, ...lit('x-a', '1', 0x00), ...litIndexedName(4, '/p', 0x00, 4), 0x80 | 70]));
    expect(r).toEqual({ fields: fields([':method', 'GET'], ['x-a', '1'], [':path', '/p']), unknown: 2 });
  });

  it('entries inserted after the desync are known; older ones are not', () => {
    const d = new HpackDecoder({ desynced: true, maxTableSize: 4096 });
    d.decode(Uint8Array.from([...lit('x-a', '1'), ...lit('x-b', '2')]));
    // 62 = x-b, 63 = x-a, 64 = unknown.
    expect(d.decode(Uint8Array.from([0x80 | 62, 0x80 | 63, 0x80 | 64]))).toEqual({ fields: fields(['x-b', '2'], ['x-a', '1']), unknown: 1 });
    expect(d.desynced).toBe(true);
  });

  it('a literal with an unknown indexed name is omitted; its insertion has an unknown name', () => {
    const d = new HpackDecoder({ desynced: true, maxTableSize: 4096 });
    // Literal with incremental indexing, name = dynamic 66 (unknown), value "secret".
    const r = d.decode(Uint8Array.from([...litIndexedName(66, 'secret'), ...lit('x-a', '1')]));
    expect(r).toEqual({ fields: fields(['x-a', '1']), unknown: 1 });
    expect(d.dynamicTable().entries).toEqual([{ name: 'x-a', value: '1', size: 36 }, { name: undefined, value: 'secret', size: 38 }]);
    // Indexed references: 62 = x-a (known), 63 = the unknown-named entry, 64 = unknown.
    expect(d.decode(Uint8Array.from([0x80 | 62, 0x80 | 63, 0x80 | 64]))).toEqual({ fields: fields(['x-a', '1']), unknown: 2 });
    // The name of 63 is unknown too, even for a literal that only borrows the name.
    expect(d.decode(Uint8Array.from(litIndexedName(63, 'v', 0x00, 4)))).toEqual({ fields: [], unknown: 1 });
    // Without an insertion, never-indexed: the name from a known entry is fine.
    expect(d.decode(Uint8Array.from(litIndexedName(62, 'v', 0x10, 4)))).toEqual({ fields: fields(['x-a', 'v']), unknown: 0 });
  });

  it('a size update to 0 empties the table: known again, and stray references are errors again', () => {
    const d = new HpackDecoder({ desynced: true });
    d.decode(Uint8Array.from(litIndexedName(66, 'secret')));
    expect(d.desynced).toBe(true);
    expect(d.decode(Uint8Array.from([0x20, ...int(5, 0x20, 4096), ...lit('x-a', '1'), 0x80 | 62]))).toEqual({ fields: fields(['x-a', '1'], ['x-a', '1']), unknown: 0 });
    expect(d.desynced).toBe(false);
    expect(errorOf(d, [0x80 | 63])?.code).toBe('hpack.bad_index');
  });

  it('resyncs when the entries inserted since fill a table of proven size (exact after a size update)', () => {
    const d = new HpackDecoder({ desynced: true });
    d.decode(Uint8Array.from(int(5, 0x20, 200)));
    expect(d.desynced).toBe(true);
    d.decode(Uint8Array.from(lit('x-a', 'v'.repeat(100)))); // 135 octets: 65 left, room for an unknown entry
    expect(d.desynced).toBe(true);
    d.decode(Uint8Array.from(lit('x-b', 'w'.repeat(10)))); // 45 more: 180 + 32 > 200
    expect(d.desynced).toBe(false);
    expect(tableOf(d)).toEqual([['x-b', 'w'.repeat(10)], ['x-a', 'v'.repeat(100)]]);
  });

  it('resyncs on a known SETTINGS limit, but not on a limit it was never told', () => {
    const known = new HpackDecoder({ desynced: true, maxTableSize: 256 });
    const unknownLimit = new HpackDecoder({ desynced: true });
    for (const d of [known, unknownLimit]) for (let k = 0; k < 3; k++) d.decode(Uint8Array.from(lit(`x-${k}`, 'v'.repeat(60))));
    expect(known.desynced).toBe(false); // 3 * 95 > 256 - 32
    expect(unknownLimit.desynced).toBe(true);
    // A SETTINGS frame alone does not prove the encoder's table is that small yet.
    unknownLimit.setMaxTableSizeLimit(256);
    expect(unknownLimit.desynced).toBe(true);
    unknownLimit.decode(Uint8Array.from(int(5, 0x20, 256)));
    expect(unknownLimit.desynced).toBe(false);
    expect(tableOf(unknownLimit)).toEqual(tableOf(known));
  });

  it('desync() after a gap forgets the entries and the exact size', () => {
    const d = new HpackDecoder();
    d.decode(Uint8Array.from([...int(5, 0x20, 100), ...lit('x-a', '1')]));
    d.desync();
    expect(d.desynced).toBe(true);
    expect(d.dynamicTable()).toEqual({ entries: [], size: 0, maxSize: 4096 });
    expect(d.decode(Uint8Array.from([0x80 | 62]))).toEqual({ fields: [], unknown: 1 });
  });

  it('an index that cannot exist even in a full table is still hpack.bad_index', () => {
    const d = new HpackDecoder({ desynced: true, maxTableSize: 4096 });
    expect(d.decode(Uint8Array.from(int(7, 0x80, 61 + 128)))).toEqual({ fields: [], unknown: 1 }); // 128 * 32 = 4096
    expect(errorOf(d, int(7, 0x80, 61 + 129))?.code).toBe('hpack.bad_index');
  });

  /*
   * The property: encode a sequence of blocks with a table in sync; give the decoder only blocks
   * k..n after desync(). Each field representation is decoded on its own (a block may hold any
   * number of them), so every output can be checked against the true field at its position.
   */
  it('never emits a wrong field after desync(): each decoded field is the true one at its position', () => {
    let decodedDynamic = 0, resynced = 0, omitted = 0;
    fc.assert(
      fc.property(blocksArb, fc.nat(), fc.constantFrom('fresh', 'fresh-limit', 'gap'), (specs, pick, mode) => {
        const { blocks, tables } = encodeAll(new Encoder(), specs);
        const k = pick % (blocks.length + 1);
        const d = mode === 'fresh' ? new HpackDecoder({ desynced: true }) : mode === 'fresh-limit' ? new HpackDecoder({ desynced: true, maxTableSize: 4096 }) : new HpackDecoder();
        if (mode === 'gap') {
          const seen = Math.floor(k / 2);
          for (const b of blocks.slice(0, seen)) d.decode(whole(b));
          d.desync();
        }
        blocks.slice(k).forEach((b, j) => {
          if (b.updates.length) d.decode(Uint8Array.from(b.updates.flat()));
          b.parts.forEach((part, i) => {
            const r = d.decode(Uint8Array.from(part));
            expect(r.fields.length + r.unknown).toBe(1);
            if (r.fields.length) {
              expect(r.fields[0]).toEqual(b.fields[i]);
              if (part[0]! >= 0x80 && (part[0]! & 0x7f) > 61) decodedDynamic++;
            } else omitted++;
          });
          if (!d.desynced) {
            // Every entry the encoder can reference is known, in place. The decoder may still hold
            // entries the encoder evicted under a smaller maximum than the limit it was told.
            resynced++;
            const truth = tables[k + j]!;
            expect(tableOf(d).slice(0, truth.length)).toEqual(truth);
          }
        });
      }),
      { numRuns: 1000 },
    );
    // The generator exercises the interesting cases.
    expect(decodedDynamic).toBeGreaterThan(100);
    expect(omitted).toBeGreaterThan(100);
    expect(resynced).toBeGreaterThan(50);
  });

  it('whole blocks after desync(): the fields are a subsequence of the truth, the rest counted unknown', () => {
    fc.assert(
      fc.property(blocksArb, fc.nat(), fc.boolean(), (specs, pick, limitKnown) => {
        const { blocks } = encodeAll(new Encoder(), specs);
        const k = pick % blocks.length;
        const d = new HpackDecoder({ desynced: true, maxTableSize: limitKnown ? 4096 : undefined });
        for (const b of blocks.slice(k)) {
          const wasSynced = !d.desynced;
          const r = d.decode(whole(b));
          expect(r.fields.length + r.unknown).toBe(b.fields.length);
          let at = 0;
          for (const f of r.fields) {
            while (at < b.fields.length && (b.fields[at]!.name !== f.name || b.fields[at]!.value !== f.value)) at++;
            expect(at, `${JSON.stringify(f)} is not in order in the true block`).toBeLessThan(b.fields.length);
            at++;
          }
          if (wasSynced) expect(r).toEqual({ fields: b.fields, unknown: 0 });
        }
      }),
      { numRuns: 500 },
    );
  });
});
