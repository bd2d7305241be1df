// A small, fast, seeded PRNG (sfc32) and the helpers the fuzz cases draw from. Every case gets its
// own generator from (run seed, case index), so any one case is reproducible from its seed alone.

/** A 32-bit hash of two integers (murmur3's finaliser over a mix): the seed of case `index`. */
export function caseSeed(seed, index) {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** sfc32 seeded from one 32-bit number (splitmix-style expansion). */
export class Rng {
  constructor(seed) {
    this.seed = seed >>> 0;
    let s = this.seed;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad) >>> 0;
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97) >>> 0;
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next() | 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32() {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A float in [0, 1). */
  float() {
    return this.u32() / 4294967296;
  }

  /** An integer in [lo, hi] (inclusive). */
  int(lo, hi) {
    if (hi <= lo) return lo;
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** An integer below n (0 when n ≤ 0). */
  below(n) {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  chance(p) {
    return this.float() < p;
  }

  pick(arr) {
    return arr[this.below(arr.length)];
  }

  /** Picks from [[weight, value], …]. */
  weighted(table) {
    let total = 0;
    for (const [w] of table) total += w;
    let x = this.float() * total;
    for (const [w, v] of table) {
      if ((x -= w) < 0) return v;
    }
    return table[table.length - 1][1];
  }

  bytes(n) {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }

  /** A small size, skewed towards 0 and towards boundaries: most lengths are short, some are not. */
  size(max) {
    const r = this.float();
    if (r < 0.1) return 0;
    if (r < 0.6) return this.int(1, Math.min(16, max));
    if (r < 0.9) return this.int(1, Math.min(256, max));
    return this.int(0, max);
  }

  /** Printable token characters. */
  token(min = 1, max = 12) {
    const n = this.int(min, max);
    const A = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
    let s = '';
    for (let i = 0; i < n; i++) s += A[this.below(A.length)];
    return s;
  }

  /** A length that lies: 0, one off, huge, negative as unsigned, or random. */
  lie(real, bits) {
    const max = bits >= 32 ? 0xffffffff : 2 ** bits - 1;
    const v = this.pick([0, 1, real - 1, real + 1, real * 2, max, max >>> 1, (max >>> 1) + 1, this.int(0, max), this.int(0, Math.min(max, real + 64))]);
    return Math.max(0, Math.min(max, v)) >>> 0;
  }

  /** Cut points: `n` sorted distinct positions in (0, len). */
  cuts(len, n) {
    const s = new Set();
    for (let i = 0; i < n && len > 1; i++) s.add(this.int(1, len - 1));
    return [...s].sort((x, y) => x - y);
  }
}
