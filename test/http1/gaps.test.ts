import { describe, expect, it } from 'vitest';
import { Conversation, type Segment } from '../helpers/bytes.js';
import { runSegments, summary } from '../helpers/pipeline.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { req, resp } from './cases.js';

/*
 * Capture loss: segments missing from the capture although the peer received them (its ACKs say
 * so). Every response carries X-Echo-Path with its request's path, so each test can check that
 * no record pairs a response with a request it did not answer.
 */

const echoed = (path: string, body: string, headers: string[] = []) =>
  resp('200 OK', [`Content-Length: ${body.length}`, `X-Echo-Path: ${path}`, ...headers], body);

/** Every record with both halves pairs a request with its own response. */
function expectNoWrongPairs(records: FlowRecord[]): void {
  for (const r of records) {
    if (r.request && r.response) expect(r.response.headers['x-echo-path'], summary(r)).toBe(r.request.path);
  }
}

interface Built { segs: Segment[]; dropped: Set<Segment> }

/**
 * n keep-alive exchanges /r1../rn, non-pipelined: request, then its response. `drop(i, segs)`
 * picks which of exchange i's response segments the capture misses.
 */
function keepAlive(n: number, bodyLen: (i: number) => number, drop: (i: number, segs: Segment[]) => Segment[]): Built {
  const c = new Conversation();
  c.handshake();
  const dropped = new Set<Segment>();
  for (let i = 1; i <= n; i++) {
    c.send(0, req('GET', `/r${i}`));
    const segs = c.send(1, echoed(`/r${i}`, String.fromCharCode(96 + i).repeat(bodyLen(i))));
    for (const s of drop(i, segs)) dropped.add(s);
  }
  c.close();
  return { segs: c.segments.filter((s) => !dropped.has(s)), dropped };
}

describe('a gap inside a body of known length', () => {
  it('marks that exchange gap-in-body and later exchanges still pair', () => {
    const { segs, dropped } = keepAlive(4, (i) => (i === 2 ? 5000 : 10), (i, s) => (i === 2 ? [s[1]!] : []));
    expect(dropped.size).toBe(1);
    const { records, pipeline } = runSegments(segs);
    expect(records.map(summary)).toEqual(['GET /r1 -> 200', 'GET /r2 -> 200 (gap-in-body)', 'GET /r3 -> 200', 'GET /r4 -> 200']);
    expectNoWrongPairs(records);
    const r2 = records[1]!;
    expect(r2.incomplete).toBe(true);
    expect(r2.incompleteReason).toBe('gap-in-body');
    expect(r2.response!.bodySize).toBe(5000);
    // The preview stops at the hole: it is the body up to the missing segment.
    expect(r2.response!.body).toBe('b'.repeat(1460 - (segs.find((s) => s.dir === 1 && s.payload.includes('X-Echo-Path: /r2'))!.payload.indexOf('\r\n\r\n') + 4)));
    expect(records[2]!.response!.body).toBe('c'.repeat(10));
    expect(records[3]!.incomplete).toBeUndefined();
    expect(pipeline.reassembler.stats.gaps).toBe(1);
  });

  it('the same for a request body, and for a gap inside one large chunk', () => {
    const c = new Conversation();
    c.handshake();
    c.send(0, req('POST', '/upload', ['Content-Length: 4000'], 'u'.repeat(4000)));
    const lostReq = c.segments[c.segments.length - 2]!;
    c.send(1, echoed('/upload', 'ok'));
    c.send(0, req('GET', '/chunky'));
    const chunk = 'k'.repeat(6000);
    const chunkSegs = c.send(1, resp('200 OK', ['Transfer-Encoding: chunked', 'X-Echo-Path: /chunky'], `${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`));
    c.send(0, req('GET', '/last'));
    c.send(1, echoed('/last', 'fin'));
    c.close();
    const { records } = runSegments(c.segments.filter((s) => s !== lostReq && s !== chunkSegs[2]));
    expect(records.map(summary)).toEqual(['POST /upload -> 200 (gap-in-body)', 'GET /chunky -> 200 (gap-in-body)', 'GET /last -> 200']);
    expect(records[0]!.request!.bodySize).toBe(4000);
    expect(records[1]!.response!.bodySize).toBe(6000);
    expectNoWrongPairs(records);
  });

  it('a gap in a close-delimited body keeps the exchange, marked', () => {
    const c = new Conversation();
    c.handshake();
    c.send(0, req('GET', '/stream'));
    const segs = c.send(1, resp('200 OK', ['X-Echo-Path: /stream'], 's'.repeat(4000)));
    c.close(1);
    const { records } = runSegments(c.segments.filter((s) => s !== segs[1]));
    expect(records.map(summary)).toEqual(['GET /stream -> 200 (gap-in-body)']);
  });
});

