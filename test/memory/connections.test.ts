/**
 * Issue 14 §4: 100 000 concurrent half-open connections stay under a configured memory bound,
 * with their evictions counted and named. Heap growth is measured with a real gc (exposed at run
 * time: vitest's workers do not start with --expose-gc), so the estimate reassembly weighs
 * connections by (CONNECTION_MEMORY) is checked against what they really cost.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { CONNECTION_MEMORY } from '../../src/reassembly/limits.js';
import { frame, PSH_ACK, SYN } from './frames.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const MIB = 1 << 20;
const REQUEST_START = Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\n'); // a request whose end never comes

type Kind = 'syn' | 'hole' | 'request';

/** Feeds `n` connections, each from its own client address and port, 10 µs apart. */
function feed(p: Pipeline, n: number, kind: Kind): void {
  let no = 0;
  for (let c = 0; c < n; c++) {
    const t = 1_000 + c * 1e-5, isn = 1_000 + c;
    p.packet(frame({ conn: c, seq: isn, flags: SYN }, t, ++no));
    // 'hole': the first data segment arrives, the 1460 bytes before it never do: reassembly holds it.
    if (kind === 'hole') p.packet(frame({ conn: c, seq: isn + 1 + 1460, flags: PSH_ACK, payload: REQUEST_START }, t, ++no));
    // 'request': in order, so the connection gets an HTTP/1 session holding a partial request.
    if (kind === 'request') p.packet(frame({ conn: c, seq: isn + 1, flags: PSH_ACK, payload: REQUEST_START }, t, ++no));
  }
  // Time order holds the last half second of packets; release them without ending connections.
  p.timeOrder.flush();
}

function run(n: number, kind: Kind, reassembly: { maxConnectionMemory?: number; maxConnections?: number }) {
  const p = new Pipeline({ onRecord: () => {}, reassembly });
  const before = heapUsed();
  feed(p, n, kind);
  const grown = heapUsed() - before;
  const stats = { ...p.reassembler.stats, evictions: { ...p.reassembler.stats.evictions } };
  p.finish();
  return { p, grown, stats, after: p.reassembler.stats };
}

describe('connection memory (issue 14 §4)', () => {
  it('100 000 half-open connections (SYN, then data past a hole) stay under an 8 MiB bound; evictions are named "memory"', () => {
    const bound = 8 * MIB;
    const { grown, stats, after } = run(100_000, 'hole', { maxConnectionMemory: bound });
    if (process.env.MEMORY_VERBOSE) console.log({ hole: grown, open: stats.openConnections, perConn: grown / stats.openConnections });
    expect(stats.connections).toBe(100_000);
    expect(stats.peakMemoryBytes).toBeLessThanOrEqual(bound);
    // Each holds a connection and one out-of-order piece: about 4 900 fit under 8 MiB.
    const each = CONNECTION_MEMORY.connection + CONNECTION_MEMORY.piece + REQUEST_START.length;
    expect(stats.openConnections).toBeGreaterThan(Math.floor(bound / each) * 0.95);
    expect(stats.openConnections).toBeLessThanOrEqual(Math.floor(bound / each));
    expect(stats.evictions.memory).toBe(100_000 - stats.openConnections);
    expect(stats.evictions.connections).toBe(0);
    expect(stats.evictedConnections).toBe(stats.evictions.memory + stats.evictions.connections);
    // The estimate is not below the truth: what stays on the heap is within the bound, allowing
    // for what no connection holds (violation samples, counters, V8's own bookkeeping).
    expect(grown).toBeLessThan(bound * 1.25);
    expect(after.openConnections).toBe(0);
    expect(after.memoryBytes).toBe(0);
  });

  it('connections that carry an HTTP/1 session are weighed with it, and stay under a 16 MiB bound', () => {
    const bound = 16 * MIB;
    const { p, grown, stats } = run(20_000, 'request', { maxConnectionMemory: bound });
    if (process.env.MEMORY_VERBOSE) console.log({ request: grown, open: stats.openConnections, perConn: grown / stats.openConnections });
    expect(p.dispatcher.stats.byProtocol.http).toBe(20_000);
    expect(stats.peakMemoryBytes).toBeLessThanOrEqual(bound);
    expect(stats.openConnections).toBeLessThanOrEqual(Math.floor(bound / (CONNECTION_MEMORY.connection + CONNECTION_MEMORY.session)));
    expect(stats.evictions.memory).toBe(20_000 - stats.openConnections);
    expect(grown).toBeLessThan(bound * 1.25);
  });

  it('the count limit is named "connections", and a SYN-only connection costs no more than its estimate', () => {
    const { grown, stats } = run(60_000, 'syn', { maxConnections: 30_000 });
    if (process.env.MEMORY_VERBOSE) console.log({ syn: grown, open: stats.openConnections, perConn: grown / stats.openConnections });
    expect(stats.evictions).toEqual({ connections: 30_000, memory: 0 });
    expect(stats.evictedConnections).toBe(30_000);
    expect(stats.openConnections).toBe(30_000);
    expect(grown / stats.openConnections).toBeLessThan(CONNECTION_MEMORY.connection * 1.1);
    expect(stats.memoryBytes).toBeLessThanOrEqual(stats.peakMemoryBytes);
  });
});
