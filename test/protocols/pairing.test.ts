import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ClientView, Pairing, type PairingLimits, UNPAIRED } from '../../src/protocols/pairing.js';

/*
 * The pairing module on its own, driven by a toy pipelined protocol that knows nothing of HTTP:
 * a request is a line "Q<id>\n", a response "A<id>\n" (one answer per request, in order, as in
 * Redis or MySQL). A response pairs right when its id is its request's. The toy session parses
 * lines across segments and tells the pairing where each message starts, which ACK the segment
 * that carried its first byte held, and which bytes the capture lost.
 */

const LIMITS: PairingLimits = { maxPendingRequests: 1000, maxPendingBytes: 1 << 20, maxUnparsed: 1000 };

/** [request id or undefined, response id or undefined, why unpaired]. */
type Out = [string | undefined, string | undefined, string | undefined];

class LineSession {
  readonly out: Out[] = [];
  readonly overflows: string[] = [];
  readonly pairing: Pairing<string, string>;
  private readonly view: ClientView = { partialOff: -1, partialAck: -1, scanOff: -1, heldOff: -1, heldAck: -1 };
  private readonly line = ['', ''];
  private readonly start = [-1, -1];
  private readonly startAck = [-1, -1];
  private readonly off = [0, 0];
  /**
   * After a gap, bytes are skipped to the next line start; a segment that begins with a message's
   * first letter is taken for one (as the HTTP/1 resync scanner takes a segment start).
   */
  private readonly skip = [false, false];

  constructor(whole = true, limits = LIMITS) {
    this.pairing = new Pairing<string, string>(limits, {
      retired: (p) => this.report(p.request, undefined, p.done),
      evicted: (p) => this.report(p.request, undefined, p.done),
      overflow: (what) => this.overflows.push(what),
      interimMayFill: () => false,
      resolved: (p) => this.report(p.request, p.response, undefined),
      unresolved: (resp, why) => this.report(undefined, resp, why),
    }, whole, whole);
  }

  private report(req: string | undefined, resp: string | undefined, why: string | undefined): void {
    if (req !== undefined) {
      const p = this.pairing.queue.find((x) => x.request === req);
      if (p) this.pairing.remove(p);
    }
    this.out.push([req, resp, why]);
  }

  data(dir: 0 | 1, bytes: string, ack: number): void {
    if (dir === 0) this.pairing.client(this.off[0]! + bytes.length, ack);
    if (this.skip[dir] && bytes[0] === (dir === 0 ? 'Q' : 'A')) this.skip[dir] = false;
    for (const ch of bytes) {
      const at = this.off[dir]!++;
      if (this.skip[dir]) {
        if (ch === '\n') this.skip[dir] = false;
        continue;
      }
      if (this.start[dir]! < 0) {
        this.start[dir] = at;
        this.startAck[dir] = ack;
      }
      this.line[dir] += ch;
      if (ch === '\n') this.message(dir);
    }
  }

  private message(dir: 0 | 1): void {
    const text = this.line[dir]!.trim();
    const off = this.start[dir]!;
    const ack = this.startAck[dir]!;
    this.line[dir] = '';
    this.start[dir] = -1;
    const id = text.slice(1);
    if (dir === 0) {
      const p = this.pairing.create(off, ack, id, text.length);
      this.pairing.enqueue(p);
      return;
    }
    const p = this.pairing.pick(off, ack, true, this.view);
    if (!p && this.pairing.deferring) return this.pairing.defer(id, this.off[1]!, text.length);
    if (!p || p.reported) return this.report(undefined, id, this.pairing.orphan);
    this.pairing.answer(p, id, this.off[1]!);
    if (this.pairing.unique) this.pairing.reanchor(ack, !this.skip[0]);
    this.report(p.request, id, undefined);
    this.pairing.settle(this.start[0] === -1 && this.start[1] === -1 && !this.skip[0] && !this.skip[1]);
  }

