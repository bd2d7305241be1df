import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { CoverageServer, DecodeCoverage } from '../../src/pipeline/coverage.js';
import { DETECTOR_KINDS } from '../../src/verify/config.js';
import { loadSpecFile, namedServices, parseSpec, verifyWithSpec } from '../../src/verify/spec/index.js';
import { MAX_UNDECODED_LISTED, unjudged, verdictText, verify } from '../../src/verify/verdict.js';

/*
 * Issue 12 items 4 and 5: a verdict says what it judged (`summary`, pass included), lists what
 * its source saw but did not decode (`coverage.undecoded`), and a pass over traffic to a service
 * the spec names that was not decoded is inconclusive.
 */

const flowsOf = async (file: string) => (await analyzeFile(file)).records!;
const fixed: Promise<FlowRecord[]> = flowsOf('pcaps/demo/demo-fixed.pcap');
const demoSpec = loadSpecFile('examples/specs/demo.yaml');

function coverage(servers: (Omit<CoverageServer, 'transport'> & { transport?: 'tcp' | 'udp' })[], o: Partial<DecodeCoverage> = {}): DecodeCoverage {
  const full = servers.map((s) => ({ transport: 'tcp' as const, ...s }));
  const byReason: Record<string, number> = {};
  const udpByReason: Record<string, number> = {};
  for (const s of full) (s.transport === 'udp' ? udpByReason : byReason)[s.reason] = ((s.transport === 'udp' ? udpByReason : byReason)[s.reason] ?? 0) + s.connections;
  return {
    connections: full.filter((s) => s.transport === 'tcp').reduce((n, s) => n + s.connections, 0),
    udpFlows: full.filter((s) => s.transport === 'udp').reduce((n, s) => n + s.connections, 0),
    byReason, udpByReason, emptyConnections: 0, servers: full, serversOmitted: 0, ...o,
  };
}

/** Every detector runs unless a spec switches it off. */
const ALL = DETECTOR_KINDS.length;

describe('every verdict says what it judged (summary)', () => {
  it('a pass: flows by protocol, inbound requests and their downstream calls, detectors and spec checks run', async () => {
    const v = verifyWithSpec(await fixed, await demoSpec);
    expect(v.verdict).toBe('pass');
    expect(v.summary).toBe(`judged 18 flows (http 17, postgres 1); 2 inbound requests made 5 downstream calls; ${ALL} detectors and 7 spec checks ran`);
    expect(verdictText(v)).toMatch(/^verdict: PASS\n {2}judged 18 flows \(http 17, postgres 1\); .* ran\n/);
  });

  it('without a spec, with detectors switched off, with no flows, with one flow: counted right, in the singular for one', async () => {
    const flows = await fixed;
    expect(verify(flows).summary).toMatch(new RegExp(`; ${ALL} detectors ran \\(no spec\\)$`));
    const off = parseSpec('version: 1\ndetectors:\n  slow: { enabled: false }\n  cache: { enabled: false }\n', 'off.yaml', '.');
    expect(verifyWithSpec(flows, off).summary).toMatch(new RegExp(`; ${ALL - 2} detectors and 0 spec checks ran$`));
    expect(verify([]).summary).toBe(`judged 0 flows; no downstream calls attributed to inbound requests; ${ALL} detectors ran (no spec)`);
    expect(verify([flows[0]!]).summary).toMatch(/^judged 1 flow \((http|postgres) 1\); /);
  });

  it('a failing verdict has one too, and the JSON always carries it as a string', async () => {
    const v = verifyWithSpec(await flowsOf('pcaps/demo/demo.pcap'), await demoSpec);
    expect(v.verdict).toBe('fail');
    expect(JSON.parse(JSON.stringify(v)).summary).toMatch(new RegExp(`^judged 29 flows \\(http 17, postgres 12\\); \\d+ inbound requests made \\d+ downstream calls; ${ALL} detectors and 7 spec checks ran$`));
  });

  it('a verdict on flows that were not judged still says so, in the same shape', () => {
    const v = unjudged(4, 'cancelled: the traffic was not verified', coverage([{ ip: '10.0.0.5', port: 443, reason: 'tls', connections: 2 }]));
    expect(v).toMatchObject({ verdict: 'inconclusive', summary: 'nothing was judged (4 flows read); 2 connections not decoded (tls 2)', coverage: { flows: 4, undecoded: { connections: 2 } } });
  });
});

