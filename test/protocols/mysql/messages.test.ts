// Parsers and the session on built bytes: framing (16 MiB continuations), the probe, SSLRequest,
// result sets with EOF packets (no CLIENT_DEPRECATE_EOF), limits. Every conversation also runs with
// its segments split at every byte.
import { describe, expect, it } from 'vitest';
import { BASE, column, EOF, feed, greeting, lenstr, login, OK, packet, query, segments, strip, u16, u32, type Run, type Seg } from './harness.js';
import { probeMysql } from '../../../src/protocols/mysql/probe.js';
import { CAP } from '../../../src/protocols/mysql/messages.js';
import { MAX_PAYLOAD, type Packet, PacketReader } from '../../../src/protocols/mysql/wire.js';

/** The conversation whole, and cut at every byte of its longest segment: the same exchanges. */
function everySplit(segs: Seg[]): Run {
  const whole = feed(segs);
  const longest = Math.max(...segs.map((s) => s.bytes.length));
  for (let k = 1; k < longest; k++) expect(strip(feed(segs, { cut: k }))).toBe(strip(whole));
  return whole;
}

describe('probeMysql', () => {
  const g = greeting(BASE);
  it('matches a protocol-10 greeting from the server, and reverses it from the client side', () => {
    expect(probeMysql(1, g)).toBe('match');
    expect(probeMysql(0, g)).toBe('reverse');
  });
  it('asks for more while the version string is still arriving', () => {
    for (let n = 1; n < 12; n++) expect(probeMysql(1, g.subarray(0, n))).toBe('more');
  });
  it('refuses other protocols', () => {
    expect(probeMysql(1, Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toBe('no');
    expect(probeMysql(0, Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]))).toBe('no'); // PostgreSQL SSLRequest
    expect(probeMysql(1, Buffer.from('+OK\r\n'))).toBe('no');
    const bad = Buffer.from(g);
    bad[6] = 0x01; // a control character in the version
    expect(probeMysql(1, bad)).toBe('no');
  });
});

describe('PacketReader', () => {
  it('joins a payload of 2^24-1 bytes with the packet that follows it, keeping only the bound', () => {
    const got: Packet[] = [];
    const r = new PacketReader(100, (p) => got.push(p));
    const h1 = Buffer.from([0xff, 0xff, 0xff, 0]);
    const body = Buffer.alloc(MAX_PAYLOAD, 0x61);
    const tail = packet(1, Buffer.from('xyz'));
    r.push(h1, 0);
    for (let i = 0; i < body.length; i += 1 << 20) r.push(body.subarray(i, i + (1 << 20)), 4 + i);
    r.push(tail, 4 + MAX_PAYLOAD);
    r.push(packet(0, Buffer.from([0x0e])), 4 + MAX_PAYLOAD + tail.length);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ seq: 0, length: MAX_PAYLOAD + 3, offset: 0, size: MAX_PAYLOAD + 3 + 8 });
    expect(got[0]!.payload.length).toBe(100);
    expect(got[1]!.payload).toEqual(Buffer.from([0x0e]));
  });
  it('reads an empty payload', () => {
    const got: Packet[] = [];
    new PacketReader(10, (p) => got.push(p)).push(Buffer.from([0, 0, 0, 3]), 0);
    expect(got).toEqual([{ seq: 3, payload: Buffer.alloc(0), length: 0, offset: 0, size: 4 }]);
  });
});

