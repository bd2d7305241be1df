import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { ENCRYPTED_REASON, MAX_UDP_FLOWS } from '../../src/pipeline/coverage.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { Conversation, ethernet, ipv4, PROTO_UDP, type FramePacket, type Segment, udp } from '../helpers/bytes.js';
import { runSegments } from '../helpers/pipeline.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT } from '../conformance/oracle.js';
import { BASE, greeting, login, OK } from '../protocols/mysql/harness.js';

/*
 * Issue 12 item 4: what was seen but not decoded is counted and named, never silent. A TLS,
 * SSH or Kafka connection is "not decoded (tls)"; one that carried no byte is not undecoded at
 * all; UDP flows are counted (none is decoded). MySQL is decoded from its greeting on (issue 19):
 * only a MySQL connection caught mid-way, with no greeting to probe, is named here.
 */

/** One connection: handshake, then each [dir, bytes] in turn, then the close. */
function conn(steps: [0 | 1, Buffer | string][], o: { serverPort?: number; client?: string; server?: string; clientPort?: number } = {}): Segment[] {
  const c = new Conversation({ serverPort: o.serverPort ?? 443, client: o.client, server: o.server, clientPort: o.clientPort }).handshake();
  for (const [d, b] of steps) c.send(d, b);
  return c.close().segments;
}

