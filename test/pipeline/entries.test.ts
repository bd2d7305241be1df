import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { ANALYZERS } from '../../src/protocols/registry.js';
import type { DatagramAnalyzer, DatagramContext } from '../../src/protocols/types.js';
import type { ConnectionInfo } from '../../src/stream/types.js';
import { ethernet, ipv4, PROTO_UDP, udp } from '../helpers/bytes.js';

/**
 * The pipeline's two entries beside TCP packets (issue 13, item 5): UDP datagrams reach datagram
 * analyzers by content, and byte streams without packets (TLS plaintext from eBPF) skip decode and
 * reassembly and reach the protocol analyzers as reassembled bytes do.
 */

function datagram(payload: string, o: { src: string; dst: string; srcPort: number; dstPort: number }, frame: number) {
  const data = ethernet(ipv4(udp(Buffer.from(payload), o), { src: o.src, dst: o.dst, proto: PROTO_UDP }));
  return { frame, time: 1_700_000_000 + frame / 1000, linkType: 1, iface: 0, data, wireLen: data.length };
}

/** A toy protocol over UDP: "PING n" from a client, "PONG n" back. What its session saw is kept. */
function pingAnalyzer(seen: { conn: ConnectionInfo; dir: number; text: string; frame: number }[], ended: number[]): DatagramAnalyzer {
  return {
    name: 'ping', transport: 'udp',
    probe: (b) => (b.subarray(0, 5).toString() === 'PING ' ? 'match' : b.subarray(0, 5).toString() === 'PONG ' ? 'reverse' : 'no'),
    createSession: (ctx: DatagramContext) => ({
      datagram: (dir, bytes, meta) => {
        if (bytes.toString() === 'BOOM') throw new Error('a bug in the session');
        seen.push({ conn: ctx.conn, dir, text: bytes.toString(), frame: meta.frame });
      },
      end: (time) => ended.push(time),
    }),
  };
}

describe('UDP datagrams reach the analyzer that declares transport udp', () => {
  const A = { src: '10.0.0.1', dst: '10.0.0.2', srcPort: 40000, dstPort: 7000 };
  const B = { src: '10.0.0.2', dst: '10.0.0.1', srcPort: 7000, dstPort: 40000 };

  it('a flow is probed by content, its datagrams arrive with their direction, and it is not counted as undecoded', () => {
    const seen: { conn: ConnectionInfo; dir: number; text: string; frame: number }[] = [];
    const ended: number[] = [];
    const p = new Pipeline({ onRecord: () => {}, analyzers: [...ANALYZERS, pingAnalyzer(seen, ended)] });
    p.packet(datagram('PING 1', A, 1));
    p.packet(datagram('PONG 1', B, 2));
    p.packet(datagram('PING 2', A, 3));
    p.packet(datagram('something else', { src: '10.0.0.3', dst: '10.0.0.4', srcPort: 5000, dstPort: 6000 }, 4));
    p.finish();
    expect(seen.map((s) => [s.dir, s.text, s.frame])).toEqual([[0, 'PING 1', 1], [1, 'PONG 1', 2], [0, 'PING 2', 3]]);
    expect(seen[0]!.conn).toMatchObject({ client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 7000 }, family: 4 });
    expect(ended).toHaveLength(1);
    expect(p.datagrams.stats.byProtocol).toEqual({ ping: 1 });
    // Only the flow nobody took is undecoded.
    expect(p.coverage()).toMatchObject({ udpFlows: 1, udpByReason: { unknown: 1 } });
  });

  it('a flow first seen from its server is turned round by the probe', () => {
    const seen: { conn: ConnectionInfo; dir: number; text: string; frame: number }[] = [];
    const p = new Pipeline({ onRecord: () => {}, analyzers: [pingAnalyzer(seen, [])] });
    p.packet(datagram('PONG 9', B, 1));
    p.packet(datagram('PING 10', A, 2));
    p.finish();
    expect(seen.map((s) => [s.dir, s.text])).toEqual([[1, 'PONG 9'], [0, 'PING 10']]);
    expect(seen[0]!.conn.client).toEqual({ ip: '10.0.0.1', port: 40000 });
  });

  it('a session that throws on wire input becomes a counted violation, not a crash', () => {
    const seen: { conn: ConnectionInfo; dir: number; text: string; frame: number }[] = [];
    const p = new Pipeline({ onRecord: () => {}, analyzers: [pingAnalyzer(seen, [])] });
    p.packet(datagram('PING 1', A, 1));
    p.packet(datagram('BOOM', A, 2));
    p.packet(datagram('PING 3', A, 3));
    p.finish();
    expect(p.violations.toJSON()).toEqual({ 'decoder.internal_error': 1 });
    expect(seen.map((s) => s.text)).toEqual(['PING 1']);
  });

  it('without a UDP analyzer, UDP is only counted (the registry has none yet)', () => {
    const p = new Pipeline({ onRecord: () => {} });
    p.packet(datagram('PING 1', A, 1));
    p.finish();
    expect(p.coverage().udpFlows).toBe(1);
  });
});

describe('byte streams without packets enter at Pipeline.streams', () => {
  it('an HTTP/1 exchange given as plaintext streams becomes a record, with no packet decoded', () => {
    const records: FlowRecord[] = [];
    const p = new Pipeline({ onRecord: (r) => records.push(r) });
    const conn: ConnectionInfo = {
      id: 'tls-0001', client: { ip: '10.1.0.5', port: 51000 }, server: { ip: '10.1.0.9', port: 443 }, family: 4,
      startTime: 1_700_000_000, firstFrame: 0, handshakeSeen: true, midStream: false,
    };
    const req = Buffer.from('GET /orders/7 HTTP/1.1\r\nHost: shop\r\n\r\n');
    const res = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    p.streams.open(conn);
    p.streams.data(conn, 0, req, { time: 1_700_000_000.001, frame: 0, offset: 0, peerAck: 0 });
    p.streams.data(conn, 1, res, { time: 1_700_000_000.004, frame: 0, offset: 0, peerAck: req.length });
    p.streams.close(conn, 1_700_000_000.01, 'fin');
    p.finish();
    expect(p.packets).toBe(0);
    expect(records).toHaveLength(1);
    const r = records[0]!;
    expect(r).toMatchObject({ protocol: 'http', connectionId: 'tls-0001', src: { ip: '10.1.0.5', port: 51000 }, dst: { ip: '10.1.0.9', port: 443 } });
    expect(r.request).toMatchObject({ method: 'GET', path: '/orders/7' });
    expect(r.response).toMatchObject({ status: 200, body: 'ok' });
    expect(r.durationMs).toBeCloseTo(3, 1);
  });
});
