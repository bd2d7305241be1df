import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { runDetector } from '../../src/verify/detectors.js';

/**
 * A retry is made for the inbound request the failed attempt was made for. Causal grouping gives
 * each call the tightest inbound request enclosing it, so with concurrent requests a retry can be
 * given to another request that is open at the time: still a retry. A call made again for a later
 * request, after the first one had ended, is not.
 */
const BASE = 1_765_000_000;
const SERVICE = '10.0.0.2', UPSTREAM = { ip: '10.0.0.9', port: 8080 };
let seq = 0;

function http(src: string, dst: { ip: string; port: number }, conn: string, path: string, fromMs: number, toMs: number, status: number): FlowRecord {
  const start = BASE + fromMs / 1000, end = BASE + toMs / 1000;
  return {
    id: `${conn}-${++seq}`, protocol: 'http', connectionId: conn,
    src: { ip: src, port: 40000 + seq }, dst,
    start, end, durationMs: toMs - fromMs,
    request: { method: 'POST', path, version: '1.1', start, end: start, size: 40, headers: {}, bodySize: 0 },
    response: { status, reason: '', version: '1.1', start: end, end, size: 40, headers: {}, bodySize: 0 },
  };
}

const inbound = (conn: string, fromMs: number, toMs: number) => http('10.0.0.1', { ip: SERVICE, port: 8080 }, conn, '/checkout', fromMs, toMs, 200);
const call = (fromMs: number, toMs: number, status: number) => http(SERVICE, UPSTREAM, 'up', '/payments', fromMs, toMs, status);

describe('retry: the attempts of one inbound request, as causal grouping attributes them', () => {
  it('a retry given to a shorter concurrent request is still a retry of the first attempt', () => {
    // Request A (0–1000 ms) calls /payments at 100 ms (503) and again at 500 ms (503) and 700 ms (200);
    // request B (450–650 ms) is open while the second attempt runs and is tighter around it.
    const flows = [inbound('a', 0, 1000), inbound('b', 450, 650), call(100, 150, 503), call(500, 550, 503), call(700, 750, 200)];
    const f = runDetector('retry', flows);
    expect(f).toHaveLength(1);
    expect(f[0]!.details).toMatchObject({ attempts: 3 });
  });

  it('the same failing call made once for each of two requests, one after the other, is not a retry', () => {
    const flows = [inbound('a', 0, 200), call(50, 100, 503), inbound('b', 300, 500), call(350, 400, 503)];
    expect(runDetector('retry', flows)).toEqual([]);
  });
});
