import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

/** The CLI as a user runs it: the built bin, a fresh process, real files. */
const BIN = 'dist/cli/main.js';
const KEEPALIVE = 'pcaps/http1/keepalive.pcap';

function tapwire(args: string[], input?: Buffer, env: NodeJS.ProcessEnv = {}) {
  const tmp = mkdtempSync(join(tmpdir(), 'tapwire-cli-'));
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input, encoding: 'buffer', env: { ...process.env, XDG_CONFIG_HOME: tmp, TAPWIRE_REDACT_KEY: '', ...env },
  });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), configDir: tmp };
}

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
});

describe('tapwire analyze', () => {
  it('jsonl: one object per flow, the contract fields, records on stdout and the summary on stderr', () => {
    const r = tapwire(['analyze', KEEPALIVE, '--format', 'jsonl']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(6);
    for (const f of lines) {
      expect(f.protocol).toBe('http');
      expect(typeof f.src.ip).toBe('string');
      expect(typeof f.src.port).toBe('number');
      expect(f.dst).toEqual({ ip: '127.0.0.1', port: 18101 });
      expect(typeof f.start).toBe('number');
      expect(f.end).toBeGreaterThanOrEqual(f.start);
      expect(typeof f.request.method).toBe('string');
      expect(f.request.path.startsWith('/')).toBe(true);
      expect(typeof f.response.status).toBe('number');
      for (const h of [f.request.headers, f.response.headers]) for (const k of Object.keys(h)) expect(k).toBe(k.toLowerCase());
      expect(f.incomplete ?? false).toBe(false);
    }
    expect(r.stderr).toMatch(/^tapwire: 20 packets, [\d.]+ MB, 6 flows, 0 decode problems in [\d.]+ s \([\d.]+ MB\/s\)$/m);
  });

  it('redacts by default with a key kept in the config directory, stable across runs', () => {
    const a = tapwire(['analyze', KEEPALIVE, '--format', 'jsonl']);
    const first = JSON.parse(a.stdout.split('\n')[0]!);
    expect(first.request.headers.authorization).toMatch(/^Bearer \[redacted:[0-9a-f]{12}\]$/);
    expect(first.request.path).toMatch(/token=\[redacted:[0-9a-f]{12}\]&page=2$/);
    const key = readFileSync(join(a.configDir, 'tapwire', 'redact.key'), 'utf8');
    expect(key.trim()).toMatch(/^[0-9a-f]{64}$/);
    // A second run with the same config directory gives the same tokens.
    const b = tapwire(['analyze', KEEPALIVE, '--format', 'jsonl'], undefined, { XDG_CONFIG_HOME: a.configDir });
    expect(JSON.parse(b.stdout.split('\n')[0]!).request.headers.authorization).toBe(first.request.headers.authorization);
    // TAPWIRE_REDACT_KEY overrides the file.
    const c = tapwire(['analyze', KEEPALIVE, '--format', 'jsonl'], undefined, { XDG_CONFIG_HOME: a.configDir, TAPWIRE_REDACT_KEY: 'other' });
    expect(JSON.parse(c.stdout.split('\n')[0]!).request.headers.authorization).not.toBe(first.request.headers.authorization);
  });

  it('--no-redact shows the values as sent', () => {
    const r = tapwire(['analyze', KEEPALIVE, '--format', 'jsonl', '--no-redact']);
    const first = JSON.parse(r.stdout.split('\n')[0]!);
    expect(first.request.headers.authorization).not.toContain('redacted');
    expect(first.request.path).toBe('/api/users?token=abc&page=2');
  });

  it('reads stdin with "-" and gives the same records as the file', () => {
    const file = tapwire(['analyze', KEEPALIVE, '--format', 'jsonl', '--no-redact']);
    const piped = tapwire(['analyze', '-', '--format', 'jsonl', '--no-redact'], readFileSync(KEEPALIVE));
    expect(piped.status).toBe(0);
    expect(piped.stdout).toBe(file.stdout);
  });

  it('har: a HAR 1.2 log with one entry per request', () => {
    const r = tapwire(['analyze', KEEPALIVE, '--format', 'har']);
    expect(r.status).toBe(0);
    const har = JSON.parse(r.stdout);
    expect(har.log.version).toBe('1.2');
    expect(har.log.creator.name).toBe('tapwire');
    expect(har.log.entries).toHaveLength(6);
    const e = har.log.entries[0];
    expect(e.request.url).toMatch(/^http:\/\/127\.0\.0\.1:18101\/api\/users\?token=/);
    expect(e.request.httpVersion).toBe('HTTP/1.1');
    expect(e.response.status).toBe(200);
    expect(e.timings.wait).toBeGreaterThanOrEqual(0);
    expect(new Date(e.startedDateTime).getUTCFullYear()).toBeGreaterThan(2020);
    expect(e.request.queryString).toContainEqual({ name: 'page', value: '2' });
  });

  it('table: a header and one line per flow', () => {
    const r = tapwire(['analyze', KEEPALIVE]);
    expect(r.status).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /\bhttp\b/.test(l));
    expect(rows).toHaveLength(6);
    expect(r.stdout).toMatch(/^TIME \(UTC\)\s+CLIENT\s+SERVER/);
  });

  it('table and har list flows in start order; jsonl streams them as they complete', () => {
    const t = tapwire(['analyze', 'pcaps/demo/demo.pcap']);
    const paths = t.stdout.split('\n').filter((l) => /\bhttp\b/.test(l)).map((l) => l.trim().split(/\s+/).at(-1));
    // The checkout starts before the payment calls it makes, and is listed before them.
    expect(paths.indexOf('/checkout')).toBeLessThan(paths.indexOf('/payments'));
    const h = JSON.parse(tapwire(['analyze', 'pcaps/demo/demo.pcap', '--format', 'har']).stdout);
    const starts = h.log.entries.map((e: { startedDateTime: string }) => e.startedDateTime);
    expect(starts).toEqual([...starts].sort());
    const j = tapwire(['analyze', 'pcaps/demo/demo.pcap', '--format', 'jsonl']).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(j.at(-1).request.path).toBe('/checkout');
  });

  it('--body-limit cuts previews and flags them', () => {
    const r = tapwire(['analyze', 'pcaps/http1/large-bodies.pcap', '--format', 'jsonl', '--body-limit', '100']);
    const dl = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((f) => f.request.path === '/download');
    expect(dl.response.bodySize).toBe(1024 * 1024);
    expect(dl.response.bodyTruncated).toBe(true);
    expect(Buffer.from(dl.response.body, dl.response.bodyEncoding === 'base64' ? 'base64' : 'utf8').length).toBeLessThanOrEqual(100);
    // The limit is named where limits are said: the warning, and the summary --stats writes.
    const cut = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((f) => f.request?.bodyTruncated || f.response?.bodyTruncated).length;
    expect(r.stderr).toContain(`limits reached: bodyTruncated ×${cut}`);
    const stats = join(mkdtempSync(join(tmpdir(), 'tapwire-stats-')), 'stats.json');
    tapwire(['analyze', 'pcaps/http1/large-bodies.pcap', '--format', 'jsonl', '--body-limit', '100', '--stats', stats]);
    expect(JSON.parse(readFileSync(stats, 'utf8')).limits).toMatchObject({ bodyTruncated: cut, probeGaveUp: 0 });
  });
});

