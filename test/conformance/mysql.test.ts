/**
 * MySQL conformance against tshark: on every MySQL capture of the shared set (zeek/mysql/mysql.pcap,
 * arkime/mysql-deny.pcap) and every capture recorded here (pcaps/mysql/*.pcap), tapwire's mysql
 * records are compared per connection with what tshark's MySQL dissector decodes: each command (name,
 * and the SQL of queries and prepares), each login's user, each error (code and message) and each
 * result set's column count, aligned in order (mysql-compare.ts). Every deviation must be covered by a
 * named rule below, with its reason (docs/conformance.md, "MySQL"); an uncovered one fails, and so
 * does a rule that covers nothing any more. Skips, saying why, when tshark or the shared captures are
 * missing.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT, REPO_ROOT } from './oracle.js';
import { compareMysql, tsharkMysql, type MysqlDeviation, type MysqlItemKind } from './mysql-compare.js';
import { type Rule, ruleReport, unexplained } from './explained.js';
import { keepReport, printReportsOnFailure } from '../helpers/report.js';

printReportsOnFailure();

const TSHARK = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const SHARED = ['arkime/mysql-deny.pcap', 'zeek/mysql/mysql.pcap'];
const LOCAL_DIR = path.join(REPO_ROOT, 'pcaps/mysql');
const LOCAL = readdirSync(LOCAL_DIR).filter((f) => f.endsWith('.pcap')).sort().map((f) => path.join(LOCAL_DIR, f));
const CAPTURES = [...(PCAPS_PRESENT ? SHARED.map((c) => path.join(PCAP_DIR, c)) : []), ...LOCAL];
const name = (file: string) => path.relative(file.startsWith(PCAP_DIR) ? PCAP_DIR : REPO_ROOT, file);

if (!TSHARK) console.warn('mysql.test.ts: tshark not found on PATH; MySQL conformance skipped');
else if (!PCAPS_PRESENT) console.warn(`mysql.test.ts: ${PCAPS_MISSING_REASON} (the captures recorded here are still compared)`);

/** Minimum share of tshark's items tapwire agrees with (the rest explained by the rules). */
const MIN_AGREEMENT = 0.95;

interface Dev extends MysqlDeviation {
  capture: string;
}

/**
 * Why tapwire and tshark may differ on MySQL. Each rule says which deviations it covers; the test
 * checks every deviation has one and every rule still covers at least one.
 */
export const MYSQL_RULES: Rule<Dev>[] = [
  {
    name: 'field-list-columns',
    reason: 'COM_FIELD_LIST (the mysql client asks it for tab completion) is answered by column definitions and an EOF, with no '
      + 'column-count packet before them. tshark 4.0 shows that answer as a bare "Response" (its EOF) without the definitions; '
      + 'tapwire reads the definitions and lists the column names, so it has a column count tshark has not',
    covers: (d) => d.kind === 'columns' && d.side === 'extra' && d.record?.request?.command === 'COM_FIELD_LIST',
  },
];

interface Result {
  capture: string;
  connections: number;
  records: number;
  items: number;
  matched: number;
  byKind: Record<MysqlItemKind, [number, number]>;
  deviations: Dev[];
}

async function run(file: string): Promise<Result> {
  const { records = [] } = await analyzeFile(file);
  const mysql = records.filter((r) => r.protocol === 'mysql');
  const ports = [...new Set([3306, ...mysql.map((r) => r.dst.port)])];
  const c = compareMysql(tsharkMysql(file, ports), records);
  return { capture: name(file), connections: c.connections, records: mysql.length, items: c.items, matched: c.matched, byKind: c.byKind, deviations: c.deviations.map((d) => ({ ...d, capture: name(file) })) };
}

const fmt = (d: Dev) => `${d.capture} ${d.kind} ${d.side} ${JSON.stringify(d.what.slice(0, 120))} frames ${d.frames.join('-')} [${d.conn}]`;

describe.skipIf(!TSHARK)('MySQL conformance with tshark', () => {
  const results: Result[] = [];

  it(`finds the ${SHARED.length} shared MySQL captures and the recorded ones`, () => {
    expect(LOCAL.length).toBeGreaterThanOrEqual(1);
    if (PCAPS_PRESENT) expect(CAPTURES.length).toBe(SHARED.length + LOCAL.length);
  });

  for (const file of CAPTURES) {
    it(name(file), async () => {
      const r = await run(file);
      results.push(r);
      expect(r.records, 'tapwire decoded records').toBeGreaterThan(0);
      expect(unexplained(r.deviations, MYSQL_RULES).map(fmt), `deviations no rule covers in ${r.capture}`).toEqual([]);
    });
  }

  it('every rule still covers a deviation, and tapwire agrees with most of what tshark decoded', () => {
    expect(results.length).toBe(CAPTURES.length);
    const all = results.flatMap((r) => r.deviations);
    expect(ruleReport(all, MYSQL_RULES).unused, 'rules that cover nothing any more (remove them)').toEqual([]);
    const items = results.reduce((n, r) => n + r.items, 0);
    const matched = results.reduce((n, r) => n + r.matched, 0);
    expect(matched / items, `agreement ${matched}/${items}`).toBeGreaterThanOrEqual(MIN_AGREEMENT);
  });

  afterAll(() => {
    if (results.length === 0) return;
    const lines = ['| capture | conns | records | commands | errors | column counts | deviations (rule: count) |', '|---|---:|---:|---:|---:|---:|---|'];
    for (const r of [...results].sort((a, b) => a.capture.localeCompare(b.capture))) {
      const counts = ruleReport(r.deviations, MYSQL_RULES).counts;
      const k = (x: MysqlItemKind) => `${r.byKind[x][1]}/${r.byKind[x][0]}`;
      lines.push(`| \`${r.capture}\` | ${r.connections} | ${r.records} | ${k('command')} | ${k('error')} | ${k('columns')} | ${Object.entries(counts).map(([n, c]) => `${n}: ${c}`).join(', ') || '–'} |`);
    }
    const devs = results.flatMap((r) => r.deviations).map((d) => `  ${fmt(d)}: ${MYSQL_RULES.find((x) => x.covers(d))?.name ?? 'UNEXPLAINED'}`);
    keepReport('mysql-conformance', ['MySQL conformance (tshark, live):', lines.join('\n'), '', 'Deviations:', ...devs].join('\n'));
    console.log(lines.join('\n'));
  });
});
