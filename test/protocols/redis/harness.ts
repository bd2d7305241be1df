import type { ConnectionInfo } from '../../../src/stream/index.js';
import type { Exchange, SessionContext } from '../../../src/protocols/types.js';
import { RedisSession } from '../../../src/protocols/redis/session.js';
import type { RedisExchange } from '../../../src/protocols/redis/types.js';

/** One step of a conversation: which direction sent which bytes. */
export type Step = [0 | 1, string | Buffer | { gap: number }];

export interface Run {
  out: RedisExchange[];
  violations: string[];
}

const CONN: ConnectionInfo = {
  id: 'c1', client: { ip: '127.0.0.1', port: 40000 }, server: { ip: '127.0.0.1', port: 6379 }, family: 4,
  startTime: 0, firstFrame: 1, handshakeSeen: true, midStream: false,
} as ConnectionInfo;

/**
 * Feeds a conversation to a RedisSession, each step cut at `cut` (a step of n bytes becomes two
 * chunks at min(cut, n); -1: whole). Every packet acknowledges all the other side sent before it.
 */
export function run(steps: Step[], cut = -1): Run {
  const out: RedisExchange[] = [];
  const violations: string[] = [];
  const ctx: SessionContext = {
    conn: CONN, options: { bodyLimit: 1024 },
    emit: <T extends Exchange>(tx: T) => { out.push(tx as unknown as RedisExchange); },
    violation: (code: string, reason: string) => { violations.push(`${code}: ${reason}`); },
    handover: () => undefined,
    carried: () => undefined,
  };
  const s = new RedisSession(ctx);
  const off = [0, 0];
  let frame = 1;
  for (const [dir, data] of steps) {
    if (typeof data === 'object' && !Buffer.isBuffer(data)) {
      s.gap(dir, data.gap, { time: frame / 1000, frame, offset: off[dir]!, peerAck: off[1 - dir]! });
      off[dir]! += data.gap;
      continue;
    }
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    const parts = cut < 0 || cut >= b.length || cut === 0 ? [b] : [b.subarray(0, cut), b.subarray(cut)];
    for (const p of parts) {
      s.data(dir, p, { time: frame / 1000, frame, offset: off[dir]!, peerAck: off[1 - dir]! });
      off[dir]! += p.length;
      frame++;
    }
  }
  s.end(frame / 1000, 'fin');
  return { out, violations };
}

/** The same conversation cut at every byte gives the same exchanges as whole (times and frames aside). */
export function everySplit(steps: Step[]): Run {
  const whole = run(steps);
  const longest = Math.max(...steps.map(([, d]) => (typeof d === 'object' && !Buffer.isBuffer(d) ? 0 : d.length)));
  const strip = (r: Run) => JSON.stringify(r, (k, v) => (k === 'start' || k === 'end' || k === 'frames' ? undefined : v));
  for (let k = 1; k < longest; k++) {
    const got = run(steps, k);
    if (strip(got) !== strip(whole)) throw new Error(`split at ${k} differs:\n${strip(got)}\n${strip(whole)}`);
  }
  return whole;
}

/** A command as a client sends it: an array of bulk strings. */
export function cmd(...words: string[]): string {
  return `*${words.length}\r\n` + words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('');
}
