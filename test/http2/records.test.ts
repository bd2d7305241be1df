import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/flows/redact.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { httpOnly, only, streamIdOf } from '../helpers/records.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { loadProtos } from '../../src/pipeline/protos.js';

/** What the issue asks of HTTP/2 and gRPC records, checked on captures of real traffic. */
async function recs(file: string, opts: Parameters<typeof analyzeFile>[1] = {}): Promise<FlowRecord[]> {
  const r = await analyzeFile(file, opts);
  expect(r.pipeline.violations.total, `${file}: violations ${JSON.stringify(r.pipeline.violations.toJSON())}`).toBe(0);
  return r.records!;
}

describe('HTTP/2 records (node:http2, h2load)', () => {
  it('prior knowledge: methods, paths, statuses, authority, trailers, gzip preview, RST_STREAM and redaction', async () => {
    // Records leave in completion order (a reset stream waits briefly for crossing frames): sort by stream.
    const rs = only(await recs('pcaps/http2/h2c-prior-knowledge.pcap', { redactor: new Redactor({ key: Buffer.from('k') }) }), 'http2', 'grpc')
      .sort((a, b) => a.streamId! - b.streamId!);
    expect(rs.map((r) => [r.protocol, r.request!.method, r.request!.path, r.response?.status])).toEqual([
      ['http2', 'GET', '/api/items', 200], ['http2', 'POST', '/api/items', 201], ['http2', 'GET', '/api/report', 200],
      ['http2', 'GET', '/api/export', 200], ['http2', 'GET', '/api/orders/999', 404], ['http2', 'GET', '/api/slow', 200],
      ['http2', 'DELETE', '/api/items/3', 204],
    ]);
    for (const r of rs) {
      expect(r.request!.version).toBe('2');
      expect(r.request!.authority).toMatch(/^127\.0\.0\.1:18201$/);
      expect(r.request!.headers.authorization).toMatch(/^Bearer \[redacted:[0-9a-f]{12}\]$/);
      expect(r.streamId! % 2).toBe(1);
    }
    const report = rs.find((r) => r.request!.path === '/api/report')!;
    expect(report.response!.headers['content-encoding']).toBe('gzip');
    expect(report.response!.body!.length).toBeGreaterThan(report.response!.bodySize); // decoded preview
    const exp = rs.find((r) => r.request!.path === '/api/export')!;
    expect(Object.keys(exp.response!.trailers ?? {})).toEqual(expect.arrayContaining(['x-checksum', 'x-row-count']));
    const slow = rs.find((r) => r.request!.path === '/api/slow')!;
    expect(slow.error).toEqual({ code: 'CANCEL', frame: 'RST_STREAM', by: 'client' });
  });

  it('20 interleaved streams are never mixed up: each body names its own stream', async () => {
    const rs = only(await recs('pcaps/http2/interleaved.pcap'), 'http2', 'grpc');
    expect(rs).toHaveLength(20);
    for (const r of rs) {
      const n = Number(/\/stream\/(\d+)/.exec(r.request!.path)![1]);
      const tag = `stream ${String(n).padStart(2, '0')}`;
      expect(r.response!.body!.startsWith(tag), `stream ${r.streamId}`).toBe(true);
      expect(r.response!.body!.split(/stream \d\d chunk/).length - 1).toBe((r.response!.body!.match(new RegExp(tag, 'g')) ?? []).length);
    }
  });

  it('HEADERS + CONTINUATION, padding, PRIORITY, PING, changed SETTINGS and frames over 16 KiB', async () => {
    const big = httpOnly(await recs('pcaps/http2/large-headers-continuation.pcap'));
    expect(big.map((r) => Object.keys(r.request!.headers).length + Object.keys(r.response!.headers).length)).toEqual([44, 25]);
    const pad = httpOnly(await recs('pcaps/http2/padded-priority-ping.pcap'));
    expect(pad.map((r) => [r.request!.path, r.response!.status, r.request!.bodySize, r.response!.bodySize])).toEqual([
      ['/', 200, 0, 18], ['/hello', 200, 0, 18], ['/upload', 200, 204800, 95], ['/download', 200, 0, 204800], ['/upload', 200, 50000, 94],
    ]);
  });

  it('h2load: 200 exchanges on 2 connections, all complete', async () => {
    const rs = httpOnly(await recs('pcaps/http2/h2load.pcap'));
    expect(rs).toHaveLength(200);
    expect(new Set(rs.map((r) => r.connectionId)).size).toBe(2);
    expect(rs.every((r) => r.response?.status === 200 && !r.incomplete)).toBe(true);
  });

  it('h2c via HTTP/1.1 Upgrade: the upgrading request is stream 1', async () => {
    const rs = httpOnly(await recs('pcaps/http1/upgrade-h2c.pcap'));
    expect(rs.map((r) => [r.protocol, streamIdOf(r) ?? null, r.request!.path, r.response!.status])).toEqual([
      ['http', null, '/', 101], ['http2', 1, '/', 200], ['http2', 3, '/style.css', 200],
    ]);
  });
});

