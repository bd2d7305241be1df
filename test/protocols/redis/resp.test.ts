import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { probeRedis } from '../../../src/protocols/redis/probe.js';
import { MAX_DEPTH, MAX_ITEMS, MAX_LINE, type RespMessage, RespParser, splitWords } from '../../../src/protocols/redis/resp.js';
import { cmd, run } from './harness.js';

/** Parses `input` cut into the given chunk sizes (cycled); returns the messages and why it stopped, if it did. */
function parse(input: Buffer | string, client = false, keep = 64, chunk = 0): { msgs: RespMessage[]; broken?: string } {
  const b = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const msgs: RespMessage[] = [];
  const p = new RespParser(keep, client, (m) => msgs.push(m));
  const step = chunk > 0 ? chunk : b.length || 1;
  for (let i = 0; i < b.length; i += step) p.push(b.subarray(i, i + step), { time: 0, frame: 1, offset: i, peerAck: -1 });
  return p.broken === undefined ? { msgs } : { msgs, broken: p.broken };
}

/** Parses whole and cut at every byte: the same values and offsets every time. */
function everyCut(input: string, client = false, keep = 64): { msgs: RespMessage[]; broken?: string } {
  const whole = parse(input, client, keep);
  const b = Buffer.from(input, 'latin1');
  for (let k = 1; k < b.length; k++) {
    const msgs: RespMessage[] = [];
    const p = new RespParser(keep, client, (m) => msgs.push(m));
    p.push(b.subarray(0, k), { time: 0, frame: 1, offset: 0, peerAck: -1 });
    p.push(b.subarray(k), { time: 0, frame: 2, offset: k, peerAck: -1 });
    const a = msgs.map((m) => [m.value, m.off, m.endOff]);
    expect(a, `cut at ${k}`).toEqual(whole.msgs.map((m) => [m.value, m.off, m.endOff]));
    expect(p.broken, `cut at ${k}`).toBe(whole.broken);
  }
  return whole;
}

