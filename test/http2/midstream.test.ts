import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { only, type H2FlowRecord } from '../helpers/records.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';

/**
 * A capture cut mid-connection must give desynced-but-correct records: whatever a record from the
 * cut capture says (method, path, status, each header, gRPC status) equals what the whole capture
 * says for the same stream. Missing is allowed; wrong is not.
 */
function cutPcap(file: string, skip: number): string {
  const b = readFileSync(file);
  const out = [b.subarray(0, 24)];
  let p = 24, n = 0;
  while (p + 16 <= b.length) {
    const len = b.readUInt32LE(p + 8);
    if (n >= skip) out.push(b.subarray(p, p + 16 + len));
    p += 16 + len;
    n++;
  }
  const f = join(mkdtempSync(join(tmpdir(), 'tapwire-cut-')), 'cut.pcap');
  writeFileSync(f, Buffer.concat(out));
  return f;
}

function packets(file: string): number {
  const b = readFileSync(file);
  let p = 24, n = 0;
  while (p + 16 <= b.length) { p += 16 + b.readUInt32LE(p + 8); n++; }
  return n;
}

async function records(file: string): Promise<H2FlowRecord[]> {
  return only((await analyzeFile(file)).records!, 'http2', 'grpc');
}

function checkAgainst(cut: H2FlowRecord[], full: H2FlowRecord[], where: string): number {
  let known = 0;
  for (const r of cut) {
    const twin = full.find((f) => f.streamId === r.streamId && f.connectionId !== undefined);
    expect(twin, `${where}: stream ${r.streamId} not in the whole capture`).toBeDefined();
    const t = twin!;
    for (const side of ['request', 'response'] as const) {
      const h = r[side];
      if (!h) continue;
      const th = t[side]!;
      for (const [k, v] of Object.entries(h.headers)) {
        expect(th.headers[k], `${where}: stream ${r.streamId} ${side} header ${k}`).toBe(v);
        known++;
      }
    }
    if (r.request?.method) expect(r.request.method).toBe(t.request!.method);
    if (r.request?.path) expect(r.request.path).toBe(t.request!.path);
    if (r.response?.status !== undefined) {
      expect(r.response.status, `${where}: stream ${r.streamId} status`).toBe(t.response!.status);
      known++;
    }
    if (r.response?.grpcStatus !== undefined) expect(r.response.grpcStatus).toBe(t.response!.grpcStatus);
    // A gRPC stream whose content-type was lost before the cut is plain "http2" (less specific,
    // not wrong), and shows raw DATA where the whole capture shows messages.
    if (r.protocol === 'grpc') expect(t.protocol).toBe('grpc');
    if (r.protocol === t.protocol && r.response?.body !== undefined && !r.response.bodyTruncated) expect(r.response.body).toBe(t.response!.body);
  }
  return known;
}

describe('HTTP/2 caught mid-connection', () => {
  for (const file of ['pcaps/http2/interleaved.pcap', 'pcaps/http2/h2c-prior-knowledge.pcap', 'pcaps/grpc/concurrent.pcap', 'pcaps/http2/h2load.pcap']) {
    it(`${file}: cut at every packet, every value shown is right`, async () => {
      const full = await records(file);
      expect(full.length).toBeGreaterThan(0);
      const n = packets(file);
      let shown = 0;
      for (let skip = 1; skip < n; skip++) {
        const cut = await records(cutPcap(file, skip));
        shown += checkAgainst(cut, full, `${file} cut after ${skip}`);
      }
      // Not vacuous: the cut captures do show values (static-table and literal fields decode).
      expect(shown).toBeGreaterThan(0);
    });
  }

  it('the recorded mid-connection capture marks its records and still shows what it can', async () => {
    const rs = await records('pcaps/http2/mid-connection.pcap');
    expect(rs.length).toBeGreaterThan(0);
    const full = await records('pcaps/http2/interleaved.pcap');
    checkAgainst(rs, full, 'mid-connection.pcap');
    for (const r of rs) if (r.headersPartial) expect(r.incomplete).toBe(true);
    expect(rs.some((r) => r.response?.status === 200)).toBe(true);
  });
});