describe('bad input', () => {
  it('not a capture file: exit 2, one line naming the file and what is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-bad-'));
    const f = join(dir, 'notes.txt');
    writeFileSync(f, 'hello, this is text\n');
    const r = tapwire(['analyze', f]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe(r.stdout.startsWith('TIME') ? r.stdout : '');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(f);
    expect(lines[0]).toMatch(/not a pcap or pcapng file/);
  });

  it('missing file and empty file: exit 2 with the reason', () => {
    const missing = tapwire(['analyze', '/nonexistent/x.pcap']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/\/nonexistent\/x\.pcap: no such file/);
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-bad-'));
    writeFileSync(join(dir, 'empty.pcap'), '');
    const empty = tapwire(['analyze', join(dir, 'empty.pcap')]);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/empty/);
  });

  it('a file cut mid-record: decodes what came before, warns, exits 0', () => {
    const full = readFileSync(KEEPALIVE);
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-cut-'));
    const f = join(dir, 'cut.pcap');
    writeFileSync(f, full.subarray(0, full.length - 50));
    const r = tapwire(['analyze', f, '--format', 'jsonl']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/truncated: it ends inside a record at byte \d+/);
    expect(r.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(5);
  });

  it('--proto: a schema that does not load exits 2 naming the file; a good one decodes gRPC messages to JSON', () => {
    const bad = tapwire(['analyze', 'pcaps/grpc/unary.pcap', '--proto', 'nope.proto']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--proto nope\.proto: no such file or directory/);
    const good = tapwire(['analyze', 'pcaps/grpc/unary.pcap', '--format', 'jsonl', '--proto', 'pcaps/grpc']);
    expect(good.status).toBe(0);
    const first = JSON.parse(good.stdout.split('\n')[0]!);
    expect(first.protocol).toBe('grpc');
    expect(first.request.messages[0].json).toMatchObject({ id: 'ord-00001' });
  });

  it('bad options: exit 2 with the reason', () => {
    expect(tapwire(['analyze', KEEPALIVE, '--format', 'xml']).status).toBe(2);
    const r = tapwire(['analyze', KEEPALIVE, '--body-limit', 'lots']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--body-limit must be a whole number/);
  });
});

