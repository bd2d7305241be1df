import { describe, expect, it } from 'vitest';
import {
  findReadyForQuery, findSync, MessageReader, parseBind, parseDataRow, parseFields, parseParse, parseRowDescription,
  parseStartup, STARTUP, TruncatedMessage, type Message,
} from '../../src/protocols/postgres/messages.js';
import { decodeValue, OID } from '../../src/protocols/postgres/values.js';

// ---- small byte builders (PostgreSQL "Message Formats") ----
const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, 'latin1'), i32(body.length + 4), body]);
}
function startup(params: Record<string, string>): Buffer {
  const body = Buffer.concat([i32(STARTUP.PROTOCOL_3_0), ...Object.entries(params).flatMap(([k, v]) => [cstr(k), cstr(v)]), Buffer.from([0])]);
  return Buffer.concat([i32(body.length + 4), body]);
}

function read(frontend: boolean, chunks: Buffer[], startupPhase = false) {
  const got: { type: string; len: number }[] = [];
  const r = new MessageReader(frontend, startupPhase, (m: Message) => {
    got.push({ type: m.type ? String.fromCharCode(m.type) : 'startup', len: m.body.length });
    if (m.type === 0) r.typed();
  });
  let off = 0;
  for (const ch of chunks) { r.push(ch, off); off += ch.length; }
  return { got, r };
}

describe('PostgreSQL framing', () => {
  const front = Buffer.concat([
    startup({ user: 'app', database: 'shop', application_name: 'orders' }),
    msg('P', cstr('order_by_id'), cstr('SELECT * FROM orders WHERE id = $1'), i16(1), i32(OID.int4)),
    msg('B', cstr(''), cstr('order_by_id'), i16(1), i16(1), i16(1), i32(4), i32(42), i16(0)),
    msg('E', cstr(''), i32(0)),
    msg('S'),
  ]);

  it('reads the startup message then typed messages', () => {
    expect(read(true, [front], true).got.map((m) => m.type)).toEqual(['startup', 'P', 'B', 'E', 'S']);
  });

  it('gives the same messages at every split point', () => {
    const whole = read(true, [front], true).got;
    for (let i = 1; i < front.length; i++) expect(read(true, [front.subarray(0, i), front.subarray(i)], true).got).toEqual(whole);
  });

  it('an unknown type or an impossible length stops the reader with the reason, never throws', () => {
    expect(read(false, [Buffer.from('Q\u0000\u0000\u0000\u0004', 'latin1')]).r.broken).toMatch(/unknown backend message type 0x51/);
    expect(read(true, [Buffer.concat([Buffer.from('Q'), i32(2)])]).r.broken).toMatch(/declares length 2/);
    expect(read(true, [Buffer.concat([Buffer.from('Q'), i32(0x7fffffff)])]).r.broken).toMatch(/declares length/);
    expect(read(true, [i32(3)], true).r.broken).toMatch(/startup message length 3/);
  });

  it('a MySQL handshake is not PostgreSQL: the startup framing rejects it', () => {
    // MySQL v10 greeting: 3-byte little-endian length, sequence 0, protocol 10, version string …
    const mysql = Buffer.concat([Buffer.from([0x4a, 0, 0, 0, 0x0a]), cstr('8.0.36'), Buffer.alloc(40)]);
    expect(read(true, [mysql], true).r.broken).toBeDefined();
  });

  it('finds ReadyForQuery and Sync to resynchronise on', () => {
    const be = Buffer.concat([Buffer.from('garbage-bytes'), msg('C', cstr('SELECT 1')), msg('Z', Buffer.from('I'))]);
    expect(findReadyForQuery(be)).toBe(be.length);
    expect(findReadyForQuery(Buffer.from('Z\u0000\u0000\u0000\u0005X', 'latin1'))).toBe(-1); // X is no status
    const fe = Buffer.concat([Buffer.from('xx'), msg('S'), msg('Q', cstr('select 1'))]);
    expect(findSync(fe)).toBe(7);
  });
});

