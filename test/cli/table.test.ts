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

const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;
if (!hasScript) console.warn('test/cli/table.test.ts: skipping the terminal checks: no `script` (util-linux) to make a pseudo-terminal');

describe.skipIf(!hasScript)('tapwire analyze on a terminal (a pseudo-terminal of 80 columns)', () => {
  const onTerminal = (args: string) => {
    const r = spawnSync('script', ['-qec', `stty cols 80; node dist/cli/main.js analyze ${args}`, '/dev/null'], { encoding: 'utf8' });
    return r.stdout.replace(/\r/g, '').split('\n').filter((l) => !l.startsWith('tapwire:'));
  };

  it('fits every line to the terminal', () => {
    const lines = onTerminal(DEMO);
    expect(lines.length).toBeGreaterThan(20);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
  });

  it('--wide leaves lines uncut', () => {
    const lines = onTerminal(`${DEMO} --wide`);
    expect(lines.some((l) => l.includes('SELECT id, customer, total, status FROM orders WHERE id = $1  [1 rows]'))).toBe(true);
  });
});

describe('HAR says what it cannot hold', () => {
  it('the demo\'s 12 PostgreSQL statements are named as left out, and the entries are the rest', () => {
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'analyze', DEMO, '--format', 'har'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const entries = JSON.parse(r.stdout).log.entries;
    expect(entries).toHaveLength(17);
    expect(r.stderr).toContain('tapwire: HAR holds 17 of 29 flows; not in it: 12 flows (PostgreSQL: HAR holds HTTP exchanges only)');
  });

  it('says nothing more when every flow is HTTP', () => {
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'analyze', 'pcaps/http1/keepalive.pcap', '--format', 'har'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toContain('HAR holds');
  });
});

describe('verify and diff text fits the terminal', () => {
  it('fitToWidth breaks long lines at spaces under where their text starts, and leaves short ones', async () => {
    const { fitToWidth } = await import('../../src/common/text.js');
    const text = '  ERROR   retry: 4 attempts of POST /payments on 127.0.0.3:8081; retries at 0.20 s, 0.20 s, 0.20 s (constant: delays do not grow)\nshort';
    const out = fitToWidth(text, 50).split('\n');
    expect(out.every((l) => l.length <= 50)).toBe(true);
    expect(out[0]).toBe('  ERROR   retry: 4 attempts of POST /payments on');
    expect(out.slice(1, -1).every((l) => l.startsWith('          ') && !l.startsWith('           '))).toBe(true);
    expect(out.at(-1)).toBe('short');
    expect(out.join(' ').replace(/\s+/g, ' ')).toBe(text.replace(/\s+/g, ' '));
    expect(fitToWidth(text, undefined)).toBe(text);
  });

  it.skipIf(!hasScript)('on an 80-column terminal no line of verify or diff is wider; piped, lines stay whole', () => {
    for (const args of [`verify ${DEMO}`, `diff ${DEMO} pcaps/demo/demo-fixed.pcap`]) {
      const r = spawnSync('script', ['-qec', `stty cols 80; node dist/cli/main.js ${args}`, '/dev/null'], { encoding: 'utf8' });
      const lines = r.stdout.replace(/\r/g, '').split('\n');
      expect(lines.length).toBeGreaterThan(10);
      for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
      const piped = spawnSync(process.execPath, ['dist/cli/main.js', ...args.split(' ')], { encoding: 'utf8' });
      expect(Math.max(...piped.stdout.split('\n').map((l) => l.length))).toBeGreaterThan(80);
    }
  });
});
