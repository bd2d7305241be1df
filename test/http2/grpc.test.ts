import protobuf from 'protobufjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GrpcMessageReader, parseGrpcTimeout, splitGrpcPath } from '../../src/protocols/grpc/framing.js';
import { schemaless } from '../../src/protocols/grpc/protobuf.js';
import { loadProtos, ProtoLoadError } from '../../src/pipeline/protos.js';
import type { Transaction } from '../../src/protocols/types.js';
import { httpRecord } from '../helpers/records.js';

function lpm(body: Buffer, compressed = false): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}

describe('gRPC message framing', () => {
  const a = Buffer.from('first message');
  const b = Buffer.alloc(3000, 7);
  const stream = Buffer.concat([lpm(a), lpm(b, true), lpm(Buffer.alloc(0))]);

  it('reads messages at every split point, keeping order and sizes', () => {
    for (let i = 1; i < stream.length; i += 7) {
      const r = new GrpcMessageReader(1 << 20, 100);
      r.push(stream.subarray(0, i), 1);
      r.push(stream.subarray(i), 2);
      expect(r.messages.map((m) => [m.size, m.compressed, m.data?.length ?? 0])).toEqual([[13, false, 13], [3000, true, 3000], [0, false, 0]]);
    }
  });

  it('keeps at most the limit per message and per call, counting the rest', () => {
    const r = new GrpcMessageReader(100, 2);
    r.push(stream, 1);
    expect(r.messages[1]).toMatchObject({ size: 3000, truncated: true });
    expect(r.messages[1]!.data!.length).toBe(100);
    expect(r.dropped).toBe(1);
  });

  it('after a gap across a boundary, reading restarts only at a frame of exactly whole messages', () => {
    const r = new GrpcMessageReader(100, 10);
    r.push(lpm(a).subarray(0, 7), 1);
    r.gap(1000); // past the end of the message: framing lost
    expect(r.broken).toBeDefined();
    expect(r.restartAt(Buffer.concat([lpm(a), lpm(a)]).subarray(0, 20))).toBe(false); // not whole messages
    expect(r.restartAt(Buffer.concat([lpm(a), lpm(b)]))).toBe(true);
    r.push(Buffer.concat([lpm(a), lpm(b)]), 2);
    expect(r.messages.map((m) => m.size)).toEqual([13, 3000]);
  });

  it('a bad flag byte stops reading instead of inventing messages', () => {
    const r = new GrpcMessageReader(100, 10);
    r.push(Buffer.from([9, 0, 0, 0, 1, 42]), 1);
    expect(r.broken).toMatch(/compressed-flag byte is 9/);
    expect(r.messages).toEqual([]);
  });

  it('grpc-timeout and paths', () => {
    expect(parseGrpcTimeout('100m')).toBe(100);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('5x')).toBeUndefined();
    expect(splitGrpcPath('/tapwire.demo.Orders/GetOrder')).toEqual({ service: 'tapwire.demo.Orders', method: 'GetOrder' });
    expect(splitGrpcPath('/not/a/grpc/path')).toBeUndefined();
  });
});

const PROTO = `syntax = "proto3";
package t;
message Item { string name = 1; int64 qty = 2; repeated string tags = 3; Inner inner = 4; }
message Inner { bool ok = 1; double score = 2; }
service Shop { rpc Get (Item) returns (Item); }
`;

