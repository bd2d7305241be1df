import { describe, expect, it } from 'vitest';
import { DEFAULT_HTTP1_LIMITS, type Http1Limits } from '../../src/protocols/http1/limits.js';
import { Http1Session } from '../../src/protocols/http1/session.js';
import type { SessionContext, Transaction } from '../../src/protocols/types.js';

/** The limits are options of the session: a smaller bound is honoured and reported by name. */
function session(limits: Partial<Http1Limits>) {
  const records: Transaction[] = [];
  const violations: string[] = [];
  const ctx = {
    conn: { handshakeSeen: true },
    options: { bodyLimit: 1024 },
    emit: (tx: Transaction) => records.push(tx),
    violation: (code: string) => violations.push(code),
    handover: () => undefined,
  } as unknown as SessionContext;
  const s = new Http1Session(ctx, { ...DEFAULT_HTTP1_LIMITS, ...limits });
  let off = [0, 0];
  const send = (dir: 0 | 1, text: string) => {
    const b = Buffer.from(text, 'latin1');
    s.data(dir, b, { time: 1, frame: 1, offset: off[dir]!, peerAck: off[1 - dir]! });
    off = dir === 0 ? [off[0]! + b.length, off[1]!] : [off[0]!, off[1]! + b.length];
  };
  return { s, send, records, violations };
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;
const ok = (body = '') => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

describe('HTTP/1 limits are named options', () => {
  it('defaults live in one place', () => {
    expect(DEFAULT_HTTP1_LIMITS).toMatchObject({ maxLine: 80 * 1024, maxPendingRequests: 1000, maxUpgradeHold: 256 * 1024 });
  });

  it('maxLine: a longer field line is malformed', () => {
    const t = session({ maxLine: 64 });
    t.send(0, get('/a', `X-Long: ${'x'.repeat(100)}\r\n`));
    expect(t.violations).toEqual(['http.header_overflow']);
  });

  it('maxPendingRequests: the oldest unanswered request is reported as evicted', () => {
    const t = session({ maxPendingRequests: 2 });
    t.send(0, get('/a') + get('/b') + get('/c'));
    expect(t.violations).toEqual(['http.pending_requests']);
    expect(t.records.map((r) => [r.request?.path, r.incomplete])).toEqual([['/a', 'evicted']]);
    t.send(1, ok() + ok() + ok());
    t.s.end(2, 'fin');
    expect(t.records.map((r) => [r.request?.path, r.response?.status, r.incomplete])).toEqual([
      ['/a', undefined, 'evicted'], [undefined, 200, 'evicted'], ['/b', 200, undefined], ['/c', 200, undefined],
    ]);
  });

  it('maxUpgradeHold: client bytes past it, before the server answers an Upgrade, are reported', () => {
    const t = session({ maxUpgradeHold: 16 });
    t.send(0, get('/ws', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'));
    t.send(0, 'x'.repeat(10));
    expect(t.violations).toEqual([]);
    t.send(0, 'y'.repeat(10));
    expect(t.violations).toEqual(['http.upgrade_hold']);
  });
});
