import { describe, expect, it } from 'vitest';
import { Conversation, type Segment } from '../helpers/bytes.js';
import { httpRun, runSegments, summary } from '../helpers/pipeline.js';
import type { HttpFlowRecord } from '../../src/flows/record.js';
import { req, resp } from './cases.js';

/*
 * Capture loss: segments missing from the capture although the peer received them (its ACKs say
 * so). Every response carries X-Echo-Path with its request's path, so each test can check that
 * no record pairs a response with a request it did not answer.
 */

const echoed = (path: string, body: string, headers: string[] = []) =>
  resp('200 OK', [`Content-Length: ${body.length}`, `X-Echo-Path: ${path}`, ...headers], body);

/** Every record with both halves pairs a request with its own response. */
function expectNoWrongPairs(records: HttpFlowRecord[]): void {
  for (const r of records) {
    if (r.request && r.response) expect(r.response.headers['x-echo-path'], summary(r)).toBe(r.request.path);
  }
}

interface Built { segs: Segment[]; dropped: Set<Segment> }

/**
 * n keep-alive exchanges /r1../rn, non-pipelined: request, then its response. `drop(i, segs, request)`
 * picks which of exchange i's response segments (or request segments) the capture misses.
 */
function keepAlive(n: number, bodyLen: (i: number) => number, drop: (i: number, segs: Segment[], request: Segment[]) => Segment[]): Built {
  const c = new Conversation();
  c.handshake();
  const dropped = new Set<Segment>();
  for (let i = 1; i <= n; i++) {
    const request = c.send(0, req('GET', `/r${i}`));
    const segs = c.send(1, echoed(`/r${i}`, String.fromCharCode(96 + i).repeat(bodyLen(i))));
    for (const s of drop(i, segs, request)) dropped.add(s);
  }
  c.close();
  return { segs: c.segments.filter((s) => !dropped.has(s)), dropped };
}

describe('a gap inside a body of known length', () => {
  it('marks that exchange gap-in-body and later exchanges still pair', () => {
    const { segs, dropped } = keepAlive(4, (i) => (i === 2 ? 5000 : 10), (i, s) => (i === 2 ? [s[1]!] : []));
    expect(dropped.size).toBe(1);
    const { records, pipeline } = httpRun(runSegments(segs));
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
    const { records } = httpRun(runSegments(c.segments.filter((s) => s !== lostReq && s !== chunkSegs[2])));
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
    const { records } = httpRun(runSegments(c.segments.filter((s) => s !== segs[1])));
    expect(records.map(summary)).toEqual(['GET /stream -> 200 (gap-in-body)']);
  });
});

/** The summaries of /r1../rn all paired, but for the given exchanges. */
const allPairedBut = (n: number, but: Record<number, string>) =>
  Array.from({ length: n }, (_, k) => but[k + 1] ?? `GET /r${k + 1} -> 200`);