describe('a whole response lost, keep-alive, not pipelined', () => {
  for (const lost of [1, 2, 4, 5]) {
    it(`response ${lost} of 5 lost: that request is incomplete and no response is paired with the wrong request`, () => {
      const { segs, dropped } = keepAlive(5, () => 3000, (i, s) => (i === lost ? s : []));
      expect(dropped.size).toBe(3);
      // The client's next segments acknowledge the lost bytes: the ACKs prove the capture missed them.
      const next = segs.find((s) => s.dir === 0 && s.payload.includes(`/r${lost + 1} `));
      const first = [...dropped][0]!;
      if (next) expect(next.ack).toBe((first.seq + [...dropped].reduce((n, s) => n + s.payload.length, 0)) >>> 0);
      const { records, pipeline } = runSegments(segs);
      expectNoWrongPairs(records);
      // Exchanges before the loss pair normally.
      for (let i = 1; i < lost; i++) expect(records.map(summary)).toContain(`GET /r${i} -> 200`);
      // The request whose response was lost is reported, incomplete, without a response.
      const lostRec = records.filter((r) => r.request?.path === `/r${lost}`);
      expect(lostRec).toHaveLength(1);
      expect(lostRec[0]!.response).toBeUndefined();
      expect(lostRec[0]!.incomplete).toBe(true);
      // Every request and every surviving response appears exactly once.
      for (let i = 1; i <= 5; i++) {
        expect(records.filter((r) => r.request?.path === `/r${i}`), `request /r${i}`).toHaveLength(1);
        if (i !== lost) expect(records.filter((r) => r.response?.headers['x-echo-path'] === `/r${i}`), `response /r${i}`).toHaveLength(1);
      }
      expect(pipeline.reassembler.stats.gaps).toBe(1);
    });
  }

  it('pipelined: a lost response in the middle never shifts the pairing', () => {
    const c = new Conversation();
    c.handshake();
    c.send(0, [1, 2, 3, 4].map((i) => req('GET', `/p${i}`)).join(''));
    const resps = [1, 2, 3, 4].map((i) => c.send(1, echoed(`/p${i}`, 'x'.repeat(200 * i))));
    c.ack(0);
    c.close();
    const { records } = runSegments(c.segments.filter((s) => !resps[1]!.includes(s)));
    expectNoWrongPairs(records);
    expect(records.filter((r) => r.request?.path === '/p2')).toMatchObject([{ incomplete: true }]);
    expect(records.filter((r) => r.request && r.response).map((r) => r.request!.path)).toContain('/p1');
  });

  it('the headers of a response lost (gap at its start): its request is not paired with the next response', () => {
    const { segs } = keepAlive(3, (i) => (i === 2 ? 4000 : 10), (i, s) => (i === 2 ? [s[0]!] : []));
    const { records } = runSegments(segs);
    expectNoWrongPairs(records);
    expect(records.filter((r) => r.request?.path === '/r2')).toMatchObject([{ incomplete: true }]);
    expect(records.map(summary)).toContain('GET /r1 -> 200');
  });
});
