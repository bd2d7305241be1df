import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisGlob } from '../../src/verify/spec/glob.js';

/**
 * `redis.key` and `cache.key` promise Redis's own glob: the oracle is a real redis-server, asked
 * KEYS for random well-formed patterns over a set of keys made of the characters globs treat
 * specially. Skipped, saying why, where redis-server is not installed.
 */

const why = spawnSync('redis-server', ['--version']).error ? 'redis-server is not installed' : '';
if (why) console.log(`test/verify/spec-glob.test.ts (the redis-server oracle) skipped: ${why}`);

/** One character a key may hold: letters, a digit, and what globs treat specially. */
const keyChar = fc.constantFrom('a', 'b', '1', ':', '-', '^', ']', '[', '*', '?', '\\');
// No empty key: Redis's matcher (stringmatchlen) matches "" with no pattern, not even `**`, while
// KEYS * returns it by a shortcut; tapwire's `*` matches "" (an empty key is no case worth a rule).
const KEYS = [...new Set(fc.sample(fc.string({ unit: keyChar, minLength: 1, maxLength: 5 }), { seed: 19, numRuns: 300 }))];

/** A well-formed pattern: literals, `*`, `?`, escapes and classes (ranges, reversed ranges, negation, escaped members). */
const member = fc.constantFrom('a', 'b', '1', ':', '*', '?', '[', 'a-b', '0-9', 'b-a', '\\]', '\\-', '\\^');
const token = fc.oneof(
  fc.constantFrom('a', 'b', '1', ':', '-', '^', ']'),
  fc.constantFrom('*', '?'),
  fc.constantFrom('\\*', '\\?', '\\[', '\\\\'),
  fc.tuple(fc.boolean(), fc.array(member, { minLength: 1, maxLength: 3 })).map(([not, ms]) => `[${not ? '^' : ''}${ms.join('')}]`),
);
const pattern = fc.array(token, { minLength: 1, maxLength: 5 }).map((ts) => ts.join(''));

describe.skipIf(why !== '')('redisGlob agrees with redis-server KEYS', () => {
  let dir = '';
  let server: ChildProcess | undefined;
  let client: Redis | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tapwire-glob-'));
    const socket = join(dir, 'redis.sock');
    // A unix socket only: no TCP port to collide with other tests.
    server = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    client = new Redis({ path: socket, lazyConnect: true });
    await client.connect();
    await client.mset(KEYS.flatMap((k) => [k, '1']));
  });

  afterAll(async () => {
    client?.disconnect();
    server?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('on hand-picked patterns, [] and [^] included', async () => {
    for (const p of ['*', 'a*', '*:*', '?', '??', '[ab]*', '[^a]', '[b-a]?', '\\**', '\\[*', '[]', '[]a', '[^]', '[\\]]*', 'a\\\\*']) {
      const re = redisGlob(p);
      expect(KEYS.filter((k) => re.test(k)).sort(), p).toEqual((await client!.keys(p)).sort());
    }
  });

  it('on random well-formed patterns (fast-check)', async () => {
    expect(KEYS.length).toBeGreaterThan(150);
    await fc.assert(fc.asyncProperty(pattern, async (p) => {
      const re = redisGlob(p);
      expect(KEYS.filter((k) => re.test(k)).sort(), p).toEqual((await client!.keys(p)).sort());
    }), { seed: 1919, numRuns: 400 });
  });
});
