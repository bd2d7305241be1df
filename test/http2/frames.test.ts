import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME, FrameReader, PREFACE, type Frame } from '../../src/protocols/http2/frames.js';
import { findFrameSync, probeHttp2 } from '../../src/protocols/http2/probe.js';
import { frame } from '../helpers/http2.js';


const settings = frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
const data1 = frame(FRAME.DATA, 0, 1, 'hello');
const data3 = frame(FRAME.DATA, 1, 3, 'world!');
const ping = frame(FRAME.PING, 0, 0, Buffer.alloc(8));

function read(chunks: Buffer[], maxFrame?: number) {
  const got: { type: number; stream: number; payload: string; gapped: boolean }[] = [];
  const over: number[] = [];
  const r = new FrameReader((f: Frame, gapped) => got.push({ type: f.type, stream: f.stream, payload: f.payload.toString('latin1'), gapped }), (_t, len) => over.push(len));
  if (maxFrame) r.maxFrame = maxFrame;
  let off = 0;
  for (const c of chunks) {
    r.push(c, off);
    off += c.length;
  }
  return { got, over, r };
}

describe('FrameReader', () => {
  const all = Buffer.concat([settings, data1, ping, data3]);
  const whole = read([all]).got;

  it('reads frames back to back', () => {
    expect(whole.map((f) => [f.type, f.stream, f.payload.length])).toEqual([[4, 0, 6], [0, 1, 5], [6, 0, 8], [0, 3, 6]]);
  });

  it('gives the same frames whatever the segmentation (every split point)', () => {
    for (let i = 1; i < all.length; i++) expect(read([all.subarray(0, i), all.subarray(i)]).got).toEqual(whole);
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: all.length - 1 }), { maxLength: 6 }), (cuts) => {
      const pts = [...new Set(cuts)].sort((a, b) => a - b);
      const parts: Buffer[] = [];
      let last = 0;
      for (const p of pts) { parts.push(all.subarray(last, p)); last = p; }
      parts.push(all.subarray(last));
      expect(read(parts).got).toEqual(whole);
    }));
  });

  it('skips a frame over the announced maximum and reports it, without buffering it', () => {
    const big = frame(FRAME.DATA, 0, 1, Buffer.alloc(20_000));
    const { got, over } = read([big.subarray(0, 5000), big.subarray(5000), data3]);
    expect(over).toEqual([20_000]);
    expect(got.map((f) => f.stream)).toEqual([3]);
  });

  it('a gap inside a payload keeps framing; a gap across a boundary does not', () => {
    const r = read([settings, data1.subarray(0, 11)]);
    expect(r.r.gap(2)).toBe(true); // 9 + 5 = 14 bytes: 11 seen, 2 lost, 1 still to come
    r.r.push(data1.subarray(13), 0);
    r.r.push(data3, 0);
    expect(r.got.map((f) => [f.stream, f.payload, f.gapped])).toEqual([[0, '\u0000\u0003\u0000\u0000\u0000d', false], [1, 'he', true], [3, 'world!', false]]);
    const s = read([settings, data1.subarray(0, 11)]);
    expect(s.r.gap(10)).toBe(false);
  });
});

describe('HTTP/2 probe', () => {
  it('the client preface matches (and asks for more when cut)', () => {
    expect(probeHttp2(0, Buffer.concat([PREFACE, settings]))).toBe('match');
    expect(probeHttp2(1, PREFACE)).toBe('reverse');
    expect(probeHttp2(0, PREFACE.subarray(0, 10))).toBe('more');
  });

  it('mid-connection: a run of frames that tiles the segment matches; request/response blocks orient it', () => {
    const reqHeaders = frame(FRAME.HEADERS, 4, 5, Buffer.from([0x82, 0x84, 0x86])); // :method GET, :path /, :scheme http
    const respHeaders = frame(FRAME.HEADERS, 4, 5, Buffer.from([0x88])); // :status 200
    expect(probeHttp2(0, Buffer.concat([reqHeaders, data1]))).toBe('match');
    expect(probeHttp2(0, Buffer.concat([respHeaders, data1]))).toBe('reverse');
    expect(probeHttp2(1, Buffer.concat([respHeaders, data1]))).toBe('match');
  });

  it('random binary, HTTP/1 and a lone partial frame are not taken for HTTP/2', () => {
    expect(probeHttp2(0, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe('no');
    expect(probeHttp2(0, Buffer.concat([data1, Buffer.from([1, 2, 3])]))).toBe('no');
    let hits = 0;
    fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 200 }), (a) => {
      if (probeHttp2(0, Buffer.from(a)) === 'match') hits++;
    }), { numRuns: 2000 });
    expect(hits).toBe(0);
  });

  it('findFrameSync finds where frames start after a gap', () => {
    const tail = Buffer.concat([Buffer.from('xyzzy-partial-payload'), data1, data3]);
    expect(findFrameSync(tail)).toBe(21);
    expect(findFrameSync(Buffer.from('no frames here at all, just text'))).toBe(-1);
  });
});
