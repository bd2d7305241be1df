/**
 * Redis conformance against tshark: on every Redis capture of the shared set (zeek/redis/*.pcap,
 * tcpdump/resp_2_inline.pcap) and every capture recorded here (pcaps/redis/*.pcap), tapwire's redis
 * records are compared per connection with what tshark's RESP dissector decodes: each command (name
 * and arguments) and each reply (type and value), aligned in order (redis-compare.ts). Every
 * deviation must be covered by a named rule below, with its reason (docs/conformance.md, "Redis");
 * an uncovered one fails, and so does a rule that covers nothing any more. Skips, saying why, when
 * tshark or the shared captures are missing.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT, REPO_ROOT } from './oracle.js';
import { compareRedis, tsharkResp, type RedisDeviation, type RedisItemKind } from './redis-compare.js';
import { type Rule, ruleReport, unexplained } from './explained.js';
import { keepReport, printReportsOnFailure } from '../helpers/report.js';

printReportsOnFailure();

const TSHARK = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const SHARED = ['zeek/redis/large-requests-responses.pcap', 'zeek/redis/pipelining-example.pcap', 'zeek/redis/pubsub.pcap', 'tcpdump/resp_2_inline.pcap'];
const LOCAL_DIR = path.join(REPO_ROOT, 'pcaps/redis');
const LOCAL = readdirSync(LOCAL_DIR).filter((f) => f.endsWith('.pcap')).sort().map((f) => path.join(LOCAL_DIR, f));
const CAPTURES = [...(PCAPS_PRESENT ? SHARED.map((c) => path.join(PCAP_DIR, c)) : []), ...LOCAL];
const name = (file: string) => path.relative(file.startsWith(PCAP_DIR) ? PCAP_DIR : REPO_ROOT, file);

if (!TSHARK) console.warn('redis.test.ts: tshark not found on PATH; Redis conformance skipped');
else if (!PCAPS_PRESENT) console.warn(`redis.test.ts: ${PCAPS_MISSING_REASON} (the captures recorded here are still compared)`);

/** Minimum share of tshark's whole items tapwire agrees with (the rest explained by the rules). */
const MIN_AGREEMENT = 0.95;

interface Dev extends RedisDeviation {
  capture: string;
}

const isSubscribeKind = (h: string | undefined) => h !== undefined && /^p?s?(un)?subscribe$/.test(h);

/**
 * Why tapwire and tshark may differ on Redis. Each rule says which deviations it covers; the test
 * checks every deviation has one and every rule still covers at least one.
 */
export const REDIS_RULES: Rule<Dev>[] = [
  {
    name: 'tshark-inline-commands',
    reason: 'tshark 4.0 does not parse inline commands (a plain line such as "PING\\r\\n", RESP "Inline commands"): its RESP '
      + 'dissector reads only arrays from the client. tapwire reads them as the server does (sdssplitargs) and marks the record inline',
    covers: (d) => d.kind === 'command' && d.side === 'extra' && d.record?.request?.inline === true,
  },
  {
    name: 'tshark-no-reassembly',
    reason: 'tshark 4.0 does not reassemble a RESP message across TCP segments: a message longer than its first segment is shown '
      + 'cut short (expert info "Array is partially decoded") or not at all, and a segment that starts inside a message is read '
      + 'as if a message began there. tapwire reassembles the stream and has the whole message; tshark\'s pieces are missing from '
      + 'tapwire and tapwire\'s whole message is missing from tshark',
    covers: (d) => (d.side === 'missing' && d.partial === true)
      || (d.side === 'extra' && d.frames[1] > d.frames[0] && d.tsharkPartial === true),
  },
  {
    name: 'tshark-mid-message-segments',
    reason: 'a segment that begins inside a message tapwire reassembled (a large bulk string or a long reply such as COMMAND DOCS) '
      + 'is read by tshark 4.0 as a new message: what it shows there is the tail of the previous message, not a message',
    covers: (d) => d.side === 'missing' && d.midMessage === true,
  },
  {
    name: 'subscribe-confirmations-folded',
    reason: 'SUBSCRIBE and PSUBSCRIBE with several channels are answered by one confirmation per channel; tapwire gives the command '
      + 'one record with the first confirmation as its reply and absorbs the rest (no record of their own), so tshark has the '
      + 'further confirmation arrays and tapwire not',
    covers: (d) => d.kind === 'reply' && d.side === 'missing' && isSubscribeKind(d.head),
  },
  {
    name: 'tshark-no-resp3',
    reason: 'tshark 4.0 has no RESP3: after HELLO 3 it does not know the types map (%), set (~), push (>), null (_), double (,), '
      + 'boolean (#), verbatim (=), big number ((), so it shows nothing, or a different reading, for those replies; tapwire reads them',
    covers: (d) => d.kind === 'reply' && (d.record?.redis?.resp === 3 || d.resp3 === true),
  },
];

