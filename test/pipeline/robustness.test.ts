import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';

/**
 * Wire input never throws out of a decoder: real captures of every protocol, with random bytes of
 * their packets changed, decode without a throw, and without the dispatcher's safety net
 * (decoder.internal_error) firing: each protocol must turn garbage into its own violations.
 */
const CAPTURES = [
  'pcaps/http1/keepalive.pcap', 'pcaps/http1/chunked-trailers.pcap', 'pcaps/http2/h2c-prior-knowledge.pcap',
  'pcaps/grpc/unary.pcap', 'pcaps/postgres/pg-client.pcap', 'pcaps/postgres/psql.pcap', 'pcaps/postgres/pg-pipeline.pcap',
];

/** Byte ranges of packet data in a classic little-endian pcap (record headers stay intact). */
function dataRanges(b: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let p = 24; p + 16 <= b.length;) {
    const len = b.readUInt32LE(p + 8);
    out.push([p + 16, p + 16 + len]);
    p += 16 + len;
  }
  return out;
}

describe('robustness: mutated real captures', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-mut-'));
  for (const capture of CAPTURES) {
    it(capture, async () => {
      const orig = readFileSync(capture);
      const ranges = dataRanges(orig).filter(([s, e]) => e - s > 54); // packets that carry payload
      await fc.assert(fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
        async (edits) => {
          const b = Buffer.from(orig);
          for (const [which, at, value] of edits) {
            const [s, e] = ranges[which % ranges.length]!;
            // Past the link/IP/TCP headers mostly, but headers may be hit too: both must hold.
            b[s + (at % (e - s))] = value;
          }
          const f = join(dir, 'm.pcap');
          writeFileSync(f, b);
          const r = await analyzeFile(f);
          expect(r.pipeline.violations.counts.get('decoder.internal_error') ?? 0, JSON.stringify(r.pipeline.violations.samples.find((v) => v.code === 'decoder.internal_error'))).toBe(0);
        },
      ), { numRuns: 40 });
    });
  }
});
