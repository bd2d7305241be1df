// Deterministic pseudo-random bytes (xorshift32), so "random-looking" payloads are the same every
// run. Its own module, free of side effects: load processes import it without lib.mjs's signal handlers.
export function prngBytes(n, seed = 0x9e3779b9) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** mulberry32 from a 32-bit state: () => float in [0, 1), the same sequence for the same state. */
export function mulberry32(state) {
  let a = state >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
