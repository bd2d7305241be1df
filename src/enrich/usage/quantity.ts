/**
 * Kubernetes resource quantities ("250m", "12345n", "128Mi", "1Gi", "1e3") as numbers. The grammar
 * is apimachinery's resource.Quantity (k8s.io/apimachinery/pkg/api/resource/quantity.go):
 *
 *   <quantity>  ::= <signedNumber><suffix>
 *   <number>    ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
 *   <suffix>    ::= <binarySI> | <decimalExponent> | <decimalSI>
 *   <binarySI>  ::= Ki | Mi | Gi | Ti | Pi | Ei              (powers of 1024)
 *   <decimalSI> ::= n | u | m | "" | k | M | G | T | P | E  (powers of 1000)
 *   <decimalExponent> ::= e<signedNumber> | E<signedNumber>
 *
 * metrics-server writes CPU in nanocores ("12345n") and memory in Ki ("4920Ki"), but any form is
 * valid, so all are read. "1E" is one exa; "1E3" is a thousand (the exponent wins when digits follow).
 */

const SUFFIX: Readonly<Record<string, number>> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;

/** Longest quantity text read; anything longer is not a quantity a server meant. */
const MAX_QUANTITY = 64;

/**
 * A quantity in its base unit (cores for CPU, bytes for memory); undefined when `q` is not a
 * quantity, or is negative or not finite (no usage is). Callers count undefined as a skip.
 */
export function parseQuantity(q: unknown): number | undefined {
  if (typeof q === 'number') return Number.isFinite(q) && q >= 0 ? q : undefined;
  if (typeof q !== 'string' || q.length === 0 || q.length > MAX_QUANTITY) return undefined;
  const m = QUANTITY.exec(q);
  if (!m) return undefined;
  const n = Number(m[1]);
  const v = m[3] !== undefined ? n * 10 ** Number(m[3]) : n * SUFFIX[m[2] ?? '']!;
  return Number.isFinite(v) && v >= 0 ? v : undefined;
}

/** CPU in millicores ("250m" → 250, "12345n" → 0.012345, "2" → 2000). */
export function millicores(q: unknown): number | undefined {
  const v = parseQuantity(q);
  return v === undefined ? undefined : v * 1000;
}

/** Memory in bytes ("128Mi" → 134217728, "1G" → 1e9); fractions of a byte round up, as Kubernetes does. */
export function bytes(q: unknown): number | undefined {
  const v = parseQuantity(q);
  return v === undefined ? undefined : Math.ceil(v - 1e-9);
}
