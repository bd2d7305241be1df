/** The oracle reader on small hand-written files: runs without the shared captures. */
import { describe, expect, it } from 'vitest';
import { parseEndpoint, parseOracle, unescapeValue } from './oracle.js';
import { connKey, normIp, oracleTransactions } from './http1-compare.js';
import { compareStreams, joinFields, oracleH2, tapwireH2 } from './http2-compare.js';
import { align, authAgrees, comparePg, oraclePg, tapwirePg } from './postgres-compare.js';
import type { GrpcFlow, Http2Flow, PgSessionRecord, PostgresFlow } from '../../src/flows/record.js';

const T = '\t';
const row = (...cols: string[]) => cols.join(T);

const SAMPLE = [
  '# oracle: TShark 4.0.17',
  '# tshark_stderr: tshark: damaged\\n(pcap: bad)',
  row('tcp_stream', '1', '0', '192.168.1.104:1673', '63.245.209.11:80', '10', '20', 'aa', 'bb'),
  row('tcp_stream', '12', '1', '[::1]:55717', '[::1]:8000', '0', '0', 'cc', 'dd'),
  row('http_resp', '3', '0', 'HTTP/1.1', '100', 'Continue', '', '', '', '', '', ''),
  row('http_req', '4', '0', 'POST', '/a\\tb\\\\c', 'HTTP/1.1', 'h', '5', '', '', '', '5', '6'),
  row('http_resp', '6', '0', 'HTTP/1.1', '200', 'OK', '', 'chunked', 'gzip', 'text/html', '42', '4'),
  row('http_resp', '7', '0', 'HTTP/1.0', '400', 'Bad Request', '925', '', '', 'text/html', '925', ''),
  row('dns', '9', 'u0', 'udp', '1', '0', '0', '0', 'x', '1', '0', ''),
  '',
].join('\n');

describe('oracle reader', () => {
  it('parses header, typed rows and other kinds', () => {
    const o = parseOracle(SAMPLE, 'sample.tsv');
    expect(o.header[0]).toBe('oracle: TShark 4.0.17');
    expect(o.tsharkStderr).toBe('tshark: damaged\n(pcap: bad)');
    expect(o.tcpStreams).toHaveLength(2);
    expect(o.tcpStreams[0]).toMatchObject({ frame: 1, stream: 0, node0: { ip: '192.168.1.104', port: 1673 }, node1Bytes: 20, node1Sha256: 'bb' });
    expect(o.tcpStreams[1]!.node0).toEqual({ ip: '::1', port: 55717 });
    expect(o.httpReqs[0]).toMatchObject({ method: 'POST', uri: '/a\tb\\c', contentLength: '5', bodyLen: 5, responseIn: 6 });
    expect(o.httpResps.map((r) => [r.code, r.bodyLen, r.requestIn])).toEqual([[100, undefined, undefined], [200, 42, 4], [400, 925, undefined]]);
    expect(o.rows.find((r) => r.kind === 'dns')).toMatchObject({ udpStream: 'u0', stream: -1 });
  });

  it('refuses rows with the wrong number of columns, naming file and line', () => {
    expect(() => parseOracle(row('http_req', '4', '0', 'GET', '/'), 'x.tsv')).toThrow(/x\.tsv:1: http_req row has 2 columns/);
  });

  it('unescapes only the four escapes', () => {
    expect(unescapeValue('a\\tb\\nc\\rd\\\\e\\x')).toBe('a\tb\nc\rd\\e\\x');
  });

  it('reads the endpoint forms tshark writes, including ":0" for a stream without addresses', () => {
    expect(parseEndpoint('10.0.0.1:80')).toEqual({ ip: '10.0.0.1', port: 80 });
    expect(parseEndpoint('[2001:db8::1]:443')).toEqual({ ip: '2001:db8::1', port: 443 });
    expect(parseEndpoint(':0')).toEqual({ ip: '', port: 0 });
    expect(() => parseEndpoint('nonsense')).toThrow();
  });

  it('builds transactions: pairs through response_in, folds interim 1xx, keeps response-only ones', () => {
    const { txs, interim } = oracleTransactions(parseOracle(SAMPLE));
    expect(txs.map((t) => [t.method, t.status, t.respBody])).toEqual([['POST', 200, 42], [undefined, 400, 925]]);
    expect([...interim.values()]).toEqual([1]);
  });

  it('spells one address one way', () => {
    expect(normIp('::1')).toBe(normIp('0:0:0:0:0:0:0:1'));
    expect(connKey({ ip: '::1', port: 1 }, { ip: '::1', port: 2 })).toBe(connKey({ ip: '0::1', port: 2 }, { ip: '::0:1', port: 1 }));
  });
});