describe('coverage.undecoded: what the source saw but did not decode', () => {
  it('is absent when the source cannot say (flows from an agent\'s API)', async () => {
    expect(verify(await fixed).coverage).not.toHaveProperty('undecoded');
  });

  it('lists connections and UDP flows by reason, and their servers by address (IPv6 in brackets), named where the spec names them', async () => {
    const cov = coverage([
      { ip: '127.0.0.3', port: 8081, reason: 'tls', connections: 3 },
      { ip: '::1', port: 6379, reason: 'redis', connections: 1 },
      { ip: '10.0.0.53', port: 53, reason: 'dns', connections: 2, transport: 'udp' },
    ]);
    const v = verifyWithSpec(await fixed, undefined, undefined, cov);
    expect(v.coverage.undecoded).toEqual({
      connections: 4, udpFlows: 2, byReason: { tls: 3, redis: 1 }, udpByReason: { dns: 2 }, serversOmitted: 0,
      servers: [
        { server: '127.0.0.3:8081', transport: 'tcp', reason: 'tls', connections: 3 },
        { server: '[::1]:6379', transport: 'tcp', reason: 'redis', connections: 1 },
        { server: '10.0.0.53:53', transport: 'udp', reason: 'dns', connections: 2 },
      ],
    });
    expect(v.summary).toMatch(/; 4 connections not decoded \(tls 3, redis 1\); 2 UDP flows not decoded \(dns 2\)$/);
    expect(verdictText(v)).toContain('\n  not decoded: 127.0.0.3:8081 (tls ×3), [::1]:6379 (redis ×1), 10.0.0.53:53/udp (dns ×2)\n');
    const named = verifyWithSpec(await fixed, await demoSpec, undefined, cov);
    expect(named.coverage.undecoded!.servers[0]).toEqual({ server: '127.0.0.3:8081', transport: 'tcp', reason: 'tls', connections: 3, service: 'payment-service' });
  });

  it('is bounded: at most MAX_UNDECODED_LISTED servers, the rest counted', () => {
    const many = Array.from({ length: MAX_UNDECODED_LISTED + 5 }, (_, i) => ({ ip: `10.1.0.${i + 1}`, port: 443, reason: 'tls', connections: 2 }));
    const u = verify([], { undecoded: coverage(many, { serversOmitted: 7 }) }).coverage.undecoded!;
    expect(u.servers).toHaveLength(MAX_UNDECODED_LISTED);
    expect(u.serversOmitted).toBe(7 + 5 * 2);
  });
});

describe('a pass over undecoded traffic to a service the spec names is inconclusive', () => {
  it('TLS to payment-service (named in services:) turns the demo\'s pass inconclusive, and says why', async () => {
    const cov = coverage([{ ip: '127.0.0.3', port: 8081, reason: 'tls', connections: 2 }]);
    const v = verifyWithSpec(await fixed, await demoSpec, undefined, cov);
    expect(v.verdict).toBe('inconclusive');
    expect(v.reason).toBe('2 connections to services the spec names were not decoded, so not judged: payment-service 127.0.0.3:8081 (tls ×2)');
  });

  it('a service named only by address in a check\'s selector counts too; UDP flows to it as well', async () => {
    const spec = parseSpec('version: 1\nchecks:\n  - name: db\n    select: \'postgres[service="10.9.9.9:5432"]\'\n    expect: { count: { atMost: 100 } }\n', 's.yaml', '.');
    expect(namedServices(spec)).toEqual(['10.9.9.9:5432']);
    const v = verifyWithSpec(await fixed, spec, undefined, coverage([{ ip: '10.9.9.9', port: 5432, reason: 'unknown', connections: 1, transport: 'udp' }]));
    expect(v.verdict).toBe('inconclusive');
    expect(v.reason).toBe('1 UDP flow to services the spec names was not decoded, so not judged: 10.9.9.9:5432 (unknown ×1)');
  });

  it('undecoded traffic to services the spec does not name is listed but changes nothing; nor does it without a spec', async () => {
    const cov = coverage([{ ip: '203.0.113.7', port: 443, reason: 'tls', connections: 5 }]);
    const v = verifyWithSpec(await fixed, await demoSpec, undefined, cov);
    expect(v.verdict).toBe('pass');
    expect(v.coverage.undecoded!.connections).toBe(5);
    const plain = verifyWithSpec(await fixed, undefined, undefined, coverage([{ ip: '127.0.0.3', port: 8081, reason: 'tls', connections: 2 }]));
    expect(plain.verdict).toBe('pass');
  });

  it('a failing verdict stays a fail', async () => {
    const v = verifyWithSpec(await flowsOf('pcaps/demo/demo.pcap'), await demoSpec, undefined, coverage([{ ip: '127.0.0.4', port: 5432, reason: 'tls', connections: 1 }]));
    expect(v.verdict).toBe('fail');
  });

  it('the services a spec names: its services: map, service= and client= of its selectors, noSecretLeaves\' service', async () => {
    expect(namedServices(await demoSpec).sort()).toEqual(['order-service', 'payment-service', 'postgres']);
  });
});
