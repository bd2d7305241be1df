import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord } from '../../src/store/codec.js';
import { Redactor } from '../../src/flows/redact.js';
import { loadRedactKey } from '../../src/pipeline/redact-key.js';
import { decodeContent, preview } from '../../src/flows/body.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { gzipSync, deflateRawSync, brotliCompressSync } from 'node:zlib';
import type { FlowRecord, HttpFlow } from '../../src/flows/record.js';

describe('msgpackr codec', () => {
  it('round-trips every record of a real capture exactly', async () => {
    const { records } = await analyzeFile('pcaps/http1/keepalive.pcap');
    const more = (await analyzeFile('pcaps/http1/expect-100.pcap')).records!;
    for (const r of [...records!, ...more]) expect(decodeRecord(encodeRecord(r))).toEqual(r);
  });

  it('keeps absent halves absent (never null)', () => {
    const r: FlowRecord = { id: 'a-1', protocol: 'http', connectionId: 'a', src: { ip: '1.2.3.4', port: 1 }, dst: { ip: '5.6.7.8', port: 80 }, start: 1.5, end: 2.25, durationMs: 750, incomplete: true, incompleteReason: 'no-response' };
    const back = decodeRecord(encodeRecord(r));
    expect('response' in back).toBe(false);
    expect(back).toEqual(r);
  });
});

describe('redaction', () => {
  const red = new Redactor({ key: Buffer.from('k'), headers: ['X-Session-Token'] });
  const rec = (): HttpFlow => ({
    id: 'a-1', protocol: 'http', connectionId: 'a', src: { ip: '1.1.1.1', port: 1 }, dst: { ip: '2.2.2.2', port: 80 }, start: 0, end: 0, durationMs: 0,
    request: {
      method: 'POST', path: '/login?api_key=abc&page=2&Signature=zz', version: '1.1', start: 0, end: 0, size: 0, bodySize: 0,
      headers: { authorization: 'Basic dXNlcjpwYXNz', 'x-session-token': 'tok', cookie: 'a=1; b=2', 'content-type': 'application/json', accept: '*/*' },
      body: JSON.stringify({ user: 'u', password: 'p', nested: { refreshToken: 'r', keep: 'k' }, list: [{ secret: 's' }] }),
    },
    response: { status: 200, reason: 'OK', version: '1.1', start: 0, end: 0, size: 0, bodySize: 0, headers: { 'set-cookie': 'sid=xyz; Path=/; HttpOnly\nother=1' } },
  });

  it('covers headers, extra header names, query parameters and JSON fields, keeping names visible', () => {
    const r = rec();
    red.record(r);
    const h = r.request!.headers;
    expect(h.authorization).toMatch(/^Basic \[redacted:[0-9a-f]{12}\]$/);
    expect(h['x-session-token']).toMatch(/^\[redacted:/);
    expect(h.cookie).toMatch(/^a=\[redacted:[0-9a-f]{12}\]; b=\[redacted:[0-9a-f]{12}\]$/);
    expect(h.accept).toBe('*/*');
    expect(r.request!.path).toMatch(/^\/login\?api_key=\[redacted:[0-9a-f]{12}\]&page=2&Signature=\[redacted:[0-9a-f]{12}\]$/);
    const body = JSON.parse(r.request!.body!);
    expect(body.user).toBe('u');
    expect(body.password).toMatch(/^\[redacted:/);
    expect(body.nested.refreshToken).toMatch(/^\[redacted:/);
    expect(body.nested.keep).toBe('k');
    expect(body.list[0].secret).toMatch(/^\[redacted:/);
    expect(r.response!.headers['set-cookie']).toMatch(/^sid=\[redacted:[0-9a-f]{12}\]; Path=\/; HttpOnly\nother=\[redacted:/);
  });

  it('the same secret gives the same token; another key gives another', () => {
    expect(red.token('s3cret')).toBe(red.token('s3cret'));
    expect(red.token('s3cret')).not.toBe(red.token('s3cret2'));
    expect(new Redactor({ key: Buffer.from('other') }).token('s3cret')).not.toBe(red.token('s3cret'));
  });

  it('a cut-off JSON body is still redacted textually', () => {
    const r = rec();
    r.request!.body = '{"user":"u","password":"hunter2","note":"cut he';
    red.record(r);
    expect(r.request!.body).not.toContain('hunter2');
    expect(r.request!.body).toMatch(/"password":"\[redacted:[0-9a-f]{12}\]"/);
  });

  it('the key file is created once with mode 0600 and reused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-key-'));
    const a = loadRedactKey({ XDG_CONFIG_HOME: dir });
    const b = loadRedactKey({ XDG_CONFIG_HOME: dir });
    expect(a.key.equals(b.key)).toBe(true);
    const file = join(dir, 'tapwire', 'redact.key');
    expect(a.source).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toBe(a.key.toString('hex'));
    expect(loadRedactKey({ TAPWIRE_REDACT_KEY: 'x' }).source).toBe('TAPWIRE_REDACT_KEY');
  });

  it('an unwritable config directory falls back to a per-run key with a warning', () => {
    // A regular file where the config directory should be: mkdir fails with ENOTDIR.
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-key-'));
    const blocker = join(dir, 'file');
    writeFileSync(blocker, 'not a directory');
    const k = loadRedactKey({ XDG_CONFIG_HOME: blocker });
    expect(k.source).toBe('ephemeral');
    expect(k.warning).toMatch(/TAPWIRE_REDACT_KEY/);
  });
});

describe('body previews', () => {
  const text = JSON.stringify({ a: 'x'.repeat(500) });
  it('undoes gzip, zlib and raw deflate, br, and stacked codings', () => {
    expect(preview(gzipSync(text), 'gzip', 4096).body).toBe(text);
    expect(preview(deflateRawSync(text), 'deflate', 4096).body).toBe(text);
    expect(preview(brotliCompressSync(text), 'br', 4096).body).toBe(text);
    expect(preview(gzipSync(gzipSync(text)), 'gzip, gzip', 4096).body).toBe(text);
  });
  it('a compressed body cut by the capture limit still previews its start', () => {
    const big = 'line of text\n'.repeat(5000);
    const z = gzipSync(big);
    const p = preview(z.subarray(0, Math.floor(z.length / 2)), 'gzip', 1 << 20);
    expect(p.body && big.startsWith(p.body) && p.body.length > 1000).toBe(true);
  });
  it('binary bodies are base64; a bad coding is reported, not thrown', () => {
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    expect(preview(bin, undefined, 100)).toEqual({ body: bin.toString('base64'), bodyEncoding: 'base64' });
    const bad = decodeContent(Buffer.from('not gzip'), 'gzip', 100);
    expect(bad.error).toMatch(/gzip decoding failed/);
    expect(preview(Buffer.from('x'), 'compress', 100).bodyDecodeError).toMatch(/unsupported content-encoding "compress"/);
  });
});
