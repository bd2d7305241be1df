import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EOS, HUFFMAN_CODES, HUFFMAN_RESULT, huffmanDecode, huffmanMaxDecodedLength } from '../../src/protocols/http2/huffman.js';

/*
 * The Huffman code table (RFC 7541 Appendix B) is checked for the properties that catch a mistyped
 * row, then the table-driven decoder is checked against a plain bit-by-bit reference decoder
 * written here from the same rows: exhaustively over every 1- and 2-octet input, and under
 * fast-check over longer inputs and encoded strings.
 */

/** Bit-packs octets with the code table (MSB first, padded with the EOS prefix: all ones). */
function huffmanEncode(octets: number[]): number[] {
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

const byCode = new Map<string, number>();
HUFFMAN_CODES.forEach(([code, len], sym) => byCode.set(`${len}:${code}`, sym));

/** Reference decoder: match the bits read so far against every code, one bit at a time. */
function referenceDecode(input: number[]): number[] | 'eos' | 'padding' {
  const out: number[] = [];
  let code = 0, len = 0;
  for (const octet of input) {
    for (let i = 7; i >= 0; i--) {
      code = code * 2 + ((octet >> i) & 1);
      len++;
      const sym = byCode.get(`${len}:${code}`);
      if (sym === undefined) continue;
      if (sym === EOS) return 'eos';
      out.push(sym);
      code = 0;
      len = 0;
    }
  }
  // §5.2: padding is at most 7 bits, all ones.
  return len <= 7 && code === 2 ** len - 1 ? out : 'padding';
}

function decode(input: number[]): number[] | 'eos' | 'padding' {
  const out = new Uint8Array(huffmanMaxDecodedLength(input.length));
  const n = huffmanDecode(Uint8Array.from(input), 0, input.length, out);
  if (n === HUFFMAN_RESULT.eos) return 'eos';
  if (n === HUFFMAN_RESULT.padding) return 'padding';
  return [...out.subarray(0, n)];
}

describe('HPACK Huffman code table (RFC 7541 Appendix B)', () => {
  it('has 257 rows, codes that fit their lengths, lengths 5..30', () => {
    expect(HUFFMAN_CODES).toHaveLength(257);
    for (const [code, len] of HUFFMAN_CODES) {
      expect(len).toBeGreaterThanOrEqual(5);
      expect(len).toBeLessThanOrEqual(30);
      expect(code).toBeLessThan(2 ** len);
    }
  });

  it('is canonical: sorted by (length, symbol) the codes count up', () => {
    const rows = HUFFMAN_CODES.map(([code, len], sym) => ({ sym, code, len })).sort((a, b) => a.len - b.len || a.sym - b.sym);
    let expected = 0;
    rows.forEach((r, k) => {
      if (k > 0) expected = (expected + 1) * 2 ** (r.len - rows[k - 1]!.len);
      expect(r.code, `symbol ${r.sym}`).toBe(expected);
    });
  });

  it('is complete (Kraft sum exactly 1) and EOS is thirty one-bits', () => {
    const kraft = HUFFMAN_CODES.reduce((sum, [, len]) => sum + 2 ** (30 - len), 0);
    expect(kraft).toBe(2 ** 30);
    expect(HUFFMAN_CODES[EOS]).toEqual([0x3fffffff, 30]);
  });

  it("matches the appendix's worked example and a few rows", () => {
    expect(HUFFMAN_CODES[47]).toEqual([0x18, 6]); // '/' = 011000
    expect(HUFFMAN_CODES[48]).toEqual([0x0, 5]); // '0'
    expect(HUFFMAN_CODES[32]).toEqual([0x14, 6]); // ' '
    expect(HUFFMAN_CODES[0]).toEqual([0x1ff8, 13]);
    expect(HUFFMAN_CODES[255]).toEqual([0x3ffffee, 26]);
  });
});

describe('HPACK Huffman decoder', () => {
  it('agrees with the reference decoder on every 1- and 2-octet input', () => {
    for (let a = 0; a < 256; a++) {
      expect(decode([a])).toEqual(referenceDecode([a]));
      for (let b = 0; b < 256; b++) {
        const got = decode([a, b]), want = referenceDecode([a, b]);
        if (JSON.stringify(got) !== JSON.stringify(want)) expect(got, `${a},${b}`).toEqual(want);
      }
    }
  });

  it('decodes every single symbol and agrees with the reference on random inputs', () => {
    for (let s = 0; s < 256; s++) expect(decode(huffmanEncode([s]))).toEqual([s]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }), (input) => {
        expect(decode(input)).toEqual(referenceDecode(input));
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips encoded strings, and corrupted ones agree with the reference', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 100 }), fc.nat(), fc.nat(255), (octets, at, xor) => {
        const enc = huffmanEncode(octets);
        expect(decode(enc)).toEqual(octets);
        if (enc.length === 0) return;
        enc[at % enc.length] ^= xor;
        expect(decode(enc)).toEqual(referenceDecode(enc));
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects EOS inside a string, long padding, and padding that is not all ones (§5.2)', () => {
    expect(decode([0xff, 0xff, 0xff, 0xff])).toBe('eos'); // EOS + 2 one-bits
    expect(decode([0x1f, 0xff, 0xff, 0xff, 0xff])).toBe('eos'); // 'a' (00011), then 35 ones
    expect(decode([0xff])).toBe('padding'); // 8 bits of padding
    expect(decode([0x1f, 0xff])).toBe('padding'); // 'a' + 11 bits of padding
    expect(decode([0x18])).toBe('padding'); // 'a' + 000
    expect(decode([0x1e])).toBe('padding'); // 'a' + 110
    expect(decode([0x1f])).toEqual([0x61]); // 'a' + 111
    expect(decode([])).toEqual([]);
  });
});