/**
 * A small HTTP/2 oracle: client 10.0.0.1:5000 sends frames 1-2, server 10.0.0.2:80 frames 3-5.
 * Stream 1: HEADERS without END_HEADERS + CONTINUATION, a gRPC message, an interim 100, the
 * response, a pushed stream, a compressed response message, trailers. Stream 3: an RST_STREAM.
 */
const H2_SAMPLE = [
  row('tcp_stream', '1', '0', '10.0.0.1:5000', '10.0.0.2:80', '1', '1', 'aa', 'bb'),
  row('h2', '1', '0', '0', '4', '0x00', '0'),
  row('h2', '1', '0', '1', '1', '0x00', '10'),
  row('h2hdr', '1', '0', '1', ':method', 'POST'),
  row('h2hdr', '1', '0', '1', ':path', '/pkg.Svc/M'),
  row('h2', '2', '0', '1', '9', '0x04', '5'),
  row('h2hdr', '2', '0', '1', 'content-type', 'application/grpc'),
  row('h2hdr', '2', '0', '1', 'x-a', '1'),
  row('h2hdr', '2', '0', '1', 'x-a', '2'),
  row('h2', '2', '0', '1', '0', '0x01', '12'),
  row('grpc', '2', '0', '0', '7'),
  row('h2', '3', '0', '1', '1', '0x04', '3'),
  row('h2hdr', '3', '0', '1', ':status', '100'),
  row('h2', '3', '0', '1', '1', '0x04', '3'),
  row('h2hdr', '3', '0', '1', ':status', '200'),
  row('h2', '3', '0', '1', '5', '0x04', '20'),
  row('h2hdr', '3', '0', '1', ':method', 'GET'),
  row('h2hdr', '3', '0', '1', ':path', '/pushed'),
  row('h2', '4', '0', '2', '1', '0x04', '4'),
  row('h2hdr', '4', '0', '2', ':status', '204'),
  row('h2', '4', '0', '1', '0', '0x00', '6'),
  row('grpc', '4', '0', '1', '1'),
  row('h2', '5', '0', '1', '1', '0x05', '8'),
  row('h2hdr', '5', '0', '1', 'grpc-status', '0'),
  row('h2hdr', '5', '0', '1', 'grpc-message', ''),
  row('h2', '5', '0', '3', '3', '0x00', '4'),
  '',
].join('\n');
const H2_SOURCES = new Map([1, 2].map((f) => [f, '10.0.0.1/5000'] as [number, string])
  .concat([3, 4, 5].map((f) => [f, '10.0.0.2/80'] as [number, string])));

