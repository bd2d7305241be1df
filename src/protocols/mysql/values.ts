import { Cursor } from './wire.js';

/**
 * Parameter and column values as a record shows them. Text-protocol rows are strings, as sent;
 * binary-protocol values ("Binary Protocol Value", protocol_binary_resultset) are decoded by their
 * MYSQL_TYPE: integers and floats as numbers (64-bit integers past 2^53 as decimal strings), dates
 * and times as ISO-like strings, strings cut at `limit` characters, binary strings (charset 63)
 * described by their size.
 */
export type MysqlValue = string | number | null | { bytes: number };

/** enum_field_types (include/field_types.h). */
export const TYPE = {
  DECIMAL: 0, TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, NULL: 6, TIMESTAMP: 7, LONGLONG: 8, INT24: 9,
  DATE: 10, TIME: 11, DATETIME: 12, YEAR: 13, NEWDATE: 14, VARCHAR: 15, BIT: 16, JSON: 245, NEWDECIMAL: 246,
  ENUM: 247, SET: 248, TINY_BLOB: 249, MEDIUM_BLOB: 250, LONG_BLOB: 251, BLOB: 252, VAR_STRING: 253, STRING: 254,
  GEOMETRY: 255,
} as const;

/** The "binary" collation: such a column holds bytes, not text. */
export const BINARY_CHARSET = 63;

export function cut(s: string, limit: number): string {
  return s.length > limit ? `${s.slice(0, limit)}…[${s.length} chars]` : s;
}

export function textValue(v: Buffer | null, binary: boolean, limit: number): MysqlValue {
  if (v === null) return null;
  return binary ? { bytes: v.length } : cut(v.toString('utf8'), limit);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function int64(c: Cursor, unsigned: boolean): number | string {
  c.need(8);
  const v = unsigned ? c.b.readBigUInt64LE(c.p) : c.b.readBigInt64LE(c.p);
  c.p += 8;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v.toString();
}

function date(c: Cursor): string {
  const len = c.u8();
  if (len === 0) return '0000-00-00 00:00:00';
  c.need(len);
  const y = c.u16(), mo = c.u8(), d = c.u8();
  let s = `${pad(y, 4)}-${pad(mo)}-${pad(d)}`;
  if (len >= 7) s += ` ${pad(c.u8())}:${pad(c.u8())}:${pad(c.u8())}`;
  if (len >= 11) s += `.${pad(c.u32(), 6)}`;
  return s;
}

function time(c: Cursor): string {
  const len = c.u8();
  if (len === 0) return '00:00:00';
  c.need(len);
  const neg = c.u8() === 1;
  const days = c.u32();
  const h = c.u8() + days * 24, m = c.u8(), s = c.u8();
  let t = `${neg ? '-' : ''}${pad(h)}:${pad(m)}:${pad(s)}`;
  if (len >= 12) t += `.${pad(c.u32(), 6)}`;
  return t;
}

/**
 * One binary-protocol value of MYSQL_TYPE `type` at the cursor (advanced past it). Throws Short
 * when the bytes end early; the caller's parse() turns that into "could not decode".
 */
export function binaryValue(c: Cursor, type: number, unsigned: boolean, binary: boolean, limit: number): MysqlValue {
  switch (type) {
    case TYPE.TINY: { const v = c.u8(); return unsigned || v < 0x80 ? v : v - 0x100; }
    case TYPE.SHORT: case TYPE.YEAR: { const v = c.u16(); return unsigned || v < 0x8000 ? v : v - 0x10000; }
    case TYPE.LONG: case TYPE.INT24: { const v = c.u32(); return unsigned || v < 0x8000_0000 ? v : v - 0x1_0000_0000; }
    case TYPE.LONGLONG: return int64(c, unsigned);
    case TYPE.FLOAT: { c.need(4); const v = c.b.readFloatLE(c.p); c.p += 4; return Number.isFinite(v) ? v : String(v); }
    case TYPE.DOUBLE: { c.need(8); const v = c.b.readDoubleLE(c.p); c.p += 8; return Number.isFinite(v) ? v : String(v); }
    case TYPE.NULL: return null;
    case TYPE.DATE: case TYPE.NEWDATE: case TYPE.DATETIME: case TYPE.TIMESTAMP: return date(c);
    case TYPE.TIME: return time(c);
    default: {
      // DECIMAL, strings, BLOBs, ENUM, SET, BIT, JSON, GEOMETRY: string<lenenc>.
      // The binary collation marks bytes only on string and BLOB types (DECIMAL's is 63 too, yet it is text).
      const v = c.lenstr();
      const stringy = type === TYPE.VARCHAR || (type >= TYPE.TINY_BLOB && type <= TYPE.STRING);
      return textValue(v, (binary && stringy) || type === TYPE.GEOMETRY || type === TYPE.BIT, limit);
    }
  }
}