interface Result {
  capture: string;
  connections: number;
  records: number;
  items: number;
  matched: number;
  byKind: Record<RedisItemKind, [number, number]>;
  deviations: Dev[];
}

async function run(file: string): Promise<Result> {
  const { records = [], pipeline } = await analyzeFile(file);
  const redis = records.filter((r) => r.protocol === 'redis');
  const ports = [...new Set([6379, ...redis.map((r) => r.dst.port)])];
  const t = tsharkResp(file, ports);
  const c = compareRedis(t, records);
  expect([...pipeline.violations.counts.keys()], `${name(file)}: violations`).toEqual([]);
  return { capture: name(file), connections: c.connections, records: redis.length, items: c.items, matched: c.matched, byKind: c.byKind, deviations: c.deviations.map((d) => ({ ...d, capture: name(file) })) };
}

const fmt = (d: Dev) => `${d.capture} ${d.kind} ${d.side} ${JSON.stringify(d.what.slice(0, 100))} frames ${d.frames.join('-')} [${d.conn}]`;

describe.skipIf(!TSHARK)('Redis conformance with tshark', () => {
  const results: Result[] = [];

  it(`finds the ${SHARED.length} shared Redis captures and the recorded ones`, () => {
    expect(LOCAL.length).toBeGreaterThanOrEqual(2);
    if (PCAPS_PRESENT) expect(CAPTURES.length).toBe(SHARED.length + LOCAL.length);
  });

  for (const file of CAPTURES) {
    it(name(file), async () => {
      const r = await run(file);
      results.push(r);
      expect(r.records, 'tapwire decoded records').toBeGreaterThan(0);
      expect(unexplained(r.deviations, REDIS_RULES).map(fmt), `deviations no rule covers in ${r.capture}`).toEqual([]);
    });
  }

  it('every rule still covers a deviation, and tapwire agrees with most of what tshark decoded whole', () => {
    expect(results.length).toBe(CAPTURES.length);
    const all = results.flatMap((r) => r.deviations);
    const { unused } = ruleReport(all, REDIS_RULES);
    expect(unused, 'rules that cover nothing any more (remove them)').toEqual([]);
    const items = results.reduce((n, r) => n + r.items, 0);
    const partial = all.filter((d) => d.side === 'missing' && REDIS_RULES.some((x) => x.name !== 'subscribe-confirmations-folded' && x.covers(d))).length;
    const matched = results.reduce((n, r) => n + r.matched, 0);
    expect(matched / (items - partial), `agreement ${matched}/${items - partial} (of ${items} tshark items, ${partial} unreadable to tshark)`).toBeGreaterThanOrEqual(MIN_AGREEMENT);
  });

  afterAll(() => {
    if (results.length === 0) return;
    const lines = ['| capture | conns | records | commands | replies | deviations (rule: count) |', '|---|---:|---:|---:|---:|---|'];
    for (const r of [...results].sort((a, b) => a.capture.localeCompare(b.capture))) {
      const counts = ruleReport(r.deviations, REDIS_RULES).counts;
      lines.push(`| \`${r.capture}\` | ${r.connections} | ${r.records} | ${r.byKind.command[1]}/${r.byKind.command[0]} | ${r.byKind.reply[1]}/${r.byKind.reply[0]} | ${Object.entries(counts).map(([k, n]) => `${k}: ${n}`).join(', ') || '–'} |`);
    }
    const devs = results.flatMap((r) => r.deviations).map((d) => `  ${fmt(d)}: ${REDIS_RULES.find((x) => x.covers(d))?.name ?? 'UNEXPLAINED'}`);
    keepReport('redis-conformance', ['Redis conformance (tshark, live):', lines.join('\n'), '', 'Deviations:', ...devs].join('\n'));
    console.log(lines.join('\n'));
  });
});
