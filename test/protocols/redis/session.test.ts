import { describe, expect, it } from 'vitest';
import { cmd, everySplit, run } from './harness.js';

/* The Redis session on hand-built conversations, each also cut at every byte (harness.ts). */

describe('Redis session', () => {
  it('GET miss, SET, GET hit: commands, keys and typed replies (nil is a miss)', () => {
    const r = everySplit([
      [0, cmd('GET', 'user:1')], [1, '$-1\r\n'],
      [0, cmd('SET', 'user:1', 'alice')], [1, '+OK\r\n'],
      [0, cmd('GET', 'user:1')], [1, '$5\r\nalice\r\n'],
      [0, cmd('INCR', 'n')], [1, ':7\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.request?.key, e.redis.response?.type, e.redis.response?.value])).toEqual([
      ['GET', 'user:1', 'nil', undefined], ['SET', 'user:1', 'simple', 'OK'], ['GET', 'user:1', 'bulk', 'alice'], ['INCR', 'n', 'integer', '7'],
    ]);
    expect(r.out[1]!.redis.request!.args).toEqual(['user:1', 'alice']);
    expect(r.out.every((e) => e.incomplete === undefined)).toBe(true);
    expect(r.out[2]!.redis.response!.size).toBe(11);
  });

  it('a pipeline: every command its own record, replies in order', () => {
    const r = everySplit([
      [0, cmd('SET', 'a', '1') + cmd('GET', 'a') + cmd('GET', 'zz') + cmd('LRANGE', 'l', '0', '-1')],
      [1, '+OK\r\n$1\r\n1\r\n$-1\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.response?.type, e.redis.response?.value])).toEqual([
      ['SET', 'simple', 'OK'], ['GET', 'bulk', '1'], ['GET', 'nil', undefined], ['LRANGE', 'array', '["x", "y"]'],
    ]);
  });

  it('errors carry their message; an inline command is read', () => {
    const r = everySplit([
      [0, cmd('LPUSH', 'user:1', 'x')], [1, '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n'],
      [0, 'PING\r\n'], [1, '+PONG\r\n'],
      [0, cmd('NOSUCH')], [1, "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out[0]!.redis.response).toMatchObject({ type: 'error', error: 'WRONGTYPE Operation against a key holding the wrong kind of value' });
    expect(r.out[1]!.redis.request).toMatchObject({ command: 'PING', inline: true });
    expect(r.out[2]!.redis.response!.error).toMatch(/^ERR unknown command/);
  });

  it('MULTI/EXEC: each queued command its own record with its EXEC result, tied by a transaction number', () => {
    const r = everySplit([
      [0, cmd('MULTI')], [1, '+OK\r\n'],
      [0, cmd('INCR', 'c')], [1, '+QUEUED\r\n'],
      [0, cmd('GET', 'c')], [1, '+QUEUED\r\n'],
      [0, cmd('EXEC')], [1, '*2\r\n:1\r\n$1\r\n1\r\n'],
      [0, cmd('MULTI')], [1, '+OK\r\n'],
      [0, cmd('SET', 'k', 'v')], [1, '+QUEUED\r\n'],
      [0, cmd('DISCARD')], [1, '+OK\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.transaction, e.redis.queued, e.redis.response?.type, e.redis.response?.value])).toEqual([
      ['MULTI', 1, undefined, 'simple', 'OK'],
      ['INCR', 1, true, 'integer', '1'], ['GET', 1, true, 'bulk', '1'], ['EXEC', 1, undefined, 'array', '["1", "1"]'],
      ['MULTI', 2, undefined, 'simple', 'OK'],
      ['SET', 2, true, 'simple', 'QUEUED'], ['DISCARD', 2, undefined, 'simple', 'OK'],
    ]);
  });

  it('pub/sub (RESP2): one record for SUBSCRIBE, confirmations absorbed, messages pushed alone', () => {
    const r = everySplit([
      [0, cmd('SUBSCRIBE', 'news', 'sport')],
      [1, '*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n'],
      [1, '*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n'],
      [0, cmd('UNSUBSCRIBE')],
      [1, '*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$5\r\nsport\r\n:0\r\n'],
      [0, cmd('GET', 'a')], [1, '$-1\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.response?.type, e.redis.response?.channel, e.redis.response?.message])).toEqual([
      ['SUBSCRIBE', 'array', undefined, undefined],
      [undefined, 'push', 'news', 'hello'],
      ['UNSUBSCRIBE', 'array', undefined, undefined],
      ['GET', 'nil', undefined, undefined],
    ]);
    expect(r.out[1]!.incomplete).toBeUndefined();
  });

  it('HELLO 3 switches to RESP3: maps, pushes, nulls, doubles, booleans, attributes', () => {
    const r = everySplit([
      [0, cmd('GET', 'a')], [1, '$-1\r\n'],
      [0, cmd('HELLO', '3')], [1, '%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n'],
      [0, cmd('GET', 'a')], [1, '_\r\n'],
      [0, cmd('SUBSCRIBE', 'ch')], [1, '>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n'],
      [1, '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n'],
      [0, cmd('PSUBSCRIBE', 'o*')], [1, '>3\r\n$10\r\npsubscribe\r\n$2\r\no*\r\n:2\r\n'],
      [1, '>4\r\n$8\r\npmessage\r\n$2\r\no*\r\n$2\r\nok\r\n$3\r\nyes\r\n'],
      [0, cmd('ZSCORE', 'z', 'm')], [1, ',3.5\r\n'],
      [0, cmd('SISMEMBER', 's', 'm')], [1, '|1\r\n+ttl\r\n:3\r\n#t\r\n'],
      [0, cmd('LOLWUT')], [1, '=15\r\ntxt:Some string\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.resp, e.redis.request?.command, e.redis.response?.type, e.redis.response?.value ?? e.redis.response?.message])).toEqual([
      [2, 'GET', 'nil', undefined],
      [3, 'HELLO', 'map', '["server", "redis", "proto", "3"]'],
      [3, 'GET', 'nil', undefined],
      [3, 'SUBSCRIBE', 'push', '["subscribe", "ch", "1"]'],
      [3, undefined, 'push', 'hi'],
      [3, 'PSUBSCRIBE', 'push', '["psubscribe", "o*", "2"]'],
      [3, undefined, 'push', 'yes'],
      [3, 'ZSCORE', 'double', '3.5'],
      [3, 'SISMEMBER', 'boolean', '1'],
      [3, 'LOLWUT', 'verbatim', 'Some string'],
    ]);
    expect(r.out[6]!.redis.response).toMatchObject({ pattern: 'o*', channel: 'ok' });
  });

  it('AUTH and secret-looking arguments are marked secret (the record module redacts them)', () => {
    const r = everySplit([
      [0, cmd('AUTH', 'default', 's3cret')], [1, '+OK\r\n'],
      [0, cmd('HSET', 'user:1', 'password', 'hunter2', 'name', 'al')], [1, ':2\r\n'],
      [0, cmd('HELLO', '3', 'AUTH', 'u', 'pw')], [1, '-WRONGPASS invalid username-password pair\r\n'],
    ]);
    expect(r.out.map((e) => e.redis.request!.secrets)).toEqual([[0, 1], [2], [2, 3]]);
    expect(r.out[2]!.redis.resp).toBe(2); // HELLO refused: still RESP2
  });

  it('a command with no reply by the end is reported as such', () => {
    const r = run([[0, cmd('BLPOP', 'q', '0')]]);
    expect(r.out).toHaveLength(1);
    expect(r.out[0]).toMatchObject({ incomplete: 'no-response', redis: { request: { command: 'BLPOP', key: 'q' } } });
  });

  it('malformed input is a violation, never a throw; the direction resumes at a message start', () => {
    const r = run([
      [0, cmd('GET', 'a')], [1, '?garbage\r\n'],
      [0, cmd('GET', 'b')], [1, '$1\r\nb\r\n'],
    ]);
    expect(r.violations[0]).toMatch(/^redis\.malformed: unknown type byte 0x3f/);
    const got = r.out.find((e) => e.redis.request?.key === 'b');
    expect(got?.redis.response?.value).toBe('b');
    const a = r.out.find((e) => e.redis.request?.key === 'a');
    expect(a?.incomplete).toBeDefined();
  });

  it('a reply lost in a capture gap: its command says so, the replies after it still pair (by acknowledgements)', () => {
    const r = everySplit([
      [0, cmd('GET', 'a')], [1, '$1\r\na\r\n'],
      [0, cmd('GET', 'b')], [1, { gap: 7 }],
      [0, cmd('GET', 'c')], [1, '$1\r\nc\r\n'],
    ]);
    expect(r.out.map((e) => [e.redis.request?.key, e.redis.response?.value, e.incomplete])).toEqual([
      ['a', 'a', undefined], ['b', undefined, 'response-lost-in-gap'], ['c', 'c', undefined],
    ]);
  });

  it('a command lost in a capture gap: its reply is not given to the next command', () => {
    const r = run([
      [0, cmd('GET', 'a')], [1, '$1\r\na\r\n'],
      [0, { gap: 20 }], [1, '$1\r\nb\r\n'],
      [0, cmd('GET', 'c')], [1, '$1\r\nc\r\n'],
    ]);
    const c = r.out.find((e) => e.redis.request?.key === 'c')!;
    expect(c.redis.response?.value).toBe('c');
    expect(r.out.some((e) => e.redis.request?.key !== undefined && e.redis.request.key !== e.redis.response?.value && e.redis.response !== undefined)).toBe(false);
  });
});
