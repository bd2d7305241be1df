import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { Pipeline } from '../../src/pipeline/index.js';
import { PlaintextStreams, type PlaintextChunk } from '../../src/pipeline/plaintext.js';

/**
 * A process's exit ends its TLS sessions (sched_process_exit: a SIGKILLed process, or Go, which has
 * no SSL_free): every session of that pid closes at once, as SSL_free closes one, so an HTTP/1.0
 * body delimited by the close completes then and not after the 60 s idle timeout.
 */
const SERVER = { ip: '10.0.0.9', port: 8443 };
const RES10 = Buffer.from('HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\nhello, tls\n');

const chunk = (o: Partial<PlaintextChunk> & Pick<PlaintextChunk, 'direction' | 'data' | 'time'>): PlaintextChunk => ({
  pid: 100, session: '0x5555a0', uncopied: 0, library: 'openssl', connection: { local: { ip: '10.0.0.5', port: 43512 }, remote: SERVER }, ...o,
});

describe('PlaintextStreams.endProcess', () => {
  it('ends every session of the pid at once (bodies delimited by the close complete), and only that pid\'s', () => {
    const records: FlowRecord[] = [];
    const streams = new PlaintextStreams(new Pipeline({ onRecord: (r) => records.push(r) }).streams);
    const conn = (port: number) => ({ local: { ip: '10.0.0.5', port }, remote: SERVER });
    for (const [pid, session, port] of [[100, '0xa', 40001], [100, '0xb', 40002], [200, '0xa', 40003]] as const) {
      streams.chunk(chunk({ pid, session, connection: conn(port), direction: 'egress', data: Buffer.from(`GET /p${port} HTTP/1.1\r\nHost: x\r\n\r\n`), time: 10 }));
      streams.chunk(chunk({ pid, session, connection: conn(port), direction: 'ingress', data: RES10, time: 10.01 }));
    }
    expect(records).toHaveLength(0);
    expect(streams.endProcess(999, 11)).toBe(0);
    // pid 10 is not a prefix match of pid 100
    expect(streams.endProcess(10, 11)).toBe(0);
    expect(records).toHaveLength(0);
    expect(streams.endProcess(100, 11)).toBe(2);
    expect(records.map((r) => (r as FlowRecord & { request: { path: string } }).request.path).sort()).toEqual(['/p40001', '/p40002']);
    for (const r of records) {
      expect((r as FlowRecord & { response: { body?: string } }).response.body).toBe('hello, tls\n');
      expect(r.incomplete).toBeFalsy();
    }
    expect(streams.counters.ended).toBe(2);
    // Once: a second exit or the idle tick adds nothing; the other pid's session is still open.
    expect(streams.endProcess(100, 12)).toBe(0);
    streams.tick(12);
    expect(records).toHaveLength(2);
    expect(streams.endSession(200, '0xa', 13)).toBe(true);
    expect(records).toHaveLength(3);
  });
});
