import { describe, expect, it } from 'vitest';
import { run, streams, type Seg } from './harness.js';

// Client ISN 1000, server ISN 5000: client data starts at 1001, server data at 5001.
const HS: Seg[] = [
  { from: 'c', seq: 1000, flags: 'S' },
  { from: 's', seq: 5000, ack: 1001, flags: 'SA' },
  { from: 'c', seq: 1001, ack: 5001, flags: 'A' },
];

/** Table of reassembly cases: segments in capture order → expected per-direction streams. */
const cases: { name: string; segs: Seg[]; client: string; server: string; extra?: (r: ReturnType<typeof run>) => void }[] = [
  {
    name: 'in order',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }, { from: 's', seq: 5001, ack: 1004, data: 'XYZ' }],
    client: 'abc', server: 'XYZ',
  },
  {
    name: 'reordered segments are held and delivered in order',
    segs: [...HS, { from: 'c', seq: 1004, ack: 5001, data: 'def' }, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }, { from: 'c', seq: 1007, ack: 5001, data: 'ghi' }],
    client: 'abcdefghi', server: '',
    extra: (r) => expect(r.stats.outOfOrderSegments).toBe(1),
  },
  {
    name: 'retransmission is delivered once',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }, { from: 'c', seq: 1001, ack: 5001, data: 'abc', ipId: 99 }, { from: 'c', seq: 1004, ack: 5001, data: 'def' }],
    client: 'abcdef', server: '',
    extra: (r) => expect(r.stats.retransmittedSegments).toBe(1),
  },
  {
    name: 'partial overlap delivers only the new tail',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abcd' }, { from: 'c', seq: 1003, ack: 5001, data: 'cdef' }],
    client: 'abcdef', server: '',
  },
  {
    name: 'conflicting overlap keeps the first copy and counts a violation',
    segs: [...HS, { from: 'c', seq: 1004, ack: 5001, data: 'DEF' }, { from: 'c', seq: 1004, ack: 5001, data: 'xyz', ipId: 77 }, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }],
    client: 'abcDEF', server: '',
    extra: (r) => expect(r.violations.counts.get('tcp.overlap_conflict')).toBe(1),
  },
  {
    name: 'a hole the receiver acknowledged is a gap at once',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }, { from: 'c', seq: 1007, ack: 5001, data: 'ghi' }, { from: 's', seq: 5001, ack: 1010, flags: 'A' }],
    client: 'abc<gap 3>ghi', server: '',
  },
  {
    name: 'a hole nobody fills becomes a gap at the end',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }, { from: 'c', seq: 1007, ack: 5001, data: 'ghi' }],
    client: 'abc<gap 3>ghi', server: '',
  },
  {
    name: 'a hole becomes a gap after the gap timeout',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc', time: 1 }, { from: 'c', seq: 1007, ack: 5001, data: 'ghi', time: 1.1 },
      { from: 's', seq: 5001, ack: 1004, data: 'R', time: 5 }],
    client: 'abc<gap 3>ghi', server: 'R',
  },
  {
    name: 'data the capture never showed but the peer acknowledged is a gap when the connection ends',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }, { from: 's', seq: 5001, ack: 1010, data: 'ok' }],
    client: 'abc<gap 6>', server: 'ok',
  },
  {
    name: 'snap length cut: the missing tail is a gap',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'ab', wireLen: 5 }, { from: 'c', seq: 1006, ack: 5001, data: 'fg' }],
    client: 'ab<gap 3>fg', server: '',
  },
  {
    name: 'sequence numbers wrap around 2^32',
    segs: [
      { from: 'c', seq: 0xfffffffd, flags: 'S' },
      { from: 's', seq: 5000, ack: 0xfffffffe, flags: 'SA' },
      { from: 'c', seq: 0xfffffffe, ack: 5001, data: 'ab' },
      { from: 'c', seq: 0, ack: 5001, data: 'cd' },
      { from: 'c', seq: 2, ack: 5001, data: 'ef' },
    ],
    client: 'abcdef', server: '',
  },
  {
    name: 'wrap with reordering across the boundary',
    segs: [
      { from: 'c', seq: 0xfffffffd, flags: 'S' },
      { from: 's', seq: 5000, ack: 0xfffffffe, flags: 'SA' },
      { from: 'c', seq: 0, ack: 5001, data: 'cd' },
      { from: 'c', seq: 0xfffffffe, ack: 5001, data: 'ab' },
    ],
    client: 'abcd', server: '',
  },
  {
    name: 'mid-stream start: directions inferred from ports, data delivered',
    segs: [{ from: 's', seq: 9000, ack: 3000, data: 'HTTP/1.1 200 OK\r\n\r\n' }, { from: 'c', seq: 3000, ack: 9019, data: 'GET / HTTP/1.1\r\n\r\n' }],
    client: 'GET / HTTP/1.1\r\n\r\n', server: 'HTTP/1.1 200 OK\r\n\r\n',
    extra: (r) => expect(r.events[0]).toMatchObject({ kind: 'open', client: '10.0.0.1:40000', server: '10.0.0.2:80', mid: true }),
  },
  {
    name: 'TCP Fast Open: data in the SYN is delivered',
    segs: [{ from: 'c', seq: 1000, flags: 'S', data: 'GET' }, { from: 's', seq: 5000, ack: 1004, flags: 'SA' }, { from: 'c', seq: 1004, ack: 5001, data: ' /' }],
    client: 'GET /', server: '',
  },
  {
    name: 'the same packet twice (e.g. veth and bridge via "any") is dropped as a duplicate',
    segs: [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc', ipId: 5 }, { from: 'c', seq: 1001, ack: 5001, data: 'abc', ipId: 5 }],
    client: 'abc', server: '',
    extra: (r) => expect(r.stats.duplicatePackets).toBeGreaterThanOrEqual(1),
  },
];