describe('tapwire verify', () => {
  it('the demo fails with both founding findings; the JSON contract has kind, severity, summary, evidence, details', () => {
    const r = tapwire(['verify', 'pcaps/demo/demo.pcap', '--format', 'json']);
    expect(r.status).toBe(1);
    const v = JSON.parse(r.stdout);
    expect(v.verdict).toBe('fail');
    for (const f of v.findings) expect(Object.keys(f).sort()).toEqual(['details', 'evidence', 'kind', 'severity', 'summary']);
    const retry = v.findings.find((f: { kind: string }) => f.kind === 'retry');
    expect(retry.details.pattern).toBe('constant');
    expect(retry.details.delaysMs).toHaveLength(3);
    expect(retry.evidence[0]).toMatchObject({ flowId: expect.any(String), frames: [expect.any(Number), expect.any(Number)] });
    const red = v.findings.find((f: { kind: string }) => f.kind === 'redundant-call');
    expect(red.details.count).toBe(12);
  });

  it('the fixed demo passes (exit 0); evidence gaps without errors are inconclusive (exit 3); bad input is 2', () => {
    expect(tapwire(['verify', 'pcaps/demo/demo-fixed.pcap']).status).toBe(0);
    const mid = tapwire(['verify', 'pcaps/http1/mid-stream.pcap', '--format', 'json']);
    expect(mid.status).toBe(3);
    expect(JSON.parse(mid.stdout).reason).toMatch(/incomplete evidence/);
    const bad = tapwire(['verify', '/nonexistent.pcap']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/nonexistent\.pcap: no such file/);
  });

  it('npm start shows the demo flows and then the findings', () => {
    const r = spawnSync('npm', ['start', '--silent'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\/orders\/42/);
    expect(r.stdout).toMatch(/verdict: FAIL/);
    expect(r.stdout).toMatch(/12 identical calls/);
    expect(r.stdout).toMatch(/retries at 0\.2\d s, 0\.2\d s, 0\.2\d s/);
    // It ends with what to try next, and npm echoes no shell fragment as if it were output.
    expect(r.stdout.trimEnd().split('\n').slice(-3)).toEqual([
      '  npx tapwire verify pcaps/demo/demo.pcap --spec examples/specs/demo.yaml',
      '  npx tapwire diff pcaps/demo/demo.pcap pcaps/demo/demo-fixed.pcap',
      '  npx tapwire --help',
    ]);
    expect(r.stdout + r.stderr).not.toMatch(/test \$\?|&& echo/);
  });
});
