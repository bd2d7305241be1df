import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { fitColumns, Out, table } from '../../src/cli/output.js';

const DEMO = 'pcaps/demo/demo.pcap';

/** The table of the demo capture at a given width (undefined: uncut). */
async function demoTable(width: number | undefined): Promise<string[]> {
  const { records } = await analyzeFile(DEMO);
  let text = '';
  const sink = new Writable({ write(c, _e, cb) { text += c.toString(); cb(); } });
  const out = new Out(sink);
  const t = table(out, width);
  t.begin();
  for (const r of records!) t.record(r);
  t.end();
  await out.end();
  return text.trimEnd().split('\n');
}

describe('the table fits the terminal', () => {
  for (const width of [60, 80, 100, 160]) {
    it(`at ${width} columns no line is wider, and long SQL is cut with …`, async () => {
      const lines = await demoTable(width);
      expect(lines.length).toBeGreaterThan(20);
      for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(width);
      expect(lines.some((l) => l.endsWith('…'))).toBe(true);
    });
  }

  it('at 80 columns the least useful columns go first; the call and its outcome stay', () => {
    const keys = fitColumns(80).map((c) => c.key);
    expect(keys).toEqual(expect.arrayContaining(['server', 'method', 'status']));
    expect(keys).not.toContain('req');
    expect(fitColumns(200).map((c) => c.key)).toEqual(['time', 'client', 'server', 'proto', 'method', 'status', 'ms', 'req', 'resp']);
  });

  it('uncut (a pipe, or --wide): whole SQL and every column', async () => {
    const lines = await demoTable(undefined);
    expect(lines[0]).toMatch(/^TIME \(UTC\)\s+CLIENT\s+SERVER\s+PROTO\s+METHOD\s+STATUS\s+MS\s+REQ\s+RESP\s+PATH/);
    expect(lines.some((l) => l.includes('SELECT id, customer, total, status FROM orders WHERE id = $1  [1 rows]'))).toBe(true);
    expect(lines.some((l) => l.endsWith('…'))).toBe(false);
  });

  it('piped CLI output stays uncut', () => {
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'analyze', DEMO], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(Math.max(...r.stdout.split('\n').map((l) => l.length))).toBeGreaterThan(150);
  });
});
