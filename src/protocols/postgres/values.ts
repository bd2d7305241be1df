/**
 * Parameter and column values as a record shows them: text format as the string sent, binary
 * format decoded for the common types (PostgreSQL's *_send functions), anything else described
 * by its size. Values longer than `limit` characters are cut and say so.
 */

/** Type OIDs from pg_type.dat. */
export const OID = {
  bool: 16, bytea: 17, name: 19, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, json: 114,
  float4: 700, float8: 701, bpchar: 1042, varchar: 1043, date: 1082, timestamp: 1114, timestamptz: 1184,
  numeric: 1700, uuid: 2950, jsonb: 3802,
} as const;

export type PgValue = string | number | boolean | null | { bytes: number } | { binary: number; oid: number };

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

function cut(s: string, limit: number): string {
  return s.length > limit ? `${s.slice(0, limit)}…[${s.length} chars]` : s;
}

export function decodeValue(v: Buffer | null, format: number, oid: number | undefined, limit = 256): PgValue {
  if (v === null) return null;
  if (format === 0) return oid === OID.bytea ? { bytes: v.length } : cut(v.toString('utf8'), limit);
  try {
    switch (oid) {
      case OID.bool: return v.length === 1 ? v[0] !== 0 : { binary: v.length, oid };
      case OID.int2: return v.readInt16BE(0);
      case OID.int4: case OID.oid: return v.readInt32BE(0);
      case OID.int8: {
        const n = v.readBigInt64BE(0);
        return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
      }
      case OID.float4: return v.readFloatBE(0);
      case OID.float8: return v.readDoubleBE(0);
      case OID.text: case OID.varchar: case OID.bpchar: case OID.name: case OID.json:
        return cut(v.toString('utf8'), limit);
      case OID.jsonb: return cut(v.subarray(1).toString('utf8'), limit); // version byte, then text
      case OID.uuid: {
        const h = v.toString('hex');
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
      }
      case OID.date: return new Date(PG_EPOCH_MS + v.readInt32BE(0) * 86_400_000).toISOString().slice(0, 10);
      case OID.timestamp: case OID.timestamptz: {
        const us = v.readBigInt64BE(0);
        const iso = new Date(PG_EPOCH_MS + Number(us / 1000n)).toISOString();
        return oid === OID.timestamp ? iso.replace('Z', '') : iso;
      }
      case OID.numeric: return numeric(v);
      case OID.bytea: return { bytes: v.length };
      default: return { binary: v.length, oid: oid ?? 0 };
    }
  } catch {
    // A binary value shorter than its type: describe it rather than guess.
    return { binary: v.length, oid: oid ?? 0 };
  }
}

/** numeric_send: ndigits, weight, sign, dscale, then base-10000 digits. */
function numeric(v: Buffer): string {
  const ndigits = v.readInt16BE(0);
  const weight = v.readInt16BE(2);
  const sign = v.readUInt16BE(4);
  const dscale = v.readInt16BE(6);
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  const digits: number[] = [];
  for (let i = 0; i < ndigits; i++) digits.push(v.readInt16BE(8 + i * 2));
  let int = '';
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digits[i] ?? 0) : String(digits[i] ?? 0).padStart(4, '0');
  if (int === '') int = '0';
  let frac = '';
  for (let i = weight + 1; i < ndigits; i++) {
    const d = String(digits[i] ?? 0).padStart(4, '0');
    frac += d;
  }
  // Digits before the first stored one when weight < -1 are zeros.
  if (weight < -1) frac = '0000'.repeat(-weight - 1) + frac;
  frac = frac.padEnd(dscale, '0').slice(0, dscale);
  return `${sign === 0x4000 ? '-' : ''}${int}${dscale > 0 ? `.${frac}` : ''}`;
}
