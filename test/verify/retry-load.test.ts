import { describe, expect, it } from 'vitest';
import { isHttpLike, type FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { runDetector } from '../../src/verify/detectors.js';

/**
 * Issue 12, item 2, on recorded traffic: wrk with 8 keep-alive connections cycling through five
 * paths, /fail always 503 (pcaps/verify/load-cycle.pcap, scripts/record/load.mjs). The detector used
 * to chain every /fail into one finding with negative delays; none of it is a retry.
 */
describe('retry detector on wrk load (pcaps/verify/load-cycle.pcap)', () => {
  it('decodes the load, 503s on /fail included, and finds no retry at all, not even info', async () => {
    const flows: FlowRecord[] = (await analyzeFile('pcaps/verify/load-cycle.pcap')).records!;
    const http = flows.filter(isHttpLike);
    expect(http.length).toBeGreaterThan(2000);
    expect(new Set(http.map((r) => r.connectionId)).size).toBe(8);
    const fails = http.filter((r) => r.request?.path === '/fail');
    expect(fails.length).toBeGreaterThan(400);
    expect(fails.every((r) => r.response?.status === 503)).toBe(true);
    expect(new Set(http.map((r) => r.request?.path))).toEqual(new Set(['/', '/items', '/items/7', '/about', '/fail']));
    expect(runDetector('retry', flows)).toEqual([]);
  });
});