describe('HTTP/2 oracle rows', () => {
  it('parses h2, h2hdr and grpc rows, keeping their order', () => {
    const o = parseOracle(H2_SAMPLE, 'h2.tsv');
    expect(o.h2Rows).toHaveLength(25);
    expect(o.h2Rows[1]).toMatchObject({ kind: 'h2', frame: 1, h2Stream: 1, type: 1, flags: 0, length: 10 });
    expect(o.h2Rows[4]).toMatchObject({ kind: 'h2', type: 9, flags: 4 });
    expect(o.h2Rows.find((r) => r.kind === 'grpc' && r.compressed)).toMatchObject({ frame: 4, messageLength: 1 });
    expect(o.h2Rows.find((r) => r.kind === 'h2hdr' && r.name === 'grpc-message')).toMatchObject({ value: '' });
    expect(() => parseOracle(row('h2', '1', '0', '1', '1', '4', '10'), 'x.tsv')).toThrow(/x\.tsv:1: flags "4"/);
    expect(() => parseOracle(row('grpc', '1', '0', '2', '10'), 'x.tsv')).toThrow(/compressed flag "2"/);
    expect(() => parseOracle(row('h2hdr', '1', '0', '1', 'a'), 'x.tsv')).toThrow(/h2hdr row has 2 columns/);
  });

  it('builds streams: CONTINUATION joins its block, 1xx is interim, PUSH_PROMISE names the next even stream, grpc rows follow DATA', () => {
    const [c] = oracleH2(parseOracle(H2_SAMPLE, 'h2.tsv'), H2_SOURCES);
    expect(c!.client).toBe('10.0.0.1/5000');
    expect(c!.streams.map((s) => s.id)).toEqual([1, 2, 3]);
    const [s1, s2, s3] = c!.streams;
    expect(s1!.request!.fields).toEqual([[':method', 'POST'], [':path', '/pkg.Svc/M'], ['content-type', 'application/grpc'], ['x-a', '1'], ['x-a', '2']]);
    expect(s1!.interim).toEqual([100]);
    expect(s1!.response).toMatchObject({ fields: [[':status', '200']], trailers: [['grpc-status', '0'], ['grpc-message', '']], frame: 3 });
    expect(s1!.grpc).toEqual({ client: [{ size: 7, compressed: false }], server: [{ size: 1, compressed: true }] });
    expect(s1!.data).toMatchObject({ client: 12, server: 6 });
    expect(s1!.ended).toEqual({ client: true, server: true });
    expect(s2!.request).toMatchObject({ pushed: true, fields: [[':method', 'GET'], [':path', '/pushed']] });
    expect(s2!.response!.fields).toEqual([[':status', '204']]);
    expect(s3!.rst).toEqual([{ by: 'server', frame: 5 }]);
    expect(joinFields(s1!.request!.fields).get('x-a')).toBe('1, 2');
  });

  it('refuses header rows that follow no header block of their stream', () => {
    const bad = [row('tcp_stream', '1', '0', '10.0.0.1:5000', '10.0.0.2:80', '1', '1', 'aa', 'bb'), row('h2', '1', '0', '1', '0', '0x00', '3'), row('h2hdr', '1', '0', '1', 'a', 'b')].join('\n');
    expect(() => oracleH2(parseOracle(bad, 'bad.tsv'), H2_SOURCES)).toThrow(/follows no header block/);
  });

  it('compares with tapwire records field by field', () => {
    const [c] = oracleH2(parseOracle(H2_SAMPLE, 'h2.tsv'), H2_SOURCES);
    const half = { start: 0, end: 0, size: 0, bodySize: 0 };
    const rec = (streamId: number, extra: Partial<Pick<GrpcFlow, 'request' | 'response' | 'error'>>): Http2Flow | GrpcFlow => {
      const r = {
        id: `c-${streamId}`, connectionId: 'c', src: { ip: '10.0.0.1', port: 5000 },
        dst: { ip: '10.0.0.2', port: 80 }, start: 0, end: 0, durationMs: 0, streamId, ...extra,
      };
      return streamId === 1 ? { ...r, protocol: 'grpc' } : { ...r, protocol: 'http2' };
    };
    const records = [
      rec(1, {
        request: {
          ...half, bodySize: 12, method: 'POST', path: '/pkg.Svc/M', version: '2', headers: { 'content-type': 'application/grpc', 'x-a': '1, 2' },
          messages: [{ time: 0, size: 7 }],
        },
        response: {
          ...half, bodySize: 6, status: 200, reason: '', version: '2', headers: {}, trailers: { 'grpc-status': '0', 'grpc-message': '' },
          grpcStatus: 0, interim: [{ status: 100, time: 0 }], messages: [{ time: 0, size: 1, compressed: true }],
        },
      }),
      rec(2, {
        request: { ...half, method: 'GET', path: '/pushed', version: '2', headers: {} },
        response: { ...half, status: 200, reason: '', version: '2', headers: { server: 'x' } },
      }),
      rec(3, { error: { code: 'CANCEL', frame: 'RST_STREAM', by: 'server' } }),
    ];
    const r = compareStreams([c!], tapwireH2(records));
    expect(r.deviations.map((d) => `${d.kind} ${d.stream} ${d.what}`)).toEqual(['field 2 resp :status', 'extra-field 2 resp server']);
    expect(r.streams.find((s) => s.id === 1)!.items.every((i) => i.ok)).toBe(true);
    expect(r.rstCodes).toEqual(['3 server CANCEL']);
    const none = compareStreams([c!], []);
    expect(none.deviations.filter((d) => d.kind === 'missing-stream').map((d) => d.stream)).toEqual([1, 2, 3]);
  });
});

