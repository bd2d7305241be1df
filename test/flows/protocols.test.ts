import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlowBuilder } from '../../src/flows/build.js';
import { grpcStatusLabel } from '../../src/flows/protocols/grpc.js';
import { httpHalves, moduleFor, PROTOCOL_NAMES, RECORDS, recordModule, sqlHalves } from '../../src/flows/protocols/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import type { ConnectionInfo } from '../../src/stream/index.js';

/** Every golden record, as tools outside the test suite read them. */
const goldens: FlowRecord[] = (readdirSync('test/golden', { recursive: true }) as string[])
  .filter((f) => f.endsWith('.jsonl')).sort()
  .flatMap((f) => readFileSync(join('test/golden', f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FlowRecord));

describe('record modules (src/flows/protocols/)', () => {
  it('one module per protocol, each under its own name', () => {
    expect(PROTOCOL_NAMES).toEqual(['http', 'http2', 'grpc', 'postgres', 'tls', 'redis', 'mysql']);
    for (const p of PROTOCOL_NAMES) expect(RECORDS[p].protocol).toBe(p);
    expect(moduleFor('memcached')).toBeUndefined();
    expect(moduleFor('toString')).toBeUndefined();
  });

  it('the golden records cover every protocol, and each record\'s halves are the kind its module says', () => {
    expect(new Set(goldens.map((r) => r.protocol))).toEqual(new Set(PROTOCOL_NAMES));
    for (const r of goldens) {
      const m = recordModule(r);
      expect(m).toBe(RECORDS[r.protocol]);
      // Exactly one kind of halves: HTTP messages, SQL, a handshake's hellos (TLS), or a command and its reply (Redis).
      expect(Number(httpHalves(r)) + Number(sqlHalves(r)) + Number(m.halves === 'handshake') + Number(m.halves === 'command'), r.id).toBe(1);
      if (httpHalves(r) && r.request) expect(typeof r.request.method, r.id).toBe('string');
      // SQL halves: PostgreSQL names the message (Query, Execute), MySQL the command (COM_QUERY …).
      if (sqlHalves(r) && r.request) expect(typeof ('message' in r.request ? r.request.message : r.request.command), r.id).toBe('string');
      // Every question has an answer for every record (none throws on a missing half).
      m.table(r);
      m.outcome(r);
      m.rowStatus(r);
      m.failed(r);
      m.problem(r, '1.2.3.4:5');
    }
  });

  it('a protocol with no record module fails loudly instead of passing as HTTP', () => {
    const conn: ConnectionInfo = {
      id: 'c', client: { ip: '10.0.0.1', port: 40000 }, server: { ip: '10.0.0.2', port: 11211 }, family: 4,
      startTime: 0, firstFrame: 1, handshakeSeen: false, midStream: true,
    };
    expect(() => new FlowBuilder({ bodyLimit: 64, frames: true }).build({ protocol: 'memcached' }, conn)).toThrow(/no record module for protocol "memcached"/);
  });

  it('formats a gRPC status one way', () => {
    expect(grpcStatusLabel(0)).toBe('grpc 0 OK');
    expect(grpcStatusLabel(5)).toBe('grpc 5 NOT_FOUND');
    expect(grpcStatusLabel(99)).toBe('grpc 99');
  });
});
