/**
 * Content detection, not ports, must not see a protocol where there is none: every third-party
 * capture in ../shared/pcaps (HTTP, gRPC, TLS, DNS, SMTP, FTP, fuzzed and truncated files …) goes
 * through the pipeline, and only the captures of a protocol may yield its records. The text
 * protocols are the risk here: a Redis inline command is a line of words, so an FTP or SMTP
 * dialogue, or a broken HTTP request line, must not read as one.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT } from './oracle.js';

/** Which captures may hold each protocol's records: their path names the protocol. */
const OWN: Record<string, RegExp> = {
  redis: /(^|\/)(redis\/|resp_)/,
  mysql: /(^|\/)mysql[/-]/,
};

function captures(dir: string, base = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const rel = base ? `${base}/${name}` : name;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'LICENSES' ? [] : captures(full, rel);
    return /\.(pcap|pcapng|cap)$/.test(name) ? [rel] : [];
  });
}

describe.skipIf(!PCAPS_PRESENT)('content detection across the third-party captures', () => {
  if (!PCAPS_PRESENT) console.log(PCAPS_MISSING_REASON);

  it('Redis and MySQL records come only from Redis and MySQL captures, and from each of them', async () => {
    const found: Record<string, string[]> = { redis: [], mysql: [] };
    for (const rel of captures(PCAP_DIR)) {
      const res = await analyzeFile(path.join(PCAP_DIR, rel)).catch(() => undefined);
      const protocols = new Set(res?.records?.map((r) => r.protocol as string));
      for (const p of Object.keys(found)) if (protocols.has(p)) found[p]!.push(rel);
    }
    for (const [p, own] of Object.entries(OWN)) {
      expect(found[p]!.filter((f) => !own.test(f)), `${p} records from captures that hold no ${p}`).toEqual([]);
      const expected = captures(PCAP_DIR).filter((f) => own.test(f));
      expect(expected.length, `the shared set has ${p} captures`).toBeGreaterThan(0);
      expect(found[p]!.sort(), `every ${p} capture yields ${p} records`).toEqual(expected.sort());
    }
  }, 120_000);
});
