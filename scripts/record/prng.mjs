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