function coverageOf(segs: Segment[]) {
  return runSegments(segs).pipeline.coverage();
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** A TLS 1.2 record carrying a ClientHello (type 1, legacy_version 3.3) of `body` bytes. */
function clientHello(body = 60): Buffer {
  const hs = Buffer.concat([Buffer.from([1, 0, 0, body + 2, 3, 3]), Buffer.alloc(body, 7)]);
  return Buffer.concat([Buffer.from([0x16, 3, 1, 0, hs.length]), hs]);
}

function serverHello(): Buffer {
  const hs = Buffer.concat([Buffer.from([2, 0, 0, 40, 3, 3]), Buffer.alloc(38, 9)]);
  return Buffer.concat([Buffer.from([0x16, 3, 3, 0, hs.length]), hs]);
}

/** A TLS application data record of `n` bytes. */
function appData(n: number, fill = 5): Buffer {
  return Buffer.concat([Buffer.from([0x17, 3, 3, n >> 8, n & 255]), Buffer.alloc(n, fill)]);
}

/** A MySQL COM_QUERY (sequence 0) and an OK packet answering it (sequence 1): a connection caught after its login. */
function mysqlQueryAndOk(): [Buffer, Buffer] {
  const sql = Buffer.from('SELECT 1', 'latin1');
  const q = Buffer.concat([Buffer.from([sql.length + 1, 0, 0, 0, 3]), sql]);
  const ok = Buffer.from([7, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
  return [q, ok];
}

/** A Kafka ApiVersions request (key 18, version 3, correlation id 7, client id "app") and its response. */
function kafkaPair(): [Buffer, Buffer] {
  const req = Buffer.concat([hex('0012 0003 00000007 0003'), Buffer.from('app'), Buffer.alloc(6)]);
  const res = Buffer.concat([hex('00000007 0000'), Buffer.alloc(10)]);
  const sized = (b: Buffer) => Buffer.concat([hex(b.length.toString(16).padStart(8, '0')), b]);
  return [sized(req), sized(res)];
}

/** A DNS query for example.com A, and the same as a response. */
function dnsQuery(id = 0x1234, response = false): Buffer {
  const name = Buffer.concat([Buffer.from([7]), Buffer.from('example'), Buffer.from([3]), Buffer.from('com'), Buffer.from([0])]);
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(response ? 0x8180 : 0x0100, 2);
  h.writeUInt16BE(1, 4);
  return Buffer.concat([h, name, hex('0001 0001')]);
}

describe('undecoded TCP connections: counted, and named by their first bytes where that is reliable', () => {
  const cases: { name: string; segs: Segment[]; reason: string; server: string }[] = [
    { name: 'TLS after its handshake (application data records both ways)', segs: conn([[0, appData(16)], [1, appData(32)]]), reason: 'tls', server: '10.0.0.2:443' },
    { name: 'SSH banners', segs: conn([[1, 'SSH-2.0-OpenSSH_9.6\r\n'], [0, 'SSH-2.0-OpenSSH_9.6\r\n']], { serverPort: 22 }), reason: 'ssh', server: '10.0.0.2:22' },
    { name: 'MySQL caught after its login (a COM_QUERY answered by sequence 1)', segs: conn(mysqlQueryAndOk().map((b, i) => [i as 0 | 1, b]), { serverPort: 3306 }), reason: 'mysql', server: '10.0.0.2:3306' },
    { name: 'Kafka request and response with the same correlation id', segs: conn(kafkaPair().map((b, i) => [i as 0 | 1, b]), { serverPort: 9092 }), reason: 'kafka', server: '10.0.0.2:9092' },
    { name: 'AMQP protocol header', segs: conn([[0, hex('414d515000000901')], [1, Buffer.alloc(30, 1)]], { serverPort: 5672 }), reason: 'amqp', server: '10.0.0.2:5672' },
    {
      name: 'DNS over TCP', reason: 'dns', server: '10.0.0.2:53',
      segs: conn([[0, Buffer.concat([hex(dnsQuery().length.toString(16).padStart(4, '0')), dnsQuery()])]], { serverPort: 53 }),
    },
    { name: 'bytes nothing recognises', segs: conn([[0, Buffer.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3])], [1, Buffer.from([9, 9, 9])]], { serverPort: 7000 }), reason: 'unknown', server: '10.0.0.2:7000' },
  ];
  for (const c of cases) {
    it(`${c.name} → ${c.reason}`, () => {
      const cov = coverageOf(c.segs);
      expect(cov).toMatchObject({ connections: 1, byReason: { [c.reason]: 1 }, emptyConnections: 0, udpFlows: 0 });
      expect(cov.servers).toEqual([expect.objectContaining({ transport: 'tcp', reason: c.reason, connections: 1 })]);
      expect(`${cov.servers[0]!.ip}:${cov.servers[0]!.port}`).toBe(c.server);
    });
  }

  it('a MySQL greeting is decoded (issue 19): the login is a mysql record, nothing undecoded', () => {
    const run = runSegments(conn([[1, greeting(BASE)], [0, login(BASE, 'app', 'shop')], [1, OK(2)]], { serverPort: 3306 }));
    expect(run.records.map((r) => [r.protocol, (r.request as { command?: string } | undefined)?.command])).toEqual([['mysql', 'COM_CONNECT']]);
    expect(run.pipeline.coverage()).toMatchObject({ connections: 0, byReason: {}, servers: [] });
  });

  it('a TLS handshake is decoded (a tls record): not undecoded, but counted as encrypted, its server listed as such', () => {
    const run = runSegments(conn([[0, clientHello()], [1, serverHello()]]));
    expect(run.records.map((r) => r.protocol)).toEqual(['tls']);
    const cov = run.pipeline.coverage();
    expect(cov).toMatchObject({ connections: 0, byReason: {}, encryptedConnections: 1, encryptedByReason: { tls: 1 } });
    expect(cov.servers).toEqual([{ ip: '10.0.0.2', port: 443, transport: 'tcp', reason: ENCRYPTED_REASON, connections: 1 }]);
  });

  it('a TLS server is told by its ServerHello even when the capture has no handshake and the ports mislead', () => {
    // No SYN: reassembly guesses the client by port; the ServerHello says who serves.
    const c = new Conversation({ client: '10.0.0.9', clientPort: 443, server: '10.0.0.8', serverPort: 50000 });
    c.send(1, serverHello());
    c.send(0, appData(37, 1));
    const cov = coverageOf(c.segments);
    expect(cov.byReason).toEqual({ tls: 1 });
    expect(cov.servers[0]).toMatchObject({ ip: '10.0.0.8', port: 50000 });
  });

  it('a connection that carried no payload is not undecoded: it is only counted as empty', () => {
    const cov = coverageOf(new Conversation().handshake().close().segments);
    expect(cov).toMatchObject({ connections: 0, byReason: {}, emptyConnections: 1, servers: [] });
  });

  it('decoded connections are not counted; servers are grouped, most connections first', () => {
    const http = conn([[0, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'], [1, 'HTTP/1.1 204 No Content\r\n\r\n']], { serverPort: 80 });
    const tls = [1, 2, 3].flatMap((i) => conn([[0, clientHello()]], { clientPort: 41000 + i, server: '10.0.0.3' }));
    const mysql = conn(mysqlQueryAndOk().map((b, i) => [i as 0 | 1, b]), { serverPort: 3306, clientPort: 42000 });
    const run = runSegments([...http, ...tls, ...mysql]);
    // The TLS connections are decoded up to encryption (tls records): counted apart, not as undecoded.
    expect(run.records).toHaveLength(4);
    const cov = run.pipeline.coverage();
    expect(cov).toMatchObject({ connections: 1, byReason: { mysql: 1 }, encryptedConnections: 3 });
    expect(cov.servers.map((s) => [`${s.ip}:${s.port}`, s.reason, s.connections])).toEqual([['10.0.0.3:443', ENCRYPTED_REASON, 3], ['10.0.0.2:3306', 'mysql', 1]]);
    // The dispatcher's own count of unrecognised connections keeps its meaning.
    expect(run.pipeline.dispatcher.stats.unknown).toBe(1);
  });

  it('a connection given up on while still open (past the probe limits) is counted once, by its first bytes', () => {
    const c = new Conversation({ serverPort: 8443 }).handshake();
    // Caught after its handshake (a ClientHello would be decoded as tls).
    c.send(0, appData(32, 99));
    for (let i = 0; i < 12; i++) c.send((i % 2) as 0 | 1, appData(32, i));
    const cov = coverageOf(c.close().segments);
    expect(cov).toMatchObject({ connections: 1, byReason: { tls: 1 } });
  });
});

describe('UDP flows: counted (distinct address and port pairs), named where the first datagram tells', () => {
  function datagram(payload: Buffer, o: { src: string; dst: string; srcPort: number; dstPort: number }, frame: number): FramePacket {
    const data = ethernet(ipv4(udp(payload, o), { src: o.src, dst: o.dst, proto: PROTO_UDP }));
    return { frame, time: 1_700_000_000 + frame / 1000, linkType: 1, iface: 0, data, wireLen: data.length };
  }

  it('a DNS query and its answer are one flow to the resolver; other datagrams are unknown; tapwire\'s drain markers are not traffic', () => {
    const p = new Pipeline({ onRecord: () => {} });
    const q = { src: '10.0.0.1', dst: '10.0.0.53', srcPort: 40001, dstPort: 53 };
    const a = { src: '10.0.0.53', dst: '10.0.0.1', srcPort: 53, dstPort: 40001 };
    let f = 0;
    p.packet(datagram(dnsQuery(), q, ++f));
    p.packet(datagram(dnsQuery(0x1234, true), a, ++f));
    p.packet(datagram(dnsQuery(7), { ...q, srcPort: 40002 }, ++f));
    p.packet(datagram(Buffer.from('hello'), { src: '10.0.0.1', dst: '10.0.0.7', srcPort: 5000, dstPort: 6000 }, ++f));
    p.packet(datagram(Buffer.from('tapwire-drain 0123456789abcdef'), { src: '127.0.0.1', dst: '127.0.0.1', srcPort: 5555, dstPort: 9 }, ++f));
    p.finish();
    const cov = p.coverage();
    expect(cov).toMatchObject({ connections: 0, udpFlows: 3, udpByReason: { dns: 2, unknown: 1 } });
    expect(cov.servers.map((s) => [s.transport, `${s.ip}:${s.port}`, s.reason, s.connections])).toEqual([
      ['udp', '10.0.0.53:53', 'dns', 2], ['udp', '10.0.0.7:6000', 'unknown', 1],
    ]);
  });

  it('memory stays bounded: past MAX_UDP_FLOWS the oldest pair is forgotten', () => {
    const p = new Pipeline({ onRecord: () => {} });
    const n = MAX_UDP_FLOWS + 10;
    for (let i = 0; i < n; i++) {
      p.packet(datagram(Buffer.from('x'), { src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '10.255.0.1', srcPort: 1024 + (i % 1000), dstPort: 7 }, i + 1));
    }
    p.finish();
    expect(p.coverage().udpFlows).toBe(n);
    expect((p.udp as unknown as { seen: Map<string, true> }).seen.size).toBe(MAX_UDP_FLOWS);
  });
});

describe.skipIf(!PCAPS_PRESENT)('third-party captures tapwire does not decode (../shared/pcaps)', () => {
  const cases: [string, Record<string, number>, string][] = [
    ['arkime/kafka.pcap', { kafka: 1 }, '10.176.192.13:9092'],
    ['deepflow/kafka/18-api-versions-v3.pcap', { kafka: 1 }, '172.16.0.105:9092'],
    ['deepflow/amqp/amqp1.pcap', { amqp: 2 }, '127.0.0.1:5672'],
    ['suricata-verify/dns/dns-tcp-multirequest-buffer/dns-tcp-multirequest-buffer.pcap', { dns: 1 }, '10.16.1.1:53'],
    ['zeek/tcp/truncated-header.pcap', { gap: 1 }, '128.3.26.249:25'],
  ];
  for (const [file, byReason, server] of cases) {
    it(`${file}: ${Object.entries(byReason).map(([k, n]) => `${k} ×${n}`).join(', ')}`, async () => {
      const { pipeline: p, records } = await analyzeFile(join(PCAP_DIR, file));
      expect(records).toEqual([]);
      const cov = p.coverage();
      expect(cov.byReason).toEqual(byReason);
      const s = cov.servers[0]!;
      expect(s.ip.includes(':') ? `[${s.ip}]:${s.port}` : `${s.ip}:${s.port}`).toBe(server);
    });
  }

  it('DNS over UDP: three lookups are three flows to the resolver', async () => {
    const { pipeline: p } = await analyzeFile(join(PCAP_DIR, 'suricata-verify/dns/dns-udp-eve-log-answer-only/dns-udp-google.com-a-aaaa-mx.pcap'));
    expect(p.coverage()).toMatchObject({ connections: 0, udpFlows: 3, udpByReason: { dns: 3 }, servers: [{ ip: '8.8.8.8', port: 53, transport: 'udp', reason: 'dns', connections: 3 }] });
  });

  it('captures tapwire decodes have nothing undecoded', async () => {
    for (const file of ['zeek/http/get-gzip.pcap', 'zeek/postgresql/psql-insert-fail-drop-fail.pcap', 'suricata-verify/http2-continuation/input.pcap', 'zeek/mysql/mysql.pcap', 'arkime/mysql-deny.pcap']) {
      const { pipeline: p, records } = await analyzeFile(join(PCAP_DIR, file));
      expect(records!.length, file).toBeGreaterThan(0);
      expect(p.coverage(), file).toMatchObject({ connections: 0, udpFlows: 0, servers: [] });
    }
  });
});
if (!PCAPS_PRESENT) console.warn(`test/pipeline/undecoded.test.ts: third-party cases skipped: ${PCAPS_MISSING_REASON}`);

describe('a capture recorded here: pcaps/postgres/mysql-on-5432.pcap (a MySQL handshake on the PostgreSQL port)', () => {
  it.skipIf(!existsSync('pcaps/postgres/mysql-on-5432.pcap'))('is MySQL by content, not PostgreSQL by port: decoded, nothing undecoded', async () => {
    const { pipeline: p, records } = await analyzeFile('pcaps/postgres/mysql-on-5432.pcap');
    expect(records!.map((r) => [r.protocol, (r.request as { command?: string } | undefined)?.command])).toEqual([['mysql', 'COM_CONNECT'], ['mysql', 'COM_QUIT']]);
    expect(p.coverage()).toMatchObject({ connections: 0, byReason: {}, servers: [] });
  });
});