describe('a whole response lost, keep-alive, not pipelined', () => {
  for (const lost of [1, 2, 4, 5]) {
    it(`response ${lost} of 5 lost: that request is incomplete, and every later exchange pairs again`, () => {
      const { segs, dropped } = keepAlive(5, () => 3000, (i, s) => (i === lost ? s : []));
      expect(dropped.size).toBe(3);
      // The client's next segments acknowledge the lost bytes: the ACKs prove the capture missed them.
      const next = segs.find((s) => s.dir === 0 && s.payload.includes(`/r${lost + 1} `));
      const first = [...dropped][0]!;
      if (next) expect(next.ack).toBe((first.seq + [...dropped].reduce((n, s) => n + s.payload.length, 0)) >>> 0);
      const { records, pipeline } = httpRun(runSegments(segs));
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
      // The client acknowledged the lost bytes before it sent the next request: pairing recovers.
      expect(records.map(summary)).toEqual(allPairedBut(5, { [lost]: `GET /r${lost} -> ∅ (response-lost-in-gap)` }));
    });
  }

  for (const lost of [1, 3, 5]) {
    it(`request ${lost} of 5 lost: its response is reported alone, and every later exchange pairs again`, () => {
      const { segs } = keepAlive(5, () => 3000, (i, _s, request) => (i === lost ? request : []));
      const { records } = httpRun(runSegments(segs));
      expect(records.map(summary)).toEqual(allPairedBut(5, { [lost]: '∅ -> 200 (no-request-seen)' }));
      expect(records[lost - 1]!.response!.headers['x-echo-path']).toBe(`/r${lost}`);
    });
  }

  it('two responses in a row lost, then a request and its response: only those exchanges, and the next, are not paired', () => {
    const { segs } = keepAlive(7, () => 3000, (i, s, request) => (i === 2 || i === 3 ? s : i === 5 ? [...request, ...s] : []));
    const { records } = httpRun(runSegments(segs));
    // /r5's request and its answer both lost: the lost bytes may have held a request sent in one
    // flight with /r6 (nothing seen tells), so /r6's answer is not guessed; /r7 pairs again.
    expect(records.map(summary)).toEqual([
      'GET /r1 -> 200', 'GET /r2 -> ∅ (response-lost-in-gap)', 'GET /r3 -> ∅ (response-lost-in-gap)',
      'GET /r4 -> 200', '∅ -> 200 (request-ambiguous-after-gap)', 'GET /r6 -> ∅ (response-ambiguous-after-gap)', 'GET /r7 -> 200',
    ]);
    expectNoWrongPairs(records);
  });

  it('a hole from the end of one body into the next response: gap-in-body, then response-lost-in-gap, then pairing', () => {
    const { segs } = keepAlive(5, () => 3000, (i, s) => (i === 2 ? [s[2]!] : i === 3 ? [s[0]!] : []));
    const { records } = httpRun(runSegments(segs));
    expect(records.map(summary)).toEqual(allPairedBut(5, { 2: 'GET /r2 -> 200 (gap-in-body)', 3: 'GET /r3 -> ∅ (response-lost-in-gap)' }));
    expect(records[1]!.response!.bodySize).toBe(3000);
  });

  it('lost bytes that may have been only an interim answer (Expect: 100-continue) do not end the exchange', () => {
    const c = new Conversation();
    c.handshake();
    c.send(0, req('POST', '/upload', ['Content-Length: 5', 'Expect: 100-continue']));
    const interim = c.send(1, 'HTTP/1.1 100 Continue\r\n\r\n');
    c.send(0, 'hello');
    c.send(1, echoed('/upload', 'stored'));
    c.send(0, req('GET', '/next'));
    c.send(1, echoed('/next', 'ok'));
    c.close();
    const { records } = httpRun(runSegments(c.segments.filter((s) => !interim.includes(s))));
    expect(records.map(summary)).toEqual(['POST /upload -> 200', 'GET /next -> 200']);
    expectNoWrongPairs(records);
  });

  it('pipelined: a lost response in the middle never shifts the pairing', () => {
    const c = new Conversation();
    c.handshake();
    c.send(0, [1, 2, 3, 4].map((i) => req('GET', `/p${i}`)).join(''));
    const resps = [1, 2, 3, 4].map((i) => c.send(1, echoed(`/p${i}`, 'x'.repeat(200 * i))));
    c.ack(0);
    c.close();
    const { records } = httpRun(runSegments(c.segments.filter((s) => !resps[1]!.includes(s))));
    expectNoWrongPairs(records);
    expect(records.filter((r) => r.request?.path === '/p2')).toMatchObject([{ incomplete: true }]);
    expect(records.filter((r) => r.request && r.response).map((r) => r.request!.path)).toContain('/p1');
    // The hole may have held /p2's and /p3's responses: the two after it are held, and when the
    // connection ends with one for each request left, they pair in order.
    expect(records.map(summary)).toEqual(['GET /p1 -> 200', 'GET /p2 -> ∅ (response-lost-in-gap)', 'GET /p3 -> 200', 'GET /p4 -> 200']);
  });

  it('pipelined, a request lost: those before it pair in order, the rest are not guessed', () => {
    const c = new Conversation();
    c.handshake();
    const reqs = [1, 2, 3, 4].map((i) => c.send(0, req('GET', `/p${i}`)));
    [1, 2, 3, 4].forEach((i) => c.send(1, echoed(`/p${i}`, 'x'.repeat(100 * i))));
    c.close();
    const { records } = httpRun(runSegments(c.segments.filter((s) => !reqs[2]!.includes(s))));
    expectNoWrongPairs(records);
    // The lost bytes may have held more than one request: /p4's response cannot be told from /p3's.
    expect(records.filter((r) => r.request && r.response).map(summary)).toEqual(['GET /p1 -> 200', 'GET /p2 -> 200']);
    expect(records.filter((r) => r.request?.path === '/p4')).toMatchObject([{ incomplete: true }]);
  });

  it('the headers of a response lost (gap at its start): its request is not paired with the next response', () => {
    const { segs } = keepAlive(3, (i) => (i === 2 ? 4000 : 10), (i, s) => (i === 2 ? [s[0]!] : []));
    const { records } = httpRun(runSegments(segs));
    expectNoWrongPairs(records);
    expect(records.filter((r) => r.request?.path === '/r2')).toMatchObject([{ incomplete: true }]);
    expect(records.map(summary)).toContain('GET /r1 -> 200');
  });
});
