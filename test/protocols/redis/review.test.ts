import { describe, expect, it } from 'vitest';
import { FlowBuilder } from '../../../src/flows/build.js';
import { redis as redisModule } from '../../../src/flows/protocols/redis.js';
import type { RedisFlow } from '../../../src/flows/record.js';
import { Redactor } from '../../../src/flows/redact.js';
import type { ConnectionInfo } from '../../../src/stream/index.js';
import { cmd, everySplit, type Step } from './harness.js';

/*
 * Secrets at the right positions, CONFIG GET and hash-field replies redacted, HELLO's and
 * CLIENT SETINFO's errors judged by what they say, RESP3 arrays in subscribed mode, and a
 * WATCH-aborted EXEC: each conversation is cut at every byte (harness.ts), then built into
 * records with a redactor as the CLI does.
 */

const CONN = {
  id: 'c1', client: { ip: '127.0.0.1', port: 40000 }, server: { ip: '127.0.0.1', port: 6379 }, family: 4,
  startTime: 0, firstFrame: 1, handshakeSeen: true, midStream: false,
} as ConnectionInfo;
const red = new Redactor({ key: Buffer.from('test-key') });
const TOKEN = /^\[redacted:[0-9a-f]{12}\]$/;

function records(steps: Step[]): RedisFlow[] {
  const r = everySplit(steps);
  expect(r.violations).toEqual([]);
  const b = new FlowBuilder({ bodyLimit: 1024, frames: false, redactor: red });
  return r.out.map((e) => b.build(e, CONN) as RedisFlow);
}