describe('PostgreSQL oracle rows', () => {
  const PG = [
    row('tcp_stream', '1', '0', '10.0.0.1:40000', '10.0.0.2:5432', '1', '1', 'a', 'b'),
    row('pg', '4', '0', 'F', 'Startup message', '19', 'user=u'),
    row('pg', '6', '0', 'B', 'Authentication request', '23', 'authtype=10'),
    row('pg', '11', '0', 'B', 'Authentication request', '8', 'authtype=0'),
    row('pg', '12', '0', 'F', 'Simple query', '13', 'query=select\\t1'),
    row('pg', '13', '0', 'B', 'Notice', '40', 'NOTICE 00000 hi'),
    row('pg', '13', '0', 'B', 'Command completion', '13', 'tag=SELECT 1'),
    row('pg', '14', '0', 'F', 'Parse', '34', 'statement=s1 query=DROP TABLE x '),
    row('pg', '14', '0', 'F', 'Password message', '40', ''),
    row('pg', '15', '0', 'B', 'Error', '88', 'ERROR 42P01 table "x" does not exist'),
  ].join('\n');

  it('parses pg rows (direction, type, length, info) and refuses a bad direction', () => {
    const o = parseOracle(PG);
    expect(o.pgRows).toHaveLength(9);
    expect(o.pgRows[3]).toMatchObject({ frame: 12, stream: 0, dir: 'F', type: 'Simple query', length: 13, info: 'query=select\t1' });
    expect(o.pgRows[7]!.info).toBe('');
    expect(() => parseOracle(row('pg', '1', '0', 'X', 'Parse', '4', ''))).toThrow(/neither F nor B/);
    expect(() => parseOracle(row('pg', '1', '0', 'F', 'Parse', '4'))).toThrow(/expected 4/);
  });

  it('builds per-connection items and compares them with records', () => {
    const o = oraclePg(parseOracle(PG));
    expect(o).toEqual([{
      conn: '10.0.0.1/40000 10.0.0.2/5432', stream: 0, query: ['select\t1'], parse: [{ statement: 's1', sql: 'DROP TABLE x ', frame: 14 }],
      command: ['SELECT 1'], error: ['ERROR 42P01 table "x" does not exist'], notice: ['NOTICE 00000 hi'], cancel: [], auth: 'SASL',
    }]);
    const base = { protocol: 'postgres' as const, connectionId: 'c', src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: '10.0.0.2', port: 5432 }, start: 0, end: 0, durationMs: 0 };
    const session: PgSessionRecord = { auth: 'SCRAM-SHA-256', transaction: 'idle' };
    const recs: PostgresFlow[] = [
      { ...base, id: 'c-1', request: { start: 0, end: 0, frames: [12, 12], size: 14, message: 'Query', query: 'select\t1' }, response: { start: 0, end: 0, size: 1, command: 'SELECT 1', notices: [{ severity: 'NOTICE', code: '00000', message: 'hi' }] }, postgres: session },
      { ...base, id: 'c-2', request: { start: 0, end: 0, frames: [14, 14], size: 1, message: 'Execute', query: 'DROP TABLE x ', statement: 's1' }, response: { start: 0, end: 0, size: 1, error: { severity: 'ERROR', code: '42P01', message: 'table "y" does not exist' } }, postgres: session },
    ];
    const c = comparePg(o, tapwirePg(recs).items);
    expect(c.items).toBe(6);
    expect(c.matched).toBe(5);
    expect(c.deviations.map((d) => `${d.kind} ${d.side} ${d.what}`)).toEqual([
      'error missing ERROR 42P01 table "x" does not exist', 'error extra ERROR 42P01 table "y" does not exist',
    ]);
    expect(authAgrees('SASL', 'SCRAM-SHA-256-PLUS,SCRAM-SHA-256')).toBe(true);
    expect(authAgrees('md5', 'trust')).toBe(false);
    expect(align(['a', 'b', 'c'], ['a', 'c', 'd'])).toEqual({ matched: 2, missing: ['b'], extra: ['d'] });
  });
});
