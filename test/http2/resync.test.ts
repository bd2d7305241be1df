/**
 * HTTP/2 framing after a TCP gap (RFC 9113 §4.1): the session looks for the next frame boundary by
 * shape. Inside a frame's payload a run of plausible-looking frame headers can appear by chance
 * (an empty DATA frame on stream 16 269 056, then a frame the segment cuts); taking it would read
 * the rest of the connection from a wrong boundary. Real captures re-cut at 536 bytes, so that
 * segments start inside frames, with one segment dropped at a time: every record must still be
 * right in what it says, and name only streams that exist.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Conversation, toPackets, type Segment } from '../helpers/bytes.js';
import { findFrameSync } from '../../src/protocols/http2/probe.js';
import { loadLoss, recordsOfEntries, type H2Record } from './loss-helpers.js';

const MSS = 536;

/** The capture's connections replayed one after another, every packet's payload cut into MSS-sized segments. */
async function recut(file: string): Promise<Segment[]> {
  const cap = await loadLoss(file);
  const conns = new Map<string, typeof cap.entries>();
  for (const e of cap.entries) {
    if (!e.tcp || e.tcp.len === 0) continue;
    const k = [e.tcp.from, e.tcp.to].sort().join('|');
    if (!conns.has(k)) conns.set(k, []);
    conns.get(k)!.push(e);
  }
  const out: Segment[] = [];
  let port = 40000, start = 1_700_000_000;
  for (const list of conns.values()) {
    // The client is the side that sends the connection preface (RFC 9113 §3.4); the server may speak first.
    const client = list.find((e) => e.packet.data.includes('PRI * HTTP/2.0'))?.tcp!.from;
    if (client === undefined) continue;
    const c = new Conversation({ clientPort: port++, serverPort: 50051, start });
    c.handshake();
    for (const e of list) c.send(e.tcp!.from === client ? 0 : 1, e.packet.data.subarray(e.packet.data.length - e.tcp!.len), MSS);
    c.close();
    out.push(...c.segments);
    start = out[out.length - 1]!.time + 1;
  }
  return out;
}

function decode(segs: Segment[]): H2Record[] {
  return recordsOfEntries(toPackets(segs).map((packet) => ({ packet })));
}

/** What a record says must be what the whole capture says for its stream; missing is allowed. */
function neverWrong(r: H2Record, clean: H2Record[], where: string): void {
  const c = clean.find((x) => x.streamId === r.streamId && x.src.port === r.src.port);
  expect(c, `${where}: stream ${r.streamId} is no stream of the capture`).toBeDefined();
  for (const side of ['request', 'response'] as const) {
    const h = r[side] as Record<string, unknown> | undefined;
    const ch = c![side] as Record<string, unknown> | undefined;
    if (!h) continue;
    expect(ch, `${where}: stream ${r.streamId} ${side}`).toBeDefined();
    for (const k of ['method', 'path', 'status', 'authority', 'grpcStatus']) {
      if (h[k] !== undefined && !(k === 'method' && h[k] === '') && !(k === 'path' && h[k] === '')) expect(h[k], `${where}: stream ${r.streamId} ${side}.${k}`).toEqual(ch![k]);
    }
    for (const part of ['headers', 'trailers'] as const) {
      for (const [k, v] of Object.entries((h[part] ?? {}) as Record<string, string>)) {
        expect(v, `${where}: stream ${r.streamId} ${side} ${part} ${k}`).toBe(((ch![part] ?? {}) as Record<string, string>)[k]);
      }
    }
    if (typeof h.body === 'string' && h.bodyEncoding === undefined) expect(String(ch!.body ?? '').startsWith(h.body), `${where}: stream ${r.streamId} ${side} body`).toBe(true);
    const msgs = (ch!.messages ?? []) as unknown[];
    for (const m of (h.messages ?? []) as { json?: unknown; fields?: unknown }[]) {
      if (m.json === undefined && m.fields === undefined) continue;
      expect(msgs.some((x) => JSON.stringify((x as { json?: unknown }).json) === JSON.stringify(m.json) && JSON.stringify((x as { fields?: unknown }).fields) === JSON.stringify(m.fields)),
        `${where}: stream ${r.streamId} ${side} message ${JSON.stringify(m)}`).toBe(true);
    }
  }
  if (!r.incomplete) expect(r.response?.status, `${where}: stream ${r.streamId} complete`).toBe(c!.response?.status);
}

const FILES = (process.env.RESYNC_FILES ?? 'pcaps/grpc/unary.pcap,pcaps/grpc/server-streaming.pcap,pcaps/grpc/concurrent.pcap,pcaps/grpc/gzip.pcap,pcaps/http2/padded-priority-ping.pcap').split(',');

describe('HTTP/2 framing after a gap', () => {
  it('a run of frame headers inside a payload is found by shape alone', () => {
    // An empty DATA frame on stream 16 269 056, then a PUSH_PROMISE the segment cuts: plausible.
    const b = Buffer.concat([Buffer.from('zz'), Buffer.from([0, 0, 0, 0, 0, 0, 0xf8, 0x40, 0]), Buffer.from([0, 2, 1, 5, 0, 0, 0, 9, 0xc0]), Buffer.alloc(20)]);
    expect(findFrameSync(b, 16_384, 1, true)).toBe(2);
    // A session can tell: no stream near that id was ever open.
    expect(findFrameSync(b, 16_384, 1, true, (s) => s < 1000)).toBe(-1);
    expect(findFrameSync(b, 16_384, 1, true, (s) => s < 2 ** 31)).toBe(2);
  });

  for (const file of FILES) {
    it(`${file}, cut at ${MSS} bytes, one segment dropped at a time: no record says anything wrong`, async () => {
      expect(existsSync(file)).toBe(true);
      const segs = await recut(file);
      const clean = decode(segs);
      expect(clean.every((r) => !r.incomplete)).toBe(true);
      const data = segs.map((s, i) => [s, i] as const).filter(([s]) => s.payload.length > 0).map(([, i]) => i);
      // Every data segment for small captures; a sample of 80 for large ones.
      const step = Math.max(1, Math.floor(data.length / 80));
      for (let k = 0; k < data.length; k += step) {
        const got = decode(segs.filter((_, i) => i !== data[k]));
        for (const r of got) neverWrong(r, clean, `${file} without segment ${data[k]}`);
      }
    }, 120_000);
  }
});
