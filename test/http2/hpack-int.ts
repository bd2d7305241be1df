/** RFC 7541 §5.1 integer with an N-bit prefix; `flags` are the representation's pattern bits. */
export function int(prefixBits: number, flags: number, v: number): number[] {
  const max = 2 ** prefixBits - 1;
  if (v < max) return [flags | v];
  const out = [flags | max];
  v -= max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