describe('TCP reassembly table', () => {
  for (const c of cases) {
    it(c.name, () => {
      const r = run(c.segs);
      expect(streams(r.events)).toEqual([c.client, c.server]);
      c.extra?.(r);
    });
  }
});

describe('connection lifecycle', () => {
  it('FIN from both sides closes with reason fin, after all data', () => {
    const r = run([...HS, { from: 'c', seq: 1001, ack: 5001, data: 'abc', flags: 'AF' }, { from: 's', seq: 5001, ack: 1005, data: 'xy', flags: 'AF' }], {}, false);
    const kinds = r.events.map((e) => e.kind);
    expect(kinds).toEqual(['open', 'data', 'fin', 'data', 'fin', 'close']);
    expect(r.events.at(-1)).toEqual({ kind: 'close', reason: 'fin' });
  });

  it('FIN before a hole waits for the hole', () => {
    const r = run([...HS, { from: 'c', seq: 1004, ack: 5001, data: 'def', flags: 'AF' }, { from: 'c', seq: 1001, ack: 5001, data: 'abc' }], {}, false);
    expect(streams(r.events)[0]).toBe('abcdef');
    expect(r.events.findIndex((e) => e.kind === 'fin')).toBeGreaterThan(r.events.findIndex((e) => e.kind === 'data' && e.text === 'def'));
  });

  it('RST closes at once and flushes held data behind a gap', () => {
    const r = run([...HS, { from: 'c', seq: 1004, ack: 5001, data: 'def' }, { from: 's', seq: 5001, flags: 'R' }], {}, false);
    expect(streams(r.events)[0]).toBe('<gap 3>def');
    expect(r.events.at(-1)).toEqual({ kind: 'close', reason: 'rst' });
  });

  it('idle connections close after the idle timeout', () => {
    const segs: Seg[] = [
      ...HS.map((s) => ({ ...s, time: 0 })),
      { from: 'c', seq: 1001, ack: 5001, data: 'a', time: 1 },
      // Another connection's packet much later drives the clock.
      { from: 'c', seq: 1, flags: 'S', time: 400 },
    ];
    const r = run(segs.map((s, i) => (i === 4 ? { ...s, seq: 77 } : s)), { idleTimeoutSec: 60 }, false);
    expect(r.events.some((e) => e.kind === 'close' && e.reason === 'idle')).toBe(true);
  });

  it('a new SYN on a finished 4-tuple starts a new connection (port reuse)', () => {
    const r = run([...HS, { from: 'c', seq: 1001, ack: 5001, data: 'a', flags: 'AF' }, { from: 's', seq: 5001, ack: 1003, flags: 'AF' },
      { from: 'c', seq: 90000, flags: 'S' }, { from: 's', seq: 7000, ack: 90001, flags: 'SA' }, { from: 'c', seq: 90001, ack: 7001, data: 'b' }], {}, true);
    expect(r.events.filter((e) => e.kind === 'open')).toHaveLength(2);
    expect(r.events.filter((e) => e.kind === 'data').map((e) => (e as { text: string }).text)).toEqual(['a', 'b']);
  });

  it('a late copy of the SYN or of data after the close opens no phantom connection (TIME-WAIT)', () => {
    const r = run([...HS, { from: 'c', seq: 1001, ack: 5001, data: 'a', flags: 'AF' }, { from: 's', seq: 5001, ack: 1003, flags: 'AF' },
      { from: 'c', seq: 1000, flags: 'S', ipId: 500 }, { from: 'c', seq: 1001, ack: 5002, data: 'a', ipId: 501 }]);
    expect(r.stats.connections).toBe(1);
    expect(r.stats.strayPackets).toBe(2);
  });

  it('pure ACKs for unknown connections are stray, not connections', () => {
    const r = run([{ from: 'c', seq: 1, ack: 2, flags: 'A' }]);
    expect(r.stats.connections).toBe(0);
    expect(r.stats.strayPackets).toBe(1);
  });
});