  /** `length` bytes of direction `dir` were lost; `ack` is what the lost segment acknowledged. */
  gap(dir: 0 | 1, length: number, ack: number): void {
    const off = this.off[dir]!;
    const inLine = this.start[dir]! >= 0 || this.skip[dir]!;
    this.pairing.noteLoss();
    if (dir === 0) {
      this.pairing.client(off + length, -1);
      this.pairing.hide(inLine ? this.start[dir]! : off, Math.max(0, Math.min(ack, this.pairing.clientAck)));
    } else this.pairing.serverLost(!inLine, undefined, off);
    this.line[dir] = '';
    this.start[dir] = -1;
    this.off[dir] = off + length;
    this.skip[dir] = true;
  }

  end(): void {
    for (const p of this.pairing.drain()) this.out.push([p.request, undefined, p.done ?? 'no-response']);
  }
}

/** One TCP segment of the toy conversation: its direction, bytes, ACK, and whether the capture lost it. */
interface Seg {
  dir: 0 | 1;
  bytes: string;
  ack: number;
  lost?: boolean;
}

/**
 * Requests sent in batches (a batch of one is lockstep: the client waits for each answer). Each
 * request's segment acknowledges every response byte the client had; each response acknowledges
 * the whole batch (the server read it before answering).
 */
function conversation(batches: number[], lost: Set<string> = new Set()): Seg[] {
  const segs: Seg[] = [];
  let c = 0;
  let s = 0;
  let id = 0;
  for (const n of batches) {
    const ids = Array.from({ length: n }, () => String(++id));
    for (const i of ids) {
      const bytes = `Q${i}\n`;
      segs.push({ dir: 0, bytes, ack: s, lost: lost.has(`Q${i}`) });
      c += bytes.length;
    }
    for (const i of ids) {
      const bytes = `A${i}\n`;
      segs.push({ dir: 1, bytes, ack: c, lost: lost.has(`A${i}`) });
      s += bytes.length;
    }
  }
  return segs;
}

/**
 * The same conversation caught mid-connection, from its second segment on: offsets and ACKs count
 * from the first byte seen, as reassembly counts them (its stream base is the first ACK or
 * sequence number seen).
 */
function midway(segs: Seg[]): Seg[] {
  const cut = segs[0]!.bytes.length;
  return segs.slice(1).map((g) => (g.dir === 1 ? { ...g, ack: Math.max(0, g.ack - cut) } : g));
}

/**
 * Feeds the segments. `lazy`: a lost segment is told only when the next segment of its direction
 * arrives (or at the end), as reassembly declares a hole once data after it is held: the other
 * direction may already have acknowledged the lost bytes.
 */
function run(segs: Seg[], whole = true, limits = LIMITS, lazy = false): LineSession {
  const t = new LineSession(whole, limits);
  const pending: (Seg[])[] = [[], []];
  const flush = (dir: 0 | 1) => {
    for (const g of pending[dir]!) t.gap(g.dir, g.bytes.length, g.ack);
    pending[dir] = [];
  };
  for (const g of segs) {
    if (g.lost && lazy) pending[g.dir]!.push(g);
    else if (g.lost) t.gap(g.dir, g.bytes.length, g.ack);
    else {
      flush(g.dir);
      t.data(g.dir, g.bytes, g.ack);
    }
  }
  flush(0);
  flush(1);
  t.end();
  return t;
}

/** Every pair the session made is right: a response with the same id as its request. */
function wrongPairs(out: Out[]): Out[] {
  return out.filter(([q, a]) => q !== undefined && a !== undefined && q !== a);
}

