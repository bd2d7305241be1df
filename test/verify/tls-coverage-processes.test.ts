import { describe, expect, it } from 'vitest';
import type { FlowRecord, TlsEndProcess, TlsFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { parseSpec, verifyWithSpec } from '../../src/verify/spec/index.js';
import { TLS_NOT_DECRYPTED, tlsCoverageLines, tlsCoverageOf } from '../../src/verify/tls-coverage.js';

/*
 * Issue 17, "Coverage" / "Not decrypted": a wire TLS connection whose ends the agent saw connect
 * and accept carries their processes (TlsFlow.processes); a connection with no decrypted twin is
 * then explained by its ends (the library named), not by the catch-all not-probed. The wire side is
 * real (pcaps/tls/handshake-churn.pcap: six connections to 127.0.0.30:8443, SNI pricing.test); the
 * processes are set as the agent sets them.
 */
const java = (pid: number, end: 'client' | 'server'): TlsEndProcess => ({
  pid, comm: 'java', library: 'java', probed: false, reason: 'unsupported-library', detail: `Java JSSE: libjvm.so mapped (${end})`, cgroupId: 9,
});
const curl: TlsEndProcess = { pid: 77, comm: 'curl', library: 'openssl', probed: true, detail: 'libssl.so.3 mapped' };
const rust: TlsEndProcess = { pid: 88, comm: 'client', library: 'rustls', probed: false, reason: 'unsupported-library', detail: 'rustls in symbols' };
const stripped: TlsEndProcess = { pid: 99, comm: 'blob', library: 'unknown', probed: false, reason: 'stripped-binary', detail: 'blob is stripped' };

async function wire(): Promise<{ all: FlowRecord[]; tls: TlsFlow[] }> {
  const all = (await analyzeFile('pcaps/tls/handshake-churn.pcap')).records!;
  return { all, tls: all.filter((f): f is TlsFlow => f.protocol === 'tls') };
}

describe('TLS coverage names the processes of connections it could not decrypt', () => {
  it('each connection gets its ends\' reason, with the library named, per server, per client and in all', async () => {
    const { all, tls } = await wire();
    tls[0]!.processes = { client: java(500, 'client'), server: java(600, 'server') };
    tls[1]!.processes = { server: java(600, 'server') };
    tls[2]!.processes = { client: rust, server: java(600, 'server') };
    tls[3]!.processes = { client: curl, server: java(600, 'server') };
    tls[4]!.processes = { client: stripped };
    // tls[5]: no processes (an end not on this host, and the other not seen): the old codes.
    const c = tlsCoverageOf(all, { source: 'uprobes' });
    expect(c.notDecrypted.connections).toBe(6);
    expect(c.notDecrypted.reasons).toEqual([
      { code: 'unsupported-library', text: TLS_NOT_DECRYPTED['unsupported-library'], connections: 3, libraries: ['Java JSSE', 'rustls'] },
      { code: 'not-probed', text: TLS_NOT_DECRYPTED['not-probed'], connections: 1 },
      { code: 'probed-no-plaintext', text: TLS_NOT_DECRYPTED['probed-no-plaintext'], connections: 1, libraries: ['OpenSSL'] },
      { code: 'stripped-binary', text: TLS_NOT_DECRYPTED['stripped-binary'], connections: 1 },
    ]);
    expect(c.notDecrypted.processes![0]).toEqual({
      end: 'server', pid: 600, comm: 'java', library: 'java', libraryName: 'Java JSSE', probed: false, reason: 'unsupported-library',
      detail: 'Java JSSE: libjvm.so mapped (server)', connections: 4,
    });
    expect(c.notDecrypted.processes!.map((p) => `${p.end} ${p.comm} ${p.connections}`).sort()).toEqual(['client blob 1', 'client client 1', 'client curl 1', 'client java 1', 'server java 4']);
    const s = c.servers[0]!;
    expect(s.notDecrypted).toMatchObject({ connections: 6, byReason: { 'unsupported-library': 3, 'not-probed': 1, 'probed-no-plaintext': 1, 'stripped-binary': 1 } });
    expect(s.notDecrypted.processes!.find((p) => p.end === 'server')).toMatchObject({ pid: 600, connections: 4 });
    expect(s.clients![0]).toMatchObject({ notDecrypted: 6, libraries: ['Java JSSE', 'OpenSSL', 'rustls'] });
    const text = tlsCoverageLines(c).join('\n');
    expect(text).toContain('not decrypted ×3: unsupported-library [Java JSSE, rustls] (');
    expect(text).toContain('not decrypted ×4 at the server java pid 600 (Java JSSE, not probed: unsupported-library)');
    expect(text).toContain('served by java pid 600 (Java JSSE, not probed: unsupported-library)');
  });

  it('a verdict naming the service is inconclusive, and its reason names the library and the process', async () => {
    const { all, tls } = await wire();
    for (const t of tls) t.processes = { server: java(600, 'server') };
    const spec = parseSpec('version: 1\nservices:\n  pricing: ["127.0.0.30:8443"]\ndetectors:\n  connection-churn: { enabled: false }\n', 's.yaml', '.');
    const v = verifyWithSpec(all, spec);
    expect(v.verdict).toBe('inconclusive');
    // Nothing decrypted, but records naming processes came from an agent with its probes on.
    expect(v.coverage.tls!.uprobes).toBe('attached');
    expect(v.reason).toBe('6 TLS connections to services the spec names were seen but not decrypted, so not judged: pricing 127.0.0.30:8443 (SNI pricing.test): unsupported-library ×6'
      + ` [server java pid 600: Java JSSE] (unsupported-library: ${TLS_NOT_DECRYPTED['unsupported-library']})`);
  });
});