describe('MysqlSession on built conversations', () => {
  it('an SSLRequest: the login is noted as TLS and nothing after it is read', () => {
    const ssl = packet(1, Buffer.concat([u32(BASE | CAP.SSL), u32(1 << 24), Buffer.from([45]), Buffer.alloc(23)]));
    const { out, violations } = everySplit(segments([[1, greeting(BASE | CAP.SSL)], [0, ssl], [0, Buffer.from([0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5])],
      [1, Buffer.from([0x16, 3, 3, 0, 2, 9, 9])]]));
    expect(violations).toEqual([]);
    expect(out).toHaveLength(1);
    expect(out[0]!.incomplete).toBe('encrypted');
    expect(out[0]!.mysql.request).toMatchObject({ command: 'COM_CONNECT', ssl: true });
    expect(out[0]!.mysql.session.ssl).toBe(true);
  });

  it('result sets with EOF packets (no CLIENT_DEPRECATE_EOF), a NULL, and an error inside the rows', () => {
    const caps = BASE;
    const rows = Buffer.concat([packet(1, Buffer.from([2])), column(2, 'id'), column(3, 'name'), EOF(4),
      packet(5, Buffer.concat([lenstr('1'), lenstr('ann')])), packet(6, Buffer.concat([lenstr('2'), Buffer.from([0xfb])])), EOF(7)]);
    const failing = Buffer.concat([packet(1, Buffer.from([1])), column(2, 'x'), EOF(3), packet(4, lenstr('1')),
      packet(5, Buffer.concat([Buffer.from([0xff]), u16(1317), Buffer.from('#70100Query execution was interrupted')]))]);
    const { out, violations } = everySplit(segments([[1, greeting(caps)], [0, login(caps, 'bob', 'shop')], [1, OK(2)],
      [0, query('SELECT id, name FROM t')], [1, rows], [0, query('SELECT x FROM slow')], [1, failing], [0, query('DO 1')], [1, OK(1)]]));
    expect(violations).toEqual([]);
    expect(out.map((x) => x.mysql.request?.command)).toEqual(['COM_CONNECT', 'COM_QUERY', 'COM_QUERY', 'COM_QUERY']);
    expect(out[0]!.mysql.request).toMatchObject({ user: 'bob', database: 'shop' });
    expect(out[1]!.mysql.response).toMatchObject({ columns: ['id', 'name'], rows: 2, preview: [['1', 'ann'], ['2', null]] });
    expect(out[2]!.mysql.response).toMatchObject({ columns: ['x'], rows: 1, error: { code: 1317, sqlstate: '70100' } });
    expect(out[3]!.mysql.response?.affectedRows).toBe(0);
    expect(out.every((x) => !x.incomplete)).toBe(true);
  });

  it('a command left unanswered at the end, and a server packet nobody asked for', () => {
    const { out, violations } = everySplit(segments([[1, greeting(BASE)], [0, login(BASE, 'bob')], [1, OK(2)],
      [1, OK(1)], [0, query('SELECT sleep(100)')]]));
    expect(violations).toEqual(['mysql.unsolicited: server packet with no command awaiting an answer']);
    expect(out[1]!.incomplete).toBe('no-response');
  });

  it('COM_CHANGE_USER: an auth switch before its OK, and the session user changes', () => {
    const change = packet(0, Buffer.concat([Buffer.from([0x11]), Buffer.from('carol\0'), Buffer.from([20]), Buffer.alloc(20, 0x33), Buffer.from('shop\0')]));
    const sw = packet(1, Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_native_password\0'), Buffer.alloc(20, 0x44), Buffer.from([0])]));
    const { out, violations } = everySplit(segments([[1, greeting(BASE)], [0, login(BASE, 'bob')], [1, OK(2)], [0, change], [1, sw],
      [0, packet(2, Buffer.alloc(20, 0x55))], [1, OK(3)], [0, query('SELECT 1')], [1, OK(1)]]));
    expect(violations).toEqual([]);
    expect(out.map((x) => x.mysql.request?.command)).toEqual(['COM_CONNECT', 'COM_CHANGE_USER', 'COM_QUERY']);
    expect(out[1]!.mysql.request?.user).toBe('carol');
    expect(out[1]!.incomplete).toBeUndefined();
    expect(out[2]!.mysql.session.user).toBe('carol');
    expect(JSON.stringify(out)).not.toMatch(/mysql_native_password/);
  });

  it('MariaDB pipelining: COM_STMT_EXECUTE of the last prepared statement (id 0xffffffff) sent before the prepare is answered', () => {
    const caps = BASE | CAP.DEPRECATE_EOF;
    const prepare = packet(0, Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT ? + 1 AS n')]));
    // statement id, flags, iteration count, NULL bitmap, new-params-bound, type LONGLONG, value 41
    const i64 = Buffer.alloc(8);
    i64.writeBigInt64LE(41n);
    const exec = packet(0, Buffer.concat([Buffer.from([0x17]), u32(0xffffffff), Buffer.from([0]), u32(1), Buffer.from([0, 1, 8, 0]), i64]));
    const prepOk = Buffer.concat([packet(1, Buffer.concat([Buffer.from([0]), u32(9), u16(1), u16(1), Buffer.from([0]), u16(0)])),
      column(2, '?'), column(3, 'n')]);
    const row = Buffer.alloc(10); // 0x00, NULL bitmap (1 byte for 1 column + 2 bits), int<8>
    row.writeBigInt64LE(42n, 2);
    const answer = Buffer.concat([packet(1, Buffer.from([1])), packet(2, Buffer.concat([lenstr('def'), lenstr(''), lenstr(''), lenstr(''),
      lenstr('n'), lenstr(''), Buffer.from([0x0c]), u16(63), u32(21), Buffer.from([8]), u16(0), Buffer.from([0, 0, 0])])),
    packet(3, row), packet(4, Buffer.concat([Buffer.from([0xfe, 0, 0]), u16(2), u16(0)]))]);
    const { out, violations } = everySplit(segments([[1, greeting(caps)], [0, login(caps, 'bob')], [1, OK(2)],
      [0, Buffer.concat([prepare, exec])], [1, prepOk], [1, answer]]));
    expect(violations).toEqual([]);
    expect(out[2]!.mysql.request).toMatchObject({ command: 'COM_STMT_EXECUTE', statementId: 9, query: 'SELECT ? + 1 AS n', params: [41] });
    expect(out[2]!.mysql.response).toMatchObject({ columns: ['n'], rows: 1, preview: [[42]] });
    expect(out[2]!.incomplete).toBeUndefined();
  });

  it('keeps the preview to previewRows rows and cuts long values', () => {
    const caps = BASE | CAP.DEPRECATE_EOF;
    const many = [packet(1, Buffer.from([1])), column(2, 'v')];
    // 50 rows of one 1000-character value (int<lenenc> 0xfc + 2 bytes).
    for (let i = 0; i < 50; i++) many.push(packet(3 + i, Buffer.concat([Buffer.from([0xfc]), u16(1000), Buffer.alloc(1000, 0x78)])));
    many.push(packet(60, Buffer.concat([Buffer.from([0xfe, 0, 0]), u16(2), u16(0)])));
    const { out } = feed(segments([[1, greeting(caps)], [0, login(caps, 'bob')], [1, OK(2)], [0, query('SELECT v FROM big')], [1, Buffer.concat(many)]]),
      { previewRows: 3 });
    const r = out[1]!.mysql.response!;
    expect(r.rows).toBe(50);
    expect(r.preview).toHaveLength(3);
    expect(String(r.preview![0]![0]).length).toBeLessThan(300);
  });
});
