import { describe, expect, it } from 'vitest';
import type { FlowRecord, HttpFlow, TlsFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { parseSpec, verifyWithSpec } from '../../src/verify/spec/index.js';
import { TLS_NOT_DECRYPTED, tlsConnections, tlsCoverageOf } from '../../src/verify/tls-coverage.js';
import { verdictText } from '../../src/verify/verdict.js';
import { workloadsOf, workloadsText } from '../../src/verify/workloads.js';

/*
 * Issue 17, "Coverage, per workload or process": TLS coverage from records alone. The wire side is
 * real: pcaps/tls/handshake-churn.pcap, a node service (127.0.0.29:8080, called in the clear) that
 * opens a new TLS connection to an https upstream (127.0.0.30:8443, SNI pricing.test) per inbound
 * request, six of each. The decrypted side is synthesized: HTTP records on the same 4-tuples marked
 * as the agent marks records decoded from uprobe plaintext.
 */

const churn = async (): Promise<FlowRecord[]> => (await analyzeFile('pcaps/tls/handshake-churn.pcap')).records!;
const wireOf = (fs: FlowRecord[]) => fs.filter((f): f is TlsFlow => f.protocol === 'tls');

/** What the uprobes would give for wire connection `w`: one exchange on its 4-tuple, inside its span. */
function decrypted(w: TlsFlow, o: { reversed?: boolean; at?: number; pid?: number } = {}): HttpFlow {
  const t = o.at ?? (w.start + w.end) / 2;
  const [src, dst] = o.reversed ? [w.dst, w.src] : [w.src, w.dst];
  return {
    id: `up-${w.connectionId}-1`, protocol: 'http', connectionId: `up-${w.connectionId}`, src: { ...src }, dst: { ...dst },
    start: t, end: t + 0.0005, durationMs: 0.5,
    request: { start: t, end: t, size: 80, headers: { host: 'pricing.test' }, bodySize: 0, method: 'GET', path: '/price', version: '1.1' },
    response: { start: t + 0.0005, end: t + 0.0005, size: 60, headers: {}, bodySize: 2, status: 200, reason: 'OK', version: '1.1' },
    tls: { library: 'openssl', via: 'uprobe', pid: o.pid ?? 4242, comm: 'node' },
  };
}

describe('TLS coverage from a capture file (wire only)', () => {
  it('counts the wire connections with their SNI, the plaintext flows, and says a capture file holds only ciphertext', async () => {
    const fs = await churn();
    const c = tlsCoverageOf(fs, { source: 'capture-file' });
    expect(c).toMatchObject({
      uprobes: 'capture-file', plaintextFlows: 6, wire: { connections: 6 }, decrypted: { connections: 0 },
      notDecrypted: { connections: 6, reasons: [{ code: 'no-uprobes-capture-file', text: 'no uprobes: the capture file holds no decrypted plaintext (only an agent running --tls writes it into its pcap exports), so its TLS is ciphertext only', connections: 6 }] },
      serversOmitted: 0,
    });
    expect(c.servers).toEqual([
      {
        server: '127.0.0.30:8443', plaintextFlows: 0, wire: { connections: 6, snis: ['pricing.test'] }, decrypted: { connections: 0 },
        notDecrypted: { connections: 6, byReason: { 'no-uprobes-capture-file': 6 } },
        clients: [{ client: '127.0.0.29', connections: 6, decrypted: 0, notDecrypted: 6 }],
      },
    ]);
  });

  it('the same records from a source that cannot say what it is: no uprobes seen at work', async () => {
    const c = tlsCoverageOf(await churn());
    expect(c.uprobes).toBe('none-seen');
    expect(c.notDecrypted.reasons).toEqual([{ code: 'no-uprobes', text: TLS_NOT_DECRYPTED['no-uprobes'], connections: 6 }]);
  });

  it('from an agent whose probes are attached: the connections\' ends were not probed, not the agent', async () => {
    const c = tlsCoverageOf(await churn(), { source: 'uprobes' });
    expect(c.uprobes).toBe('attached');
    expect(c.notDecrypted.reasons).toEqual([{ code: 'not-probed', text: TLS_NOT_DECRYPTED['not-probed'], connections: 6 }]);
  });

  it('plaintext over port 443 is plaintext, not TLS', async () => {
    const c = tlsCoverageOf((await analyzeFile('pcaps/tls/http-on-443.pcap')).records!);
    expect(c).toMatchObject({ plaintextFlows: 1, wire: { connections: 0 }, decrypted: { connections: 0 }, servers: [] });
  });
});

describe('wire connections matched to decrypted ones', () => {
  it('a decrypted twin (4-tuple either way round, inside the span) makes a wire connection decrypted; the rest were not probed', async () => {
    const fs = await churn();
    const wire = wireOf(fs);
    const plain = [decrypted(wire[0]!), decrypted(wire[1]!, { reversed: true }), decrypted(wire[2]!, { pid: 777 })];
    const all = [...fs, ...plain];
    const { wire: fates } = tlsConnections(all);
    expect(fates.map((f) => f.decryptedAs ?? f.reason)).toEqual([`up-${wire[0]!.connectionId}`, `up-${wire[1]!.connectionId}`, `up-${wire[2]!.connectionId}`, 'not-probed', 'not-probed', 'not-probed']);
    const c = tlsCoverageOf(all, { since: 1, until: 2e9 });
    expect(c).toMatchObject({
      since: 1, until: 2e9, uprobes: 'seen', plaintextFlows: 6, wire: { connections: 6 }, decrypted: { connections: 3 },
      notDecrypted: { connections: 3, reasons: [{ code: 'not-probed', connections: 3 }] },
    });
    expect(c.notDecrypted.reasons[0]!.text).toMatch(/^its client and server were not probed, and their processes are not known .*: an unsupported library \(rustls, BoringSSL, Java JSSE/);
    expect(c.servers[0]).toEqual({
      server: '127.0.0.30:8443', plaintextFlows: 0, wire: { connections: 6, snis: ['pricing.test'] }, decrypted: { connections: 3 },
      notDecrypted: { connections: 3, byReason: { 'not-probed': 3 } },
      processes: [{ pid: 4242, comm: 'node', library: 'openssl', connections: 2 }, { pid: 777, comm: 'node', library: 'openssl', connections: 1 }],
      clients: [{ client: '127.0.0.29', connections: 6, decrypted: 3, notDecrypted: 3 }],
    });
  });

  it('the same 4-tuple at another time is another connection (a reused port), and a capture file with decrypted records (a snapshot) judges by them', async () => {
    const fs = await churn();
    const w = wireOf(fs)[0]!;
    const late = decrypted(w, { at: w.end + 60 });
    const { wire: fates, decrypted: d } = tlsConnections([...fs, late], 'capture-file');
    expect(fates[0]!.reason).toBe('not-probed');
    expect(d.size).toBe(1);
    // Decrypted without a wire twin (the capture missed the handshake): counted decrypted, under its server.
    const c = tlsCoverageOf([late]);
    expect(c).toMatchObject({ wire: { connections: 0 }, decrypted: { connections: 1 }, notDecrypted: { connections: 0, reasons: [] }, plaintextFlows: 0 });
    expect(c.servers[0]!.clients).toEqual([{ client: '127.0.0.29', connections: 1, decrypted: 1, notDecrypted: 0 }]);
  });

  it('servers are named by workload where identities name them, with plaintext flows to them', async () => {
    const fs = await churn();
    for (const f of fs) for (const p of [f.src, f.dst]) {
      if (p.ip === '127.0.0.30') Object.assign(p, { namespace: 'shop', workload: 'pricing', name: 'pricing-0', node: 'n1' });
      if (p.ip === '127.0.0.29') Object.assign(p, { namespace: 'shop', workload: 'quote', name: 'quote-0', node: 'n1' });
    }
    const c = tlsCoverageOf(fs);
    expect(c.servers.map((s) => [s.server, s.namespace, s.workload, s.wire.connections, s.plaintextFlows])).toEqual([['shop/pricing', 'shop', 'pricing', 6, 0]]);
    // Which caller's TLS was not read, by its workload.
    expect(c.servers[0]!.clients).toEqual([{ client: 'shop/quote', connections: 6, decrypted: 0, notDecrypted: 6 }]);
    // list_workloads and /api/workloads: the field is kept, now filled, and each server workload carries its own.
    const a = workloadsOf(fs, { undecoded: undefined });
    expect(a.tls).toMatchObject({ wire: { connections: 6 }, notDecrypted: { connections: 6 } });
    const pricing = a.nodes[0]!.workloads.find((w) => w.workload === 'pricing')!;
    const quote = a.nodes[0]!.workloads.find((w) => w.workload === 'quote')!;
    expect(pricing.tls).toMatchObject({ server: 'shop/pricing', wire: { connections: 6, snis: ['pricing.test'] }, notDecrypted: { byReason: { 'no-uprobes': 6 } } });
    expect(quote.tls).toBeUndefined();
    const text = workloadsText(a);
    expect(text).toContain('shop/pricing: 6 flows (tls 6), 0 incomplete; TLS 6 on the wire (SNI pricing.test), 0 decrypted, 6 not decrypted (no-uprobes 6, from shop/quote ×6); 0 plaintext flows; pods pricing-0');
    expect(text).toContain('TLS: 6 connections on the wire, 0 decrypted, 6 not decrypted; 6 plaintext flows\n  not decrypted ×6: no-uprobes (');
    // No TLS at all: tls stays null and the note says so.
    const none = workloadsOf(fs.filter((f) => f.protocol !== 'tls'));
    expect(none.tls).toBeNull();
    expect(none.tlsNote).toMatch(/^no TLS connection in this window/);
  });
});

describe('every verdict\'s coverage carries TLS; a spec naming a service whose TLS was not read is inconclusive', () => {
  const spec = (named: string) => parseSpec(`version: 1\nservices:\n  pricing: ["${named}"]\ndetectors:\n  connection-churn: { enabled: false }\n`, 's.yaml', '.');

  it('wire TLS to the named service, not decrypted: inconclusive, with the code and the words', async () => {
    const fs = await churn();
    const v = verifyWithSpec(fs, spec('127.0.0.30:8443'));
    expect(v.verdict).toBe('inconclusive');
    expect(v.reason).toBe('6 TLS connections to services the spec names were seen but not decrypted, so not judged: pricing 127.0.0.30:8443 (SNI pricing.test): no-uprobes ×6'
      + ` (no-uprobes: ${TLS_NOT_DECRYPTED['no-uprobes']})`);
    expect(v.coverage.tls).toMatchObject({ wire: { connections: 6 }, notDecrypted: { connections: 6 } });
    expect(verdictText(v)).toContain('\n  TLS: 6 connections on the wire, 0 decrypted, 6 not decrypted; 6 plaintext flows\n');
  });

  it('every connection decrypted: the TLS does not stand in the way of a pass', async () => {
    const fs = await churn();
    const v = verifyWithSpec([...fs, ...wireOf(fs).map((w) => decrypted(w))], spec('127.0.0.30:8443'));
    expect(v.verdict).toBe('pass');
    expect(v.coverage.tls).toMatchObject({ decrypted: { connections: 6 }, notDecrypted: { connections: 0 } });
  });

  it('TLS to a service the spec does not name is in the coverage but changes nothing; flows without TLS have no tls coverage', async () => {
    const fs = await churn();
    const v = verifyWithSpec(fs, spec('10.9.9.9:443'));
    expect(v.verdict).toBe('pass');
    expect(v.coverage.tls!.notDecrypted.connections).toBe(6);
    expect(verifyWithSpec(fs.filter((f) => f.protocol !== 'tls'), spec('127.0.0.30:8443')).coverage.tls).toBeUndefined();
  });

  it('over a capture file, the encrypted servers its decode coverage lists are said once, with the TLS reason', async () => {
    const r = await analyzeFile('pcaps/tls/handshake-churn.pcap');
    const undecoded = r.pipeline.coverage();
    expect(undecoded.encryptedConnections).toBe(6);
    const v = verifyWithSpec(r.records!, spec('127.0.0.30:8443'), undefined, undecoded);
    expect(v.verdict).toBe('inconclusive');
    expect(v.reason).toBe('6 TLS connections to services the spec names were seen but not decrypted, so not judged: pricing 127.0.0.30:8443 (SNI pricing.test): no-uprobes-capture-file ×6'
      + ' (no-uprobes-capture-file: no uprobes: the capture file holds no decrypted plaintext (only an agent running --tls writes it into its pcap exports), so its TLS is ciphertext only)');
    expect(v.coverage.tls!.uprobes).toBe('capture-file');
  });
});
