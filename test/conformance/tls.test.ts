/**
 * TLS handshake conformance against tshark (run here, 4.0.17 or later): for every capture with a
 * ClientHello — this repository's recordings in pcaps/tls/ and, when ../shared/pcaps is there, the
 * third-party ones (arkime/tls-alpn-h2.pcap; zeek/postgresql/psql-aws-ssl-require.pcap, whose TLS
 * starts after a PostgreSQL SSLRequest and is out of scope: it must give no tls record) — each TLS
 * record is compared, per client endpoint, with tshark's first ClientHello and last ServerHello
 * that is not a HelloRetryRequest: SNI, ALPN offered, cipher suites, supported_versions, extension
 * types, signature algorithms, session id length; the chosen cipher suite, version and ALPN. tshark
 * 4.0 has no JA4 field, so JA4 is checked against the spec's examples in test/protocols/tls/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TlsFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT, REPO_ROOT } from './oracle.js';

const HAVE_TSHARK = (() => {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

if (!HAVE_TSHARK) console.warn('test/conformance/tls.test.ts: tshark not found: TLS conformance skipped');
if (!PCAPS_PRESENT) console.warn(`test/conformance/tls.test.ts: only pcaps/tls compared: ${PCAPS_MISSING_REASON}`);

const OWN = readdirSync(path.join(REPO_ROOT, 'pcaps/tls')).filter((f) => f.endsWith('.pcap')).map((f) => path.join(REPO_ROOT, 'pcaps/tls', f));
// psql-aws-ssl-require: TLS after PostgreSQL's SSLRequest and the server's 'S' (the postgres session hands over).
const SHARED = ['arkime/tls-alpn-h2.pcap', 'zeek/postgresql/psql-aws-ssl-require.pcap'].map((f) => path.join(PCAP_DIR, f)).filter((f) => PCAPS_PRESENT && existsSync(f));
/** TLS after a PostgreSQL SSLRequest: the postgres analyzer keeps the connection, no tls record. */
const PG_SSL = path.join(PCAP_DIR, 'zeek/postgresql/psql-aws-ssl-require.pcap');

const HRR = 'cf:21:ad:74:e5:9a:61:11:be:1d:8c:02:1e:65:b8:91:c2:a2:11:16:7a:bb:8c:5e:07:9e:09:e2:c8:a8:33:9c';

function tshark(file: string, filter: string, fields: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,',
    ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t'));
}

interface Hello {
  sni: string;
  alpn: string;
  ciphers: string;
  versions: string;
  extensions: string;
  sigs: string;
  sid: string;
}

/** The first ClientHello and the last real ServerHello per client endpoint ("ip:port"), as tshark shows them. */
function oracle(file: string): { ch: Map<string, Hello>; sh: Map<string, { cipher: string; version: string; alpn: string }> } {
  const ch = new Map<string, Hello>();
  for (const [ip, ip6, port, sni = '', alpn = '', ciphers = '', versions = '', extensions = '', sigs = '', sid = ''] of tshark(file, 'tls.handshake.type == 1',
    ['ip.src', 'ipv6.src', 'tcp.srcport', 'tls.handshake.extensions_server_name', 'tls.handshake.extensions_alpn_str', 'tls.handshake.ciphersuite',
      'tls.handshake.extensions.supported_version', 'tls.handshake.extension.type', 'tls.handshake.sig_hash_alg', 'tls.handshake.session_id_length'])) {
    const key = `${ip || ip6}:${port}`;
    if (!ch.has(key)) ch.set(key, { sni, alpn, ciphers, versions, extensions, sigs, sid });
  }
  const sh = new Map<string, { cipher: string; version: string; alpn: string }>();
  for (const [ip, ip6, port, random = '', cipher = '', version = '', alpn = ''] of tshark(file, 'tls.handshake.type == 2',
    ['ip.dst', 'ipv6.dst', 'tcp.dstport', 'tls.handshake.random', 'tls.handshake.ciphersuite', 'tls.handshake.extensions.supported_version', 'tls.handshake.extensions_alpn_str'])) {
    if (random === HRR) continue;
    sh.set(`${ip || ip6}:${port}`, { cipher, version, alpn });
  }
  return { ch, sh };
}

const hx = (s: string): string => `0x${s}`;
const VERSIONS: Record<string, string> = { 'TLS 1.3': '0x0304', 'TLS 1.2': '0x0303', 'TLS 1.1': '0x0302', 'TLS 1.0': '0x0301' };

describe.skipIf(!HAVE_TSHARK)('TLS handshakes against tshark', () => {
  for (const file of [...OWN, ...SHARED]) {
    const name = path.relative(REPO_ROOT, file);
    it(name, async () => {
      const { records, pipeline } = await analyzeFile(file);
      const tls = records!.filter((r): r is TlsFlow => r.protocol === 'tls');
      const o = oracle(file);
      expect(tls.length, 'one tls record per connection with a ClientHello').toBe(o.ch.size);
      expect(pipeline.violations.total).toBe(0);
      for (const r of tls) {
        const key = `${r.src.ip}:${r.src.port}`;
        const c = o.ch.get(key), q = r.request!;
        expect(c, `${key}: tshark saw its ClientHello`).toBeDefined();
        expect(q.sni ?? '', `${key} sni`).toBe(c!.sni);
        expect((q.alpn ?? []).join(','), `${key} alpn offered`).toBe(c!.alpn);
        expect(q.ciphers.map(hx).join(','), `${key} cipher suites`).toBe(c!.ciphers);
        expect(q.extensions.join(','), `${key} extension types`).toBe(c!.extensions);
        expect((q.signatureAlgorithms ?? []).map(hx).join(','), `${key} signature algorithms`).toBe(c!.sigs);
        expect(String(q.sessionIdLength), `${key} session id length`).toBe(c!.sid);
        // tapwire leaves GREASE out of `versions`; tshark lists them.
        const tv = c!.versions.split(',').filter((v) => v && !/^0x([0-9a-f])a\1a$/.test(v)).join(',');
        expect((q.versions ?? []).map((v) => VERSIONS[v] ?? v).join(','), `${key} supported_versions`).toBe(tv);
        const s = o.sh.get(key);
        if (!s) {
          expect(r.response, `${key}: no ServerHello in tshark either`).toBeUndefined();
          continue;
        }
        const p = r.response!;
        expect(p, `${key}: ServerHello`).toBeDefined();
        expect(r.incomplete, `${key} complete`).toBeUndefined();
        const cipherCode = p.cipher.startsWith('0x') ? p.cipher : undefined;
        if (cipherCode) expect(cipherCode).toBe(s.cipher);
        else expect(p.cipher, `${key}: a named cipher`).toMatch(/^TLS_/);
        if (s.version) expect(VERSIONS[p.version], `${key} version`).toBe(s.version);
        expect(p.alpn ?? '', `${key} alpn chosen`).toBe(s.alpn);
      }
    });
  }

  it.skipIf(!PCAPS_PRESENT || !existsSync(PG_SSL))('TLS after a PostgreSQL SSLRequest: the connection is one tls record, to the PostgreSQL port, with the SNI the client sent', async () => {
    const { records } = await analyzeFile(PG_SSL);
    expect(records!.map((r) => r.protocol)).toEqual(['tls']);
    const r = records![0]! as TlsFlow;
    expect(r.dst.port).toBe(5432);
    expect(r.request?.sni).toBe(oracle(PG_SSL).ch.values().next().value!.sni);
  });
});