describe('gRPC records (grpc-js)', () => {
  const protos = loadProtos(['pcaps/grpc/shop.proto']);

  it('unary: path split into service and method, POST, grpc-status, messages decoded with --proto', async () => {
    const rs = only(await recs('pcaps/grpc/unary.pcap', { protos }), 'grpc');
    expect(rs).toHaveLength(5);
    for (const r of rs) {
      expect(r.protocol).toBe('grpc');
      expect(r.request!.method).toBe('POST');
      expect(r.grpc!.service).toBe('tapwire.demo.Orders');
      expect(r.request!.path).toBe(`/tapwire.demo.Orders/${r.grpc!.method}`);
      expect(r.response!.grpcStatus).toBe(0);
      expect(r.request!.messages).toHaveLength(1);
      expect(r.request!.messages![0]!.json).toBeDefined();
      expect(r.response!.messages![0]!.json).toBeDefined();
    }
    expect(rs[0]!.request!.messages![0]!.json).toMatchObject({ id: 'ord-00001' });
  });

  it('without a schema, messages get a schemaless decode in fields, never json', async () => {
    const rs = only(await recs('pcaps/grpc/unary.pcap'), 'grpc');
    const m = rs[0]!.request!.messages![0]!;
    expect(m.json).toBeUndefined();
    expect(m.fields![0]).toEqual({ no: 1, type: 'bytes', value: 'ord-00001' });
  });

  it('streaming calls keep every message in order with its time and size', async () => {
    const server = only(await recs('pcaps/grpc/server-streaming.pcap', { protos }), 'grpc')[0]!;
    expect(server.response!.messages).toHaveLength(10);
    const times = server.response!.messages!.map((m) => m.time);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(server.response!.messages!.every((m) => m.size > 0 && m.json)).toBe(true);
    const client = only(await recs('pcaps/grpc/client-streaming.pcap', { protos }), 'grpc')[0]!;
    expect([client.request!.messages!.length, client.response!.messages!.length]).toEqual([8, 1]);
    const bidi = only(await recs('pcaps/grpc/bidi.pcap', { protos }), 'grpc')[0]!;
    expect([bidi.request!.messages!.length, bidi.response!.messages!.length]).toEqual([5, 7]);
  });

  it('error statuses, Trailers-Only responses and percent-decoded grpc-message', async () => {
    const rs = only(await recs('pcaps/grpc/error-status.pcap'), 'grpc');
    expect(rs.map((r) => r.response!.grpcStatus)).toEqual([5, 5, 3, 12]);
    expect(rs[1]!.response!.grpcMessage).toBe('commande « gone-00123 » introuvable (archivée)');
    expect(rs[1]!.response!.trailers).toBeUndefined(); // Trailers-Only: status in the headers
  });

  it('deadline: grpc-timeout in ms and the deadline outcome; the server answer racing the RST opens no phantom call', async () => {
    const rs = only(await recs('pcaps/grpc/deadline.pcap'), 'grpc');
    expect(rs).toHaveLength(2);
    expect(rs.every((r) => r.request !== undefined)).toBe(true);
    const short = rs.filter((r) => r.grpc!.timeoutMs! < 1000);
    const long = rs.filter((r) => r.grpc!.timeoutMs! >= 1000);
    expect(short.length).toBeGreaterThan(0);
    expect(short.every((r) => r.grpc!.deadlineExceeded === true)).toBe(true);
    expect(long.every((r) => r.grpc!.deadlineExceeded === false && r.response!.grpcStatus === 0)).toBe(true);
  });

  it('gzip: compressed messages are flagged and decoded', async () => {
    const rs = only(await recs('pcaps/grpc/gzip.pcap', { protos }), 'grpc');
    const all = rs.flatMap((r) => [...(r.request!.messages ?? []), ...(r.response?.messages ?? [])]);
    expect(all.filter((m) => m.compressed).length).toBe(12);
    expect(all.every((m) => m.json !== undefined && !m.error)).toBe(true);
  });

  it('1 MB messages spanning many frames, and 50 concurrent calls on one connection', async () => {
    const [big] = only(await recs('pcaps/grpc/large-messages.pcap', { bodyLimit: 4096 }), 'grpc');
    expect(big!.request!.messages![0]!.size).toBeGreaterThan(1_000_000);
    expect(big!.request!.messages![0]!.truncated).toBe(true);
    const many = only(await recs('pcaps/grpc/concurrent.pcap', { protos }), 'grpc');
    expect(many).toHaveLength(50);
    expect(new Set(many.map((r) => r.streamId)).size).toBe(50);
    // Each answer is for the order its request asked for (the server answers "pause-0-00014" with "ord-00014").
    const num = (id: string) => id.slice(-5);
    for (const r of many) expect(num((r.response!.messages![0]!.json as { id: string }).id)).toBe(num((r.request!.messages![0]!.json as { id: string }).id));
  });
});