describe('Redis secrets by command', () => {
  it('a secret-looking key: the stored value is redacted at its position, SETEX/PSETEX TTLs stay readable', () => {
    const r = everySplit([
      [0, cmd('SETEX', 'api_token', '60', 'abc')], [1, '+OK\r\n'],
      [0, cmd('PSETEX', 'session_id:9', '1500', 'xyz')], [1, '+OK\r\n'],
      [0, cmd('SET', 'api_token', 'abc', 'EX', '60')], [1, '+OK\r\n'],
      [0, cmd('SETNX', 'password:1', 'p')], [1, ':1\r\n'],
      [0, cmd('GETSET', 'password:1', 'q')], [1, '$1\r\np\r\n'],
      [0, cmd('MSET', 'a', '1', 'api_key', 'k1', 'b', '2')], [1, '+OK\r\n'],
      [0, cmd('HSET', 'user:1', 'name', 'al', 'password', 'hunter2')], [1, ':2\r\n'],
      [0, cmd('HMSET', 'user:1', 'token', 't', 'x', 'y')], [1, '+OK\r\n'],
      [0, cmd('HSET', 'api_tokens', 'svc', 'abc')], [1, ':1\r\n'],
      [0, cmd('EXPIRE', 'api_token', '60')], [1, ':1\r\n'],
      [0, cmd('SET', 'k', 'token', 'EX', '60')], [1, '+OK\r\n'],
    ]);
    expect(r.out.map((e) => e.redis.request!.secrets)).toEqual([
      [2], [2], [1], [1], [1], [3], [4], [2], [2], undefined, undefined,
    ]);
  });

  it('records: SETEX api_token 60 abc keeps 60 and tokenises abc', () => {
    const [setex] = records([[0, cmd('SETEX', 'api_token', '60', 'abc')], [1, '+OK\r\n']]);
    expect(setex!.request!.args[0]).toBe('api_token');
    expect(setex!.request!.args[1]).toBe('60');
    expect(setex!.request!.args[2]).toMatch(TOKEN);
    expect(JSON.stringify(setex)).not.toContain('"abc"');
  });

  it('CONFIG SET and CONFIG GET of requirepass/masterauth: the value and the reply values are tokens (RESP2 array and RESP3 map)', () => {
    const rs = records([
      [0, cmd('CONFIG', 'SET', 'requirepass', 'hunter2')], [1, '+OK\r\n'],
      [0, cmd('CONFIG', 'GET', 'requirepass')], [1, '*2\r\n$11\r\nrequirepass\r\n$7\r\nhunter2\r\n'],
      [0, cmd('CONFIG', 'GET', '*auth*')], [1, '*6\r\n$10\r\nmasterauth\r\n$6\r\nmaster\r\n$10\r\nmasteruser\r\n$5\r\nadmin\r\n$16\r\ntls-auth-clients\r\n$3\r\nyes\r\n'],
      [0, cmd('HELLO', '3')], [1, '%1\r\n$5\r\nproto\r\n:3\r\n'],
      [0, cmd('CONFIG', 'GET', 'requirepass', 'maxmemory')], [1, '%2\r\n$11\r\nrequirepass\r\n$7\r\nhunter2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n'],
    ]);
    expect(rs[0]!.request!.args[2]).toMatch(TOKEN);
    const text = JSON.stringify(rs);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('"master"');
    expect(rs[1]!.response!.value).toMatch(/^\["requirepass", "\[redacted:[0-9a-f]{12}\]"\]$/);
    // A user name is not a secret; neither is tls-auth-clients' yes, nor maxmemory's value.
    expect(rs[2]!.response!.value).toMatch(/^\["masterauth", "\[redacted:[0-9a-f]{12}\]", "masteruser", "admin", "tls-auth-clients", "yes"\]$/);
    expect(rs[4]!.response!.value).toContain('"maxmemory", "0"');
  });

  it('HGET and HMGET of a secret-looking field: the reply value is a token, other fields stay in clear', () => {
    const rs = records([
      [0, cmd('HGET', 'user:1', 'password')], [1, '$7\r\nhunter2\r\n'],
      [0, cmd('HGET', 'user:1', 'name')], [1, '$2\r\nal\r\n'],
      [0, cmd('HMGET', 'user:1', 'name', 'password', 'api_key')], [1, '*3\r\n$2\r\nal\r\n$7\r\nhunter2\r\n$-1\r\n'],
      [0, cmd('HGETALL', 'user:1')], [1, '*4\r\n$4\r\nname\r\n$2\r\nal\r\n$8\r\npassword\r\n$7\r\nhunter2\r\n'],
    ]);
    expect(rs[0]!.response!.value).toMatch(TOKEN);
    expect(rs[1]!.response!.value).toBe('al');
    expect(rs[2]!.response!.value).toMatch(/^\["al", "\[redacted:[0-9a-f]{12}\]", "\(nil\)"\]$/);
    expect(JSON.stringify(rs)).not.toContain('hunter2');
  });

  it('HMGET queued in MULTI: its EXEC element is redacted too', () => {
    const rs = records([
      [0, cmd('MULTI')], [1, '+OK\r\n'],
      [0, cmd('HMGET', 'user:1', 'password')], [1, '+QUEUED\r\n'],
      [0, cmd('EXEC')], [1, '*1\r\n*1\r\n$7\r\nhunter2\r\n'],
    ]);
    expect(rs[1]!.request!.command).toBe('HMGET');
    expect(rs[1]!.response!.value).toMatch(/redacted/);
    expect(JSON.stringify(rs[1])).not.toContain('hunter2');
  });
});

describe('Redis client-library probes', () => {
  it('HELLO: NOPROTO and unknown command are expected; WRONGPASS and NOAUTH are failures and problems', () => {
    const rs = records([
      [0, cmd('HELLO', '3')], [1, '-NOPROTO unsupported protocol version\r\n'],
      [0, cmd('HELLO', '3')], [1, "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n"],
      [0, cmd('HELLO', '3', 'AUTH', 'u', 'p')], [1, '-WRONGPASS invalid username-password pair or user is disabled.\r\n'],
      [0, cmd('HELLO', '3')], [1, '-NOAUTH HELLO must be called with the client already authenticated\r\n'],
    ]);
    expect(rs.map((r) => redisModule.failed(r))).toEqual([false, false, true, true]);
    expect(rs.map((r) => redisModule.problem(r, 'db:6379')?.key)).toEqual([
      undefined, undefined, 'redis db:6379 HELLO WRONGPASS', 'redis db:6379 HELLO NOAUTH',
    ]);
    expect(JSON.stringify(rs[2])).not.toContain('"p"');
  });

  it('CLIENT SETINFO: only "unknown subcommand" is expected', () => {
    const rs = records([
      [0, cmd('CLIENT', 'SETINFO', 'LIB-NAME', 'x')], [1, "-ERR unknown subcommand 'SETINFO'. Try CLIENT HELP.\r\n"],
      [0, cmd('CLIENT', 'SETINFO', 'LIB-NAME', 'x')], [1, '-NOAUTH Authentication required.\r\n'],
    ]);
    expect(rs.map((r) => redisModule.failed(r))).toEqual([false, true]);
    expect(redisModule.problem(rs[1]!, 'db:6379')?.key).toBe('redis db:6379 CLIENT NOAUTH');
  });
});

