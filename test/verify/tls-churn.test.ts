import { describe, expect, it } from 'vitest';
import type { FlowRecord, HttpFlow, TlsFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { runDetector } from '../../src/verify/detectors.js';

/** Inbound request i to the checkout service (10.0.0.1:8080) from the test driver, 0.5 s long. */
function inbound(i: number): HttpFlow {
  return {
    id: `in${i}-1`, protocol: 'http', connectionId: `in${i}`, src: { ip: '10.0.0.5', port: 50000 + i }, dst: { ip: '10.0.0.1', port: 8080 },
    start: i, end: i + 0.5, durationMs: 500,
    request: { start: i, end: i, size: 40, headers: {}, bodySize: 0, method: 'POST', path: '/checkout', version: '1.1' },
    response: { start: i + 0.5, end: i + 0.5, size: 30, headers: {}, bodySize: 0, status: 200, reason: 'OK', version: '1.1' },
  };
}

/** A TLS connection the service opened and closed while handling request i. */
function handshake(i: number, resumed: boolean): TlsFlow {
  return {
    id: `tls${i}-1`, protocol: 'tls', connectionId: `tls${i}`, src: { ip: '10.0.0.1', port: 41000 + i }, dst: { ip: '10.0.0.9', port: 443 },
    start: i + 0.1, end: i + 0.3, durationMs: 200,
    request: { start: i + 0.1, end: i + 0.1, size: 300, legacyVersion: 'TLS 1.2', versions: ['TLS 1.3'], sni: 'pay.example', ciphers: ['1301'], extensions: [0, 43], sessionIdLength: 32, ja4: 't13d010200_000000000000_000000000000' },
    response: { start: i + 0.11, end: i + 0.11, size: 90, version: 'TLS 1.3', cipher: 'TLS_AES_128_GCM_SHA256', resumed },
    handshakeMs: 12, bytes: { toServer: 500, toClient: 900 },
  };
}

const churn = (fs: FlowRecord[]) => runDetector('connection-churn', fs).filter((f) => f.details.cause === 'tls-handshake-per-call');

describe('connection-churn: TLS handshakes per inbound request', () => {
  it('a full TLS handshake for every inbound request to the same server is a finding', () => {
    const fs = [0, 1, 2, 3, 4, 5].flatMap((i) => [inbound(i), handshake(i, false)]);
    const [f, ...rest] = churn(fs);
    expect(rest).toEqual([]);
    expect(f!.details).toMatchObject({ count: 6, full: 6, resumed: 0, inbound: 6, meanHandshakeMs: 12 });
    expect(f!.summary).toBe('10.0.0.1 made 6 TLS handshakes with 10.0.0.9:443 (pay.example) while handling 6 inbound requests: 6 full, 0 resumed (1.0 full handshakes per request); a handshake took 12.00 ms on average');
    expect(f!.evidence).toHaveLength(6);
    // The handshakes are not also counted as TCP connections per call.
    expect(runDetector('connection-churn', fs).filter((x) => x.details.cause === 'new-connection-per-call')).toEqual([]);
  });

  it('resumed handshakes (a session cache) are counted but not a finding', () => {
    const fs = [0, 1, 2, 3, 4, 5].flatMap((i) => [inbound(i), handshake(i, i > 0)]);
    expect(churn(fs)).toEqual([]);
  });

  it('below the minimum number of calls, nothing', () => {
    expect(churn([0, 1, 2].flatMap((i) => [inbound(i), handshake(i, false)]))).toEqual([]);
  });

  it('recorded: a node service calling an https upstream with a new Agent per inbound request (pcaps/tls/handshake-churn.pcap)', async () => {
    const fs = (await analyzeFile('pcaps/tls/handshake-churn.pcap')).records!;
    const [f, ...rest] = churn(fs);
    expect(rest).toEqual([]);
    expect(f!.details).toMatchObject({ count: 6, full: 6, resumed: 0, inbound: 6 });
    expect(f!.summary).toMatch(/^127\.0\.0\.29 made 6 TLS handshakes with 127\.0\.0\.30:8443 \(pricing\.test\) while handling 6 inbound requests: 6 full, 0 resumed/);
    expect(f!.evidence[0]!.summary).toMatch(/^TLS 1\.3 on connection [0-9a-f]{12}, full handshake, [\d.]+ ms$/);
  });

  it('a test driver\'s own handshakes (no inbound request) are not judged: recorded node-https', async () => {
    const fs = (await analyzeFile('pcaps/tls/node-https.pcap')).records!;
    expect(fs.filter((r) => r.protocol === 'tls')).toHaveLength(3);
    expect(churn(fs)).toEqual([]);
  });
});