describe('PostgreSQL message parsers', () => {
  it('startup parameters; a cancel request keeps the pid, never the secret key', () => {
    expect(parseStartup(startup({ user: 'app', database: 'shop' }).subarray(4)).params).toEqual({ user: 'app', database: 'shop' });
    const cancel = parseStartup(Buffer.concat([i32(STARTUP.CANCEL), i32(4242), i32(987654321)]));
    expect(cancel).toEqual({ code: STARTUP.CANCEL, params: { pid: '4242' } });
  });

  it('Parse and Bind (format codes expanded, NULLs kept)', () => {
    expect(parseParse(msg('P', cstr('s1'), cstr('SELECT $1'), i16(1), i32(23)).subarray(5))).toEqual({ name: 's1', sql: 'SELECT $1', paramTypes: [23] });
    const b = parseBind(msg('B', cstr('p'), cstr('s1'), i16(1), i16(1), i16(2), i32(4), i32(7), i32(-1), i16(0)).subarray(5));
    expect(b.formats).toEqual([1, 1]);
    expect(b.values[0]!.readInt32BE(0)).toBe(7);
    expect(b.values[1]).toBeNull();
  });

  it('every field is read inside the declared length: a lying inner count is a TruncatedMessage', () => {
    // Bind says 5 parameters but carries one.
    const lying = msg('B', cstr(''), cstr(''), i16(0), i16(5), i32(1), Buffer.from('x'), i16(0)).subarray(5);
    expect(() => parseBind(lying)).toThrow(TruncatedMessage);
    expect(() => parseDataRow(Buffer.concat([i16(1), i32(100), Buffer.from('short')]))).toThrow(TruncatedMessage);
    expect(() => parseFields(Buffer.from('Mno terminator', 'latin1'))).toThrow(TruncatedMessage);
  });

  it('RowDescription and ErrorResponse fields', () => {
    const rd = Buffer.concat([i16(1), cstr('total'), i32(0), i16(0), i32(OID.numeric), i16(-1), i32(-1), i16(0)]);
    expect(parseRowDescription(rd)).toEqual([{ name: 'total', typeOid: OID.numeric, format: 0 }]);
    const err = Buffer.concat([Buffer.from('S'), cstr('ERROR'), Buffer.from('C'), cstr('22012'), Buffer.from('M'), cstr('division by zero'), Buffer.from([0])]);
    expect(parseFields(err)).toEqual({ S: 'ERROR', C: '22012', M: 'division by zero' });
  });
});

describe('PostgreSQL values', () => {
  const b = (...xs: number[]) => Buffer.from(xs);
  it('text format is the string sent; binary decodes the common types', () => {
    expect(decodeValue(Buffer.from('42'), 0, OID.int4)).toBe('42');
    expect(decodeValue(null, 1, OID.int4)).toBeNull();
    expect(decodeValue(i16(-7), 1, OID.int2)).toBe(-7);
    expect(decodeValue(i32(42), 1, OID.int4)).toBe(42);
    const i8 = Buffer.alloc(8); i8.writeBigInt64BE(9007199254740993n);
    expect(decodeValue(i8, 1, OID.int8)).toBe('9007199254740993');
    expect(decodeValue(b(1), 1, OID.bool)).toBe(true);
    const f8 = Buffer.alloc(8); f8.writeDoubleBE(2.5);
    expect(decodeValue(f8, 1, OID.float8)).toBe(2.5);
    expect(decodeValue(Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex'), 1, OID.uuid)).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(decodeValue(i32(9132), 1, OID.date)).toBe('2025-01-01');
    const ts = Buffer.alloc(8); ts.writeBigInt64BE(789_004_800_000_000n); // 2025-01-01T00:00:00Z
    expect(decodeValue(ts, 1, OID.timestamptz)).toBe('2025-01-01T00:00:00.000Z');
    expect(decodeValue(Buffer.alloc(1000), 1, OID.bytea)).toEqual({ bytes: 1000 });
    expect(decodeValue(b(1, 2, 3), 1, 99999)).toEqual({ binary: 3, oid: 99999 });
    expect(decodeValue(b(1), 1, OID.int8)).toEqual({ binary: 1, oid: OID.int8 }); // too short: described, not guessed
  });

  it('numeric in binary: 12345.678, -0.0042, 0', () => {
    // ndigits, weight, sign, dscale, digits (base 10000)
    const num = (nd: number, w: number, sign: number, ds: number, ...d: number[]) => Buffer.concat([i16(nd), i16(w), Buffer.from([sign >> 8, sign & 0xff]), i16(ds), ...d.map(i16)]);
    expect(decodeValue(num(3, 1, 0, 3, 1, 2345, 6780), 1, OID.numeric)).toBe('12345.678');
    expect(decodeValue(num(1, -1, 0x4000, 4, 42), 1, OID.numeric)).toBe('-0.0042');
    expect(decodeValue(num(0, 0, 0, 0), 1, OID.numeric)).toBe('0');
  });

  it('long values are cut and say so', () => {
    expect(decodeValue(Buffer.from('x'.repeat(300)), 0, OID.text, 10)).toBe('xxxxxxxxxx…[300 chars]');
  });
});