describe('pairing (protocol-neutral)', () => {
  it('pairs in order while nothing is lost, pipelined or not', () => {
    for (const batches of [[1, 1, 1], [3], [2, 1, 4]]) {
      const n = batches.reduce((a, b) => a + b, 0);
      const want = Array.from({ length: n }, (_, i): Out => [String(i + 1), String(i + 1), undefined]);
      expect(run(conversation(batches)).out).toEqual(want);
    }
  });

  it('a lost response at its turn retires its request; the next pairs by acknowledgements', () => {
    const out = run(conversation([1, 1, 1], new Set(['A2']))).out;
    expect(out).toEqual([['1', '1', undefined], ['2', undefined, UNPAIRED.lostInGap], ['3', '3', undefined]]);
  });

  it('a lost request is skipped: its response is reported alone, later ones pair', () => {
    const out = run(conversation([1, 1, 1], new Set(['Q2']))).out;
    expect(out).toEqual([['1', '1', undefined], [undefined, '2', UNPAIRED.noRequest], ['3', '3', undefined]]);
  });

  it('pipelined requests after a loss: an ambiguous response pairs with nothing, never with the wrong one', () => {
    const out = run(conversation([4], new Set(['Q1', 'A2']))).out;
    expect(wrongPairs(out)).toEqual([]);
    expect(out.some(([q, a]) => q === undefined && a !== undefined)).toBe(true);
  });

  it('caught mid-connection (not whole), lockstep answers pair by acknowledgements alone', () => {
    const segs = midway(conversation([1, 1, 1, 1])); // the first request was before the capture
    const out = run(segs, false).out;
    expect(wrongPairs(out)).toEqual([]);
    expect(out.filter(([q, a]) => q !== undefined && a !== undefined).map(([q]) => q)).toEqual(['2', '3', '4']);
  });

  it('past maxPendingRequests the oldest are evicted, and their late answers pair with nothing', () => {
    const t = run(conversation([5]), true, { ...LIMITS, maxPendingRequests: 3 });
    expect(t.overflows).toEqual(['pending', 'pending']);
    expect(t.out).toEqual([
      ['1', undefined, UNPAIRED.evicted], ['2', undefined, UNPAIRED.evicted],
      [undefined, '1', UNPAIRED.evicted], [undefined, '2', UNPAIRED.evicted],
      ['3', '3', undefined], ['4', '4', undefined], ['5', '5', undefined],
    ]);
  });

  it('past maxUnparsed stretches pairing gives up (and says so once) until the connection settles', () => {
    const lost = new Set(['Q1', 'Q2', 'Q3']);
    const t = run(conversation([4], lost), true, { ...LIMITS, maxUnparsed: 2 });
    expect(t.overflows).toEqual(['unparsed']);
    expect(wrongPairs(t.out)).toEqual([]);
  });

  it('gives the same pairs wherever the segments are split (every byte boundary of each direction)', () => {
    for (const lost of [new Set<string>(), new Set(['A2']), new Set(['Q3'])]) {
      const segs = conversation([2, 1, 3], lost);
      const want = run(segs).out;
      for (const dir of [0, 1] as const) {
        // All of one direction's captured bytes as one stream, cut at k: each piece keeps the
        // ACK of the segment its first byte came from.
        for (let k = 0; k < segs.length; k++) {
          const g = segs[k]!;
          if (g.dir !== dir || g.lost) continue;
          for (let at = 1; at < g.bytes.length; at++) {
            const split = [...segs.slice(0, k), { ...g, bytes: g.bytes.slice(0, at) }, { ...g, bytes: g.bytes.slice(at) }, ...segs.slice(k + 1)];
            expect(run(split).out, `segment ${k} split at ${at}`).toEqual(want);
          }
        }
      }
    }
  });

  it('random conversations and losses never pair a response with a request it did not answer', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
        fc.boolean(),
        (n, pipelined, lossBits, whole) => {
          // A client that pipelines does so from its first requests, as HTTP/1 clients do (the
          // mixed case is the known limit below). Caught mid-connection, the client is in
          // lockstep: inside a pipelined batch the request before the capture is invisible and no
          // ACK can tell it from the first request seen.
          if (!whole) pipelined = false;
          const batches = pipelined ? [n] : Array.from({ length: n }, () => 1);
          const lost = new Set<string>();
          for (let i = 1; i <= n; i++) {
            if (lossBits[(2 * i) % 80] && lossBits[(3 * i + 1) % 80]) lost.add(`Q${i}`);
            if (lossBits[(2 * i + 1) % 80] && lossBits[(5 * i + 2) % 80]) lost.add(`A${i}`);
          }
          if (!whole) lost.delete('Q1');
          const segs = conversation(batches, lost);
          const t = run(whole ? segs : midway(segs), whole);
          expect(wrongPairs(t.out)).toEqual([]);
          // Nothing lost: every exchange pairs.
          if (whole && lost.size === 0) expect(t.out.every(([q, a]) => q !== undefined && q === a)).toBe(true);
          // Lockstep: every exchange whose two halves were captured pairs, losses or not, unless the
          // whole exchange before it was lost: then that lost request may have gone out in one
          // flight with this one (the client's first pipelined pair), and nothing seen tells.
          if (!pipelined) {
            for (let i = whole ? 1 : 2; i <= n; i++) {
              if (lost.has(`Q${i}`) || lost.has(`A${i}`)) continue;
              if (lost.has(`Q${i - 1}`) && lost.has(`A${i - 1}`)) continue;
              expect(t.out).toContainEqual([String(i), String(i), undefined]);
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  // Found by a property with mixed batches: the lockstep rule trusted a client never seen
  // pipelining, so when such a client's first pipelined request was lost and only one of its batch
  // was seen, the response to the lost request paired with the request seen after it. The lost
  // request's own ACK is unknown; the lowest it could be proved nothing.
  it('a client seen only in lockstep whose first pipelined request is lost: no wrong pair', () => {
    const out = run(conversation([1, 1, 2], new Set(['Q3']))).out;
    expect(wrongPairs(out)).toEqual([]);
  });

  it('a pipelined batch after a lost answer: the rest are held and pair once the next flight closes the batch', () => {
    const out = run(conversation([1, 4, 1], new Set(['A2'])), true, LIMITS, true).out;
    expect(out).toContainEqual(['2', undefined, UNPAIRED.lostInGap]);
    for (const id of ['3', '4', '5', '6']) expect(out).toContainEqual([id, id, undefined]);
  });

  it('a pipelined batch whose last answer is lost too: the next flight acknowledged bytes not seen, so nothing held pairs', () => {
    const out = run(conversation([1, 4, 1], new Set(['A2', 'A5'])), true, LIMITS, true).out;
    expect(wrongPairs(out)).toEqual([]);
    expect(out.filter(([q, a]) => q !== undefined && a !== undefined && ['3', '4'].includes(q))).toEqual([]);
  });

  it('held answers count against maxPendingBytes: past it, answers are reported as before, never paired wrong', () => {
    const t = run(conversation([1, 4, 1], new Set(['A2'])), true, { ...LIMITS, maxPendingBytes: 9 }, true);
    expect(wrongPairs(t.out)).toEqual([]);
    expect(t.out.some(([q, a, why]) => q === undefined && a !== undefined && why === UNPAIRED.ambiguousRequest)).toBe(true);
    // Unbounded, the same conversation pairs every held answer (the test above).
  });

  it('two answers of one pipelined batch lost: those held after the last loss pair from the end, the rest are not guessed', () => {
    const out = run(conversation([1, 6, 1], new Set(['A2', 'A5'])), true, LIMITS, true).out;
    expect(wrongPairs(out)).toEqual([]);
    for (const id of ['6', '7', '8']) expect(out).toContainEqual([id, id, undefined]);
    for (const id of ['3', '4']) expect(out).toContainEqual([undefined, id, UNPAIRED.ambiguousRequest]);
  });

  it('clients that switch between lockstep and pipelining, with losses anywhere: never a wrong pair', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.boolean(), { minLength: 48, maxLength: 48 }),
        fc.boolean(),
        (batches, lossBits, whole) => {
          const n = batches.reduce((a, b) => a + b, 0);
          const lost = new Set<string>();
          for (let i = 1; i <= n; i++) {
            if (lossBits[(2 * i) % 48] && lossBits[(7 * i + 3) % 48]) lost.add(`Q${i}`);
            if (lossBits[(2 * i + 1) % 48] && lossBits[(5 * i + 2) % 48]) lost.add(`A${i}`);
          }
          if (!whole) lost.delete('Q1');
          // Caught inside a pipelined batch, the request before the capture is invisible (the known
          // limit in pairing.ts): mid-connection cases start with a batch of one.
          if (!whole) batches[0] = 1;
          const segs = conversation(batches, lost);
          expect(wrongPairs(run(whole ? segs : midway(segs), whole).out)).toEqual([]);
          expect(wrongPairs(run(whole ? segs : midway(segs), whole, LIMITS, true).out)).toEqual([]);
          // Tight bounds: answers held and answers not held mix within one flight.
          expect(wrongPairs(run(whole ? segs : midway(segs), whole, { maxPendingRequests: 3, maxPendingBytes: 9, maxUnparsed: 4 }, true).out)).toEqual([]);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