describe('Redis session state', () => {
  it('RESP3 subscribed: an array reply is a command\'s reply, not a pub/sub message', () => {
    const r = everySplit([
      [0, cmd('HELLO', '3')], [1, '%1\r\n$5\r\nproto\r\n:3\r\n'],
      [0, cmd('SUBSCRIBE', 'ch')], [1, '>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n'],
      [0, cmd('LRANGE', 'l', '0', '-1')], [1, '*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n'],
      [1, '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.response?.type, e.redis.response?.value ?? e.redis.response?.message, e.incomplete])).toEqual([
      ['HELLO', 'map', '["proto", "3"]', undefined],
      ['SUBSCRIBE', 'push', '["subscribe", "ch", "1"]', undefined],
      ['LRANGE', 'array', '["message", "a", "b"]', undefined],
      [undefined, 'push', 'hi', undefined],
    ]);
  });

  it('RESP2 subscribed: the same array is a message (pushes are plain arrays there)', () => {
    const r = everySplit([
      [0, cmd('SUBSCRIBE', 'ch')], [1, '*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n'],
      [1, '*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n'],
    ]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.response?.channel])).toEqual([['SUBSCRIBE', undefined], [undefined, 'ch']]);
  });

  it('a WATCH-aborted EXEC (nil) and an EXECABORT: the queued commands are incomplete "exec-aborted"', () => {
    const r = everySplit([
      [0, cmd('WATCH', 'k')], [1, '+OK\r\n'],
      [0, cmd('MULTI')], [1, '+OK\r\n'],
      [0, cmd('SET', 'k', '1')], [1, '+QUEUED\r\n'],
      [0, cmd('INCR', 'n')], [1, '+QUEUED\r\n'],
      [0, cmd('EXEC')], [1, '*-1\r\n'],
      [0, cmd('MULTI')], [1, '+OK\r\n'],
      [0, cmd('SET', 'k', '2')], [1, '+QUEUED\r\n'],
      [0, cmd('NOSUCH')], [1, "-ERR unknown command 'NOSUCH'\r\n"],
      [0, cmd('EXEC')], [1, '-EXECABORT Transaction discarded because of previous errors.\r\n'],
      [0, cmd('MULTI')], [1, '+OK\r\n'],
      [0, cmd('SET', 'k', '3')], [1, '+QUEUED\r\n'],
      [0, cmd('EXEC')], [1, '*1\r\n+OK\r\n'],
    ]);
    expect(r.violations).toEqual([]);
    expect(r.out.map((e) => [e.redis.request?.command, e.redis.transaction, e.redis.response?.type, e.incomplete])).toEqual([
      ['WATCH', undefined, 'simple', undefined],
      ['MULTI', 1, 'simple', undefined],
      ['SET', 1, 'simple', 'exec-aborted'], ['INCR', 1, 'simple', 'exec-aborted'],
      ['EXEC', 1, 'nil', undefined],
      ['MULTI', 2, 'simple', undefined],
      ['NOSUCH', 2, 'error', undefined],
      ['SET', 2, 'simple', 'exec-aborted'],
      ['EXEC', 2, 'error', undefined],
      ['MULTI', 3, 'simple', undefined],
      ['SET', 3, 'simple', undefined], ['EXEC', 3, 'array', undefined],
    ]);
  });
});