describe('limits are counted, never silent', () => {
  it('per-connection buffer limit forces a gap', () => {
    const segs: Seg[] = [...HS, { from: 'c', seq: 1001, ack: 5001, data: 'a' }];
    for (let i = 0; i < 20; i++) segs.push({ from: 'c', seq: 1100 + i * 10, ack: 5001, data: 'x'.repeat(10) });
    const r = run(segs, { maxBufferedPerConnection: 50 });
    expect(r.stats.forcedGaps).toBeGreaterThan(0);
    expect(streams(r.events)[0].replace(/<gap \d+>/g, '')).toBe(`a${'x'.repeat(200)}`);
  });

  it('connection limit evicts the idlest and counts it', () => {
    const segs: Seg[] = [];
    for (let i = 0; i < 5; i++) segs.push({ from: 'c', seq: 1000, flags: 'S', time: i, cport: 41000 + i });
    const r = run(segs, { maxConnections: 3 }, false);
    expect(r.stats.connections).toBe(5);
    expect(r.stats.evictedConnections).toBe(2);
    expect(r.stats.openConnections).toBe(3);
    const closed = r.events.filter((e) => e.kind === 'close');
    expect(closed).toEqual([{ kind: 'close', reason: 'evicted' }, { kind: 'close', reason: 'evicted' }]);
  });
});

describe('peerAck', () => {
  it('gives the other direction offset acknowledged by each segment', () => {
    const r = run([...HS, { from: 'c', seq: 1001, ack: 5001, data: 'GET' }, { from: 's', seq: 5001, ack: 1004, data: 'RESP' }, { from: 'c', seq: 1004, ack: 5005, data: 'NEXT' }]);
    const data = r.events.filter((e) => e.kind === 'data') as { text: string; peerAck: number; offset: number }[];
    expect(data.map((d) => [d.text, d.offset, d.peerAck])).toEqual([['GET', 0, 0], ['RESP', 0, 3], ['NEXT', 3, 4]]);
  });
});

describe('holes are bounded by what the ACKs prove', () => {
  // AAAA is lost from the capture; the server's ACK proves it got AAAA, nothing about BBBB.
  // BBBB (the start of the next message, say) arrives late: it must not be thrown away as
  // bytes already declared lost.
  const segs: Seg[] = [
    ...HS,
    { from: 'c', seq: 1009, ack: 5001, data: 'CCCC' },
    { from: 's', seq: 5001, ack: 1005, flags: 'A' },
    { from: 'c', seq: 1005, ack: 5001, data: 'BBBB' },
  ];

  it('an ACK declares lost only the bytes it acknowledges; the rest of the hole still waits', () => {
    const r = run(segs);
    expect(streams(r.events)[0]).toBe('<gap 4>BBBBCCCC');
    expect(r.stats.retransmittedSegments).toBe(0);
  });

  it('the same hole arriving with the held data (ACK first) gives the same stream', () => {
    const r = run([...HS, { from: 's', seq: 5001, ack: 1005, flags: 'A' }, segs[3]!, segs[5]!]);
    expect(streams(r.events)[0]).toBe('<gap 4>BBBBCCCC');
  });

  it('an ACK past the held data fills the whole hole, once the reorder window has passed', () => {
    const acks: Seg[] = Array.from({ length: 16 }, (_, i) => ({ from: 's', seq: 5001, ack: 1013, flags: 'A', ipId: 900 + i }));
    const r = run([...HS, segs[3]!, ...acks], {}, false);
    expect(streams(r.events)[0]).toBe('');
    const more = run([...HS, segs[3]!, ...acks, { from: 's', seq: 5001, ack: 1013, flags: 'A', ipId: 999 }], {}, false);
    expect(streams(more.events)[0]).toBe('<gap 8>CCCC');
  });

  it('a segment the capture shows after the ACK of it (reordered at the capture point) is not lost', () => {
    const r = run([...HS, segs[3]!, { from: 's', seq: 5001, ack: 1013, flags: 'A' }, { from: 'c', seq: 1001, ack: 5001, data: 'AAAA' }, segs[5]!], {}, false);
    expect(streams(r.events)[0]).toBe('AAAABBBBCCCC');
    expect(r.stats.gaps).toBe(0);
  });

  it('one ACK proves every hole before it: two lost pieces, both gaps, the data after each delivered', () => {
    const r = run([...HS, { from: 'c', seq: 1005, ack: 5001, data: 'BBBB' }, { from: 'c', seq: 1013, ack: 5001, data: 'DDDD' },
      { from: 's', seq: 5001, ack: 1017, data: 'resp' }], {}, false);
    expect(streams(r.events)[0]).toBe('<gap 4>BBBB<gap 4>DDDD');
    // Both before the response that acknowledged them.
    expect(r.events.findIndex((e) => e.kind === 'data' && e.text === 'DDDD')).toBeLessThan(r.events.findIndex((e) => e.kind === 'data' && e.text === 'resp'));
  });

  it('the window is also capture time: a proven hole becomes a gap after reorderWindowSec', () => {
    const r = run([...HS, { ...segs[3]!, time: 1 }, { from: 's', seq: 5001, ack: 1013, flags: 'A', time: 1 }, { from: 's', seq: 5001, ack: 1013, flags: 'A', time: 1.3, ipId: 77 }], {}, false);
    expect(streams(r.events)[0]).toBe('<gap 8>CCCC');
  });
});