describe('RESP parser', () => {
  it('RESP2 types, nulls and offsets', () => {
    const r = everyCut('+OK\r\n-ERR no\r\n:-12\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n$1\r\na\r\n:1\r\n');
    expect(r.broken).toBeUndefined();
    expect(r.msgs.map((m) => m.value)).toEqual([
      { type: 'simple', str: 'OK' }, { type: 'error', str: 'ERR no' }, { type: 'integer', num: -12 },
      { type: 'bulk', length: 3, str: 'abc' }, { type: 'bulk', length: 0, str: '' }, { type: 'nil' }, { type: 'nil' },
      { type: 'array', length: 0, items: [] },
      { type: 'array', length: 2, items: [{ type: 'bulk', length: 1, str: 'a' }, { type: 'integer', num: 1 }] },
    ]);
    expect(r.msgs.map((m) => [m.off, m.endOff])[3]).toEqual([20, 29]);
  });

  it('RESP3 types: map, set, push, null, double, boolean, big number, blob error, verbatim, attribute', () => {
    const r = everyCut('%1\r\n+a\r\n:1\r\n~1\r\n+x\r\n>2\r\n+p\r\n+q\r\n_\r\n,-1.5e3\r\n#f\r\n(123456789012345678901234567890\r\n!5\r\nERR x\r\n=7\r\ntxt:abc\r\n|1\r\n+k\r\n+v\r\n:9\r\n');
    expect(r.broken).toBeUndefined();
    expect(r.msgs.map((m) => [m.value.type, m.value.str ?? m.value.num ?? m.value.length])).toEqual([
      ['map', 1], ['set', 1], ['push', 2], ['nil', undefined], ['double', '-1.5e3'], ['boolean', 0],
      ['bignum', '123456789012345678901234567890'], ['error', 'ERR x'], ['verbatim', 'abc'], ['integer', 9],
    ]);
  });

  it('bulk strings longer than kept are cut and marked; their bytes are skipped, not held', () => {
    const big = 'x'.repeat(10_000);
    const r = parse(`$10000\r\n${big}\r\n+OK\r\n`, false, 16, 7);
    expect(r.msgs[0]!.value).toEqual({ type: 'bulk', length: 10_000, str: 'x'.repeat(16), truncated: true });
    expect(r.msgs[1]!.value.str).toBe('OK');
  });

  it('aggregates keep MAX_ITEMS elements and count the rest', () => {
    const n = MAX_ITEMS + 5;
    const r = parse(`*${n}\r\n` + ':1\r\n'.repeat(n));
    expect(r.msgs[0]!.value.items).toHaveLength(MAX_ITEMS);
    expect(r.msgs[0]!.value).toMatchObject({ length: n, truncated: true });
  });

  it('inline commands from the client, split on blanks; an empty line is no message', () => {
    const r = everyCut('\r\nSET  k v\r\nPING\n', true);
    expect(r.msgs.map((m) => [m.inline, m.value.items!.map((i) => i.str)])).toEqual([[true, ['SET', 'k', 'v']], [true, ['PING']]]);
  });

  it('malformed input stops the parser with a reason: bad type, bad length, missing CRLF, too deep, too long', () => {
    expect(parse('?x\r\n').broken).toMatch(/unknown type byte 0x3f/);
    expect(parse('$abc\r\n').broken).toMatch(/bad length/);
    expect(parse('$-5\r\n').broken).toMatch(/bad length -5/);
    expect(parse('$2\r\nabcd\r\n').broken).toMatch(/CRLF/);
    expect(parse(':1.5\r\n').broken).toMatch(/bad integer/);
    expect(parse('*1\r\n'.repeat(MAX_DEPTH + 1)).broken).toMatch(/nested deeper/);
    expect(parse('+' + 'a'.repeat(MAX_LINE)).broken).toMatch(/longer than/);
    expect(parse('$?\r\n').broken).toMatch(/streamed/);
  });

  it('property: any bytes, cut anywhere, never throw, keep bounded values, and a whole message ends where it says', () => {
    const piece = fc.oneof(
      fc.constantFrom('+OK\r\n', '$-1\r\n', '*2\r\n', ':7\r\n', '%1\r\n', '_\r\n', '>3\r\n', '$3\r\nabc\r\n', '|1\r\n', '\r\n', '$100\r\n'),
      fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a).toString('latin1')),
    );
    fc.assert(fc.property(fc.array(piece, { maxLength: 30 }), fc.integer({ min: 1, max: 9 }), fc.boolean(), (pieces, chunk, client) => {
      const input = Buffer.from(pieces.join(''), 'latin1');
      const r = parse(input, client, 8, chunk);
      let prev = 0;
      for (const m of r.msgs) {
        expect(m.off).toBeGreaterThanOrEqual(prev);
        expect(m.endOff).toBeLessThanOrEqual(input.length);
        prev = m.endOff;
        const bounded = (v: RespMessage['value'], d: number): void => {
          expect(d).toBeLessThanOrEqual(MAX_DEPTH + 1);
          expect((v.str ?? '').length).toBeLessThanOrEqual(8 * 4);
          expect((v.items ?? []).length).toBeLessThanOrEqual(MAX_ITEMS);
          for (const it of v.items ?? []) bounded(it, d + 1);
        };
        bounded(m.value, 0);
      }
    }), { numRuns: 2000 });
  });

  it('property: the session never throws on any conversation of random bytes and commands', () => {
    const chunk = fc.oneof(fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)), fc.constantFrom(Buffer.from(cmd('GET', 'k')), Buffer.from('$-1\r\n'), Buffer.from('+QUEUED\r\n')));
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(0 as const, 1 as const), chunk), { maxLength: 20 }), fc.integer({ min: -1, max: 20 }), (steps, cut) => {
      const r = run(steps, cut);
      for (const e of r.out) expect(e.protocol).toBe('redis');
    }), { numRuns: 1000 });
  });
});

describe('Redis probe', () => {
  it('by content: a command array or inline command from the client, a reply from the server', () => {
    expect(probeRedis(0, Buffer.from(cmd('GET', 'a')))).toBe('match');
    expect(probeRedis(0, Buffer.from('PING\r\n'))).toBe('match');
    expect(probeRedis(1, Buffer.from('PING\r\n'))).toBe('reverse');
    expect(probeRedis(1, Buffer.from('+OK\r\n'))).toBe('match');
    expect(probeRedis(0, Buffer.from('-ERR unknown\r\n'))).toBe('reverse');
    expect(probeRedis(1, Buffer.from('%7\r\n$6\r\nserver'))).toBe('match');
    expect(probeRedis(0, Buffer.from('*1\r'))).toBe('more');
    expect(probeRedis(0, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n'))).toBe('no');
    // A malformed HTTP request line (zeek/http/methods.pcap) is not a Redis inline GET either.
    expect(probeRedis(0, Buffer.from('GET /HTTP/1.1\r\nHost: x\r\n'))).toBe('no');
    expect(probeRedis(0, Buffer.from('\x00\x00\x00\x08\x04\xd2\x16\x2f'))).toBe('no');
    expect(probeRedis(1, Buffer.from('220 smtp.example ESMTP\r\n'))).toBe('no');
  });
});

describe('inline command words', () => {
  it('split as the server splits them: blanks, double quotes with escapes, single quotes', () => {
    expect(splitWords('PUBLISH Foo "Hi there :)"')).toEqual(['PUBLISH', 'Foo', 'Hi there :)']);
    expect(splitWords(`SET k 'it\\'s' "a\\nb\\x41"`)).toEqual(['SET', 'k', "it's", 'a\nbA']);
    expect(splitWords('  PING\t ')).toEqual(['PING']);
  });
});
