import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FlowRecord, RedisFlow } from '../../../src/flows/record.js';
import { Redactor } from '../../../src/flows/redact.js';
import { analyzeFile } from '../../../src/pipeline/analyze.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT } from '../../conformance/oracle.js';

/*
 * Redis records from real traffic: the captures recorded here from Debian's redis-server
 * (scripts/record/redis.mjs; their full output is in test/golden/redis/), and third-party ones
 * in ../shared/pcaps (read in place, never copied).
 */

async function redis(file: string): Promise<RedisFlow[]> {
  const r = await analyzeFile(file, { redactor: new Redactor({ key: Buffer.from('test-key') }) });
  expect(r.pipeline.violations.total, JSON.stringify(r.pipeline.violations.toJSON())).toBe(0);
  const all = r.records as FlowRecord[];
  expect(all.every((f) => f.protocol === 'redis')).toBe(true);
  return all as RedisFlow[];
}

const call = (f: RedisFlow) => [f.request?.command, f.request?.key, f.response?.type];

describe('Redis records from redis-server (pcaps/redis)', () => {
  it('redis-cli: a GET miss is nil, SET then a hit, an error with its message, AUTH and a password field redacted, --pipe', async () => {
    const rs = await redis('pcaps/redis/redis-cli.pcap');
    expect(rs.every((f) => !f.incomplete)).toBe(true);
    const gets = rs.filter((f) => f.request?.key === 'user:42:profile');
    expect(gets.map(call).slice(0, 3)).toEqual([['GET', 'user:42:profile', 'nil'], ['SET', 'user:42:profile', 'simple'], ['GET', 'user:42:profile', 'bulk']]);
    expect(rs.find((f) => f.request?.command === 'LPUSH')!.response!.error).toMatch(/^WRONGTYPE /);
    const auth = rs.find((f) => f.request?.command === 'AUTH')!;
    expect(auth.request!.args[0]).toMatch(/^\[redacted:[0-9a-f]{12}\]$/);
    const text = JSON.stringify(rs);
    expect(text).not.toContain('not-a-real-password');
    expect(text).not.toContain('hunter2');
    expect(rs.filter((f) => f.request?.command === 'SET' && f.request.key?.startsWith('bulk:'))).toHaveLength(50);
  });

  it('node client: a pipeline in order, MULTI/EXEC per command with a transaction number, pub/sub pushes, HELLO 3', async () => {
    const rs = await redis('pcaps/redis/redis-node.pcap');
    const pipe = rs.filter((f) => f.request?.key?.startsWith('order:'));
    expect(pipe.slice(0, 6).map(call)).toEqual([
      ['SET', 'order:0', 'simple'], ['GET', 'order:-2', 'nil'], ['SET', 'order:1', 'simple'], ['GET', 'order:-1', 'nil'],
      ['SET', 'order:2', 'simple'], ['GET', 'order:0', 'bulk'],
    ]);
    const tx1 = rs.filter((f) => f.redis?.transaction === 1);
    expect(tx1.map((f) => [f.request?.command, f.redis?.queued ?? false, f.response?.value])).toEqual([
      ['MULTI', false, 'OK'], ['INCR', true, '1'], ['HSET', true, '1'], ['GET', true, '1'], ['EXEC', false, '["1", "1", "1"]'],
    ]);
    const pushes = rs.filter((f) => !f.request);
    expect(pushes.map((f) => [f.response!.type, f.response!.channel, f.response!.pattern, f.response!.message])).toEqual([
      ['push', 'orders', undefined, 'order 7 created'], ['push', 'cache:invalidate', 'cache:*', 'user:42'], ['push', 'orders', undefined, 'order 8 created'],
    ]);
    const hello = rs.findIndex((f) => f.request?.command === 'HELLO');
    expect(rs[hello - 1]!.redis!.resp).toBe(2);
    expect(rs[hello]!.response!.type).toBe('map');
    expect(rs.slice(hello).filter((f) => f.request?.command === 'GET').map((f) => [f.response!.type, f.redis!.resp])).toEqual([['nil', 3]]);
    expect(rs.find((f) => f.request?.command === 'ZSCORE')!.response).toMatchObject({ type: 'double', value: '2.5' });
  });
});

describe.skipIf(!PCAPS_PRESENT)('third-party Redis captures (../shared/pcaps)', () => {
  it('zeek/redis/pubsub.pcap: inline commands with quotes, pushes from two subscriptions, RESET', async () => {
    const rs = await redis(join(PCAP_DIR, 'zeek/redis/pubsub.pcap'));
    expect(rs.find((f) => f.request?.command === 'PUBLISH')!.request!.args).toEqual(['Foo', 'Hi there :)']);
    expect(rs.filter((f) => f.response?.type === 'push').map((f) => f.response!.message)).toEqual(['Hi there :)', 'Hi there :)', 'Hello! :)']);
  });

  it('tcpdump/resp_2_inline.pcap and zeek pipelining, large values: every command answered', async () => {
    for (const file of ['tcpdump/resp_2_inline.pcap', 'zeek/redis/pipelining-example.pcap', 'zeek/redis/large-requests-responses.pcap']) {
      const rs = await redis(join(PCAP_DIR, file));
      expect(rs.length, file).toBeGreaterThan(2);
      expect(rs.every((f) => f.request && f.response && !f.incomplete), file).toBe(true);
    }
  });
});
if (!PCAPS_PRESENT) console.warn(`test/protocols/redis/captures.test.ts: third-party captures skipped: ${PCAPS_MISSING_REASON}`);