describe('protobuf', () => {
  const root = protobuf.parse(PROTO, { keepCase: true }).root;
  const Item = root.lookupType('t.Item');
  const bytes = Buffer.from(Item.encode(Item.create({ name: 'bolt', qty: 40, tags: ['a', 'b'], inner: { ok: true, score: 2.5 } })).finish());

  it('schemaless: field numbers, wire types, nested messages and strings', () => {
    expect(schemaless(bytes)).toEqual([
      { no: 1, type: 'bytes', value: 'bolt' },
      { no: 2, type: 'varint', value: 40 },
      { no: 3, type: 'bytes', value: 'a' },
      { no: 3, type: 'bytes', value: 'b' },
      { no: 4, type: 'bytes', fields: [{ no: 1, type: 'varint', value: 1 }, { no: 2, type: 'fixed64', value: Buffer.from(new Float64Array([2.5]).buffer).readBigUInt64LE(0).toString() }] },
    ]);
  });

  it('schemaless: varints of every size, exactly (past 2^53 as decimal strings)', () => {
    const cases: [bigint, number | string][] = [
      [0n, 0], [127n, 127], [128n, 128], [2n ** 49n - 1n, 2 ** 49 - 1], [2n ** 53n - 1n, Number.MAX_SAFE_INTEGER],
      [2n ** 53n + 1n, '9007199254740993'], [2n ** 63n - 1n, '9223372036854775807'], [2n ** 64n - 1n, '18446744073709551615'],
    ];
    for (const [n, want] of cases) {
      // Field 1, wire type 0, then the value in base 128 (least significant group first).
      const bytes = [0x08];
      let v = n;
      do {
        let c = Number(v & 0x7fn);
        v >>= 7n;
        if (v) c |= 0x80;
        bytes.push(c);
      } while (v);
      expect(schemaless(Buffer.from(bytes)), `varint ${n}`).toEqual([{ no: 1, type: 'varint', value: want }]);
    }
    // An 11-byte varint is malformed.
    expect(schemaless(Buffer.from([0x08, ...Array(10).fill(0xff), 0x01]))).toBeUndefined();
  });

  it('schemaless: not a message gives undefined, never a throw', () => {
    expect(schemaless(Buffer.from([0x0a, 0x05, 0x61]))).toBeUndefined(); // length runs past the end
    expect(schemaless(Buffer.from([0x07]))).toBeUndefined(); // wire type 7
    for (let i = 0; i < 500; i++) schemaless(Buffer.from(Array.from({ length: 40 }, () => Math.floor(Math.random() * 256))));
  });

  it('--proto: loads a directory, maps methods to types, decodes to JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-proto-'));
    writeFileSync(join(dir, 'shop.proto'), PROTO);
    const s = loadProtos([dir]);
    expect(s.methodCount).toBe(1);
    expect(s.decode('/t.Shop/Get', 0, bytes)).toEqual({ name: 'bolt', qty: '40', tags: ['a', 'b'], inner: { ok: true, score: 2.5 } });
    expect(s.decode('/t.Other/Get', 0, bytes)).toBeUndefined();
  });

  it('--proto errors name the file and the problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-proto-'));
    writeFileSync(join(dir, 'bad.proto'), 'syntax = "proto3"; message { broken');
    expect(() => loadProtos([join(dir, 'bad.proto')])).toThrow(ProtoLoadError);
    expect(() => loadProtos([join(dir, 'bad.proto')])).toThrow(/bad\.proto: /);
    expect(() => loadProtos(['/nonexistent.proto'])).toThrow(/nonexistent\.proto: no such file/);
  });
});

describe('undecodable messages', () => {
  it('are kept as base64 with the reason and a counted violation; the flow is never dropped', async () => {
    const { FlowBuilder } = await import('../../src/flows/build.js');
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-proto-'));
    writeFileSync(join(dir, 'shop.proto'), PROTO);
    const violations: string[] = [];
    const b = new FlowBuilder({ bodyLimit: 4096, frames: true, protos: loadProtos([dir]), violation: (code) => violations.push(code) });
    const half = { start: 1, end: 2, frames: [1, 2] as [number, number], size: 10, headers: { 'content-type': 'application/grpc' }, bodySize: 10 };
    const garbage = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const conn = { id: 'c1', client: { ip: '1.1.1.1', port: 1 }, server: { ip: '2.2.2.2', port: 2 }, family: 4 as const, startTime: 1, firstFrame: 1, handshakeSeen: true, midStream: false };
    const tx: Transaction = {
      protocol: 'grpc', streamId: 1, grpc: { service: 't.Shop', method: 'Get' },
      request: { ...half, method: 'POST', path: '/t.Shop/Get', version: '2', messages: [{ time: 1.5, size: 11, compressed: false, data: garbage }] },
      response: { ...half, status: 200, reason: '', version: '2', grpcStatus: 0, messages: [{ time: 1.9, size: 3, compressed: true, data: Buffer.from('not gzip') }] },
    };
    const r = httpRecord(b.build(tx, conn));
    expect(r.request!.messages![0]).toMatchObject({ data: garbage.toString('base64'), error: expect.stringMatching(/does not decode as its --proto type/) });
    expect(r.response!.messages![0]).toMatchObject({ compressed: true, error: expect.stringMatching(/decompression failed/) });
    expect(violations).toEqual(['grpc.message_undecodable', 'grpc.message_undecodable']);
    expect(r.response!.grpcStatus).toBe(0);
  });
});
