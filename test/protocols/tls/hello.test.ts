import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseClientHello, parseServerHello } from '../../../src/protocols/tls/hello.js';
import { ja4 } from '../../../src/protocols/tls/ja4.js';
import { probeTls } from '../../../src/protocols/tls/probe.js';
import { CH, SH, alpn, clientHelloBody, empty, ext, serverHelloBody, sigAlgs, sni, u16, vec, versions } from './build.js';

function ch(body: Buffer) {
  const r = parseClientHello(body);
  if ('error' in r) throw new Error(`${r.error} at ${r.offset}`);
  return r.ok;
}

/**
 * FoxIO's JA4 specification (technical_details/JA4.md) works one ClientHello through: its
 * JA4_ro lists the cipher suites, extensions and signature algorithms in the order sent, and its
 * JA4 is t13d1516h2_8daaf6152771_e5627efa2ab1. The hello is rebuilt here from those lists.
 */
const SPEC_CIPHERS = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035];
const SPEC_EXTS = [0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015];
const SPEC_SIGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];

function specHello(grease: boolean): Buffer {
  const exts = SPEC_EXTS.map((t) => {
    switch (t) {
      case 0x0000: return sni('example.com');
      case 0x0010: return alpn('h2', 'http/1.1');
      case 0x000d: return sigAlgs(...(grease ? [0x0a0a] : []), ...SPEC_SIGS);
      case 0x002b: return versions(...(grease ? [0x3a3a] : []), 0x0304, 0x0303);
      default: return empty(t);
    }
  });
  if (grease) {
    exts.unshift(empty(0x2a2a));
    exts.push(ext(0xfafa, Buffer.alloc(1)));
  }
  return clientHelloBody({ ciphers: [...(grease ? [0x1a1a] : []), ...SPEC_CIPHERS], extensions: exts });
}

describe('JA4 (FoxIO specification)', () => {
  it("the specification's example: t13d1516h2_8daaf6152771_e5627efa2ab1", () => {
    expect(ja4(ch(specHello(false)))).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
  });

  it('GREASE (RFC 8701) anywhere changes nothing: counts and hashes skip it', () => {
    expect(ja4(ch(specHello(true)))).toBe('t13d1516h2_8daaf6152771_e5627efa2ab1');
  });

  it('no SNI is "i", no ALPN is "00", TLS 1.2 without supported_versions is "12"', () => {
    const f = ja4(ch(clientHelloBody({ ciphers: [0xc02f, 0x009c], extensions: [empty(0x0017)] })));
    expect(f.slice(0, 10)).toBe('t12i020100');
  });

  it('no signature algorithms: the extension hash has no "_" part; no extensions at all: twelve zeros', () => {
    const a = ch(clientHelloBody({ ciphers: [0x1301], extensions: [empty(0x0017)] }));
    expect(ja4(a).split('_')[2]).toMatch(/^[0-9a-f]{12}$/);
    const none = ja4(ch(clientHelloBody({ ciphers: [0x1301], noExtensions: true })));
    expect(none.split('_')[2]).toBe('000000000000');
  });

  it('ALPN: first and last character; one character twice; hex digits when not alphanumeric', () => {
    const withAlpn = (...n: string[]) => ja4(ch(clientHelloBody({ ciphers: [0x1301], extensions: [alpn(...n)] }))).slice(8, 10);
    expect(withAlpn('http/1.1')).toBe('h1');
    expect(withAlpn('h')).toBe('hh');
    expect(withAlpn('\u00ab\u00ab')).toBe('cb'); // UTF-8 c2 ab c2 ab
    expect(withAlpn('x~')).toBe('7e');
  });
});

describe('ClientHello and ServerHello parsers', () => {
  it('reads a ClientHello without extensions (RFC 5246 §7.4.1.2 allows none)', () => {
    expect(ch(clientHelloBody({ ciphers: [0x002f], noExtensions: true }))).toMatchObject({ ciphers: [0x002f], extensions: [] });
  });

  it('names that are not printable ASCII are escaped, never trusted', () => {
    expect(ch(clientHelloBody({ ciphers: [0x1301], extensions: [sni('a\nb\\c')] })).sni).toBe('a\\x0ab\\x5cc');
  });

  it('reports, with an offset, what is wrong', () => {
    const cut = clientHelloBody({ ciphers: [0x1301], extensions: [sni('x.test')] });
    const r = parseClientHello(cut.subarray(0, cut.length - 2));
    expect(r).toMatchObject({ error: expect.stringContaining('extension') });
    const sh = serverHelloBody({ cipher: 0x1301, extensions: [ext(16, vec(2, vec(1, Buffer.from('h2')), vec(1, Buffer.from('h3'))))] });
    expect(parseServerHello(sh)).toMatchObject({ error: expect.stringContaining('ALPN') });
  });

  it('round trip under fast-check: SNI, ALPN, suites and signature algorithms come back as built', () => {
    const label = fc.stringMatching(/^[a-z0-9.-]{1,40}$/);
    fc.assert(fc.property(label, fc.array(fc.stringMatching(/^[a-z0-9/.]{1,12}$/), { minLength: 1, maxLength: 5 }), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 20 }), (host, names, ciphers, sigs) => {
        const c = ch(clientHelloBody({ ciphers, extensions: [sni(host), alpn(...names), sigAlgs(...sigs)] }));
        expect(c.sni).toBe(host);
        expect(c.alpn).toEqual(names);
        expect(c.ciphers).toEqual(ciphers);
        expect(c.signatureAlgorithms).toEqual(sigs);
        expect(ja4(c)).toMatch(/^t[0-9s][0-9]d[0-9]{4}[0-9a-z/.]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/);
      }), { numRuns: 300 });
  });

  it('never throws on arbitrary bytes (fast-check)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      const buf = Buffer.from(b);
      const a = parseClientHello(buf), s = parseServerHello(buf);
      if ('ok' in a) ja4(a.ok);
      expect('ok' in s || 'error' in s).toBe(true);
    }), { numRuns: 2000 });
  });
});

describe('TLS probe (content, not port)', () => {
  const hello = CH({ ciphers: [0x1301], extensions: [sni('p.test')] });

  it('a ClientHello from the client matches; from the other side it reverses', () => {
    expect(probeTls(0, hello)).toBe('match');
    expect(probeTls(1, hello)).toBe('reverse');
  });

  it('asks for more until the legacy_version is in, and every prefix agrees', () => {
    for (let n = 0; n < 11; n++) expect(probeTls(0, hello.subarray(0, n)), `${n} bytes`).toBe('more');
    for (let n = 11; n <= hello.length; n++) expect(probeTls(0, hello.subarray(0, n))).toBe('match');
  });

  it('not TLS: HTTP, SSH, a ServerHello first, an application_data record, a record too long', () => {
    expect(probeTls(0, Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBe('no');
    expect(probeTls(0, Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))).toBe('no');
    expect(probeTls(1, SH({ cipher: 0x1301 }))).toBe('no');
    expect(probeTls(0, Buffer.from([23, 3, 3, 0, 10, 1, 2, 3, 4, 5, 6, 7]))).toBe('no');
    expect(probeTls(0, Buffer.concat([Buffer.from([22, 3, 1, 0xff, 0xff]), u16(0x0100)]))).toBe('no');
  });
});
