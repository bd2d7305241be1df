/** Named bounds on what TCP reassembly holds. Exceeding any of them is counted, never silent. */
export interface ReassemblyLimits {
  /** Out-of-order bytes buffered per connection direction before a gap is forced. */
  maxBufferedPerConnection: number;
  /** Out-of-order bytes buffered across all connections. */
  maxBufferedTotal: number;
  /** Connections tracked at once; the idlest are evicted past this (counted in `evictions.connections`). */
  maxConnections: number;
  /**
   * Bytes that tracked connections may cost, as estimated by CONNECTION_MEMORY (state, held
   * pieces, the session a decoding connection carries): the idlest are evicted past this, counted
   * in `evictions.memory`. It bounds what the count alone cannot: 100 000 connections cost about
   * 150 MiB while they only wait for a handshake, but about 1 GB once each carries a session.
   */
  maxConnectionMemory: number;
  /** Capture seconds a hole may wait for its missing segment before it becomes a gap. */
  gapTimeoutSec: number;
  /**
   * A hole the receiver's ACK proved the capture missed still waits this many packets of its
   * connection, or this many capture seconds, before it becomes a gap: a capture point may show a
   * segment after the ACK of it (reordered across interfaces or CPUs), and it is not lost then.
   */
  reorderWindowPackets: number;
  reorderWindowSec: number;
  /** Capture seconds without a packet after which a connection is closed. */
  idleTimeoutSec: number;
  /** Capture seconds a closed connection is remembered, so late copies of its packets are ignored. */
  timeWaitSec: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = {
  maxBufferedPerConnection: 4 << 20,
  maxBufferedTotal: 64 << 20,
  maxConnections: 100_000,
  // 100 000 half-open connections (153 MiB at CONNECTION_MEMORY.connection) fit, as the count
  // allows; connections that carry a session fit about 27 000 at once (9.8 KiB each).
  maxConnectionMemory: 256 << 20,
  gapTimeoutSec: 2,
  reorderWindowPackets: 16,
  reorderWindowSec: 0.2,
  idleTimeoutSec: 300,
  // 2 × MSL would be 4 minutes (RFC 9293 §3.4.2); late copies in captures arrive within seconds.
  timeWaitSec: 60,
};

/**
 * What one tracked connection costs in JS heap, to weigh it against maxConnectionMemory. Measured
 * (node 20, `global.gc()` before and after, 100 000 connections through the real Pipeline: see
 * test/memory/connections.test.ts) and rounded up:
 * - `connection`: the reassembler's Conn, its two Halves and map entries, the ConnectionInfo and
 *   the Dispatcher's ConnState: 1 236 B per connection that saw only a SYN, 1 547 B when each
 *   connection also has its own inner map (its lower endpoint is its client);
 * - `session`: added once the connection delivers its first byte, when the Dispatcher holds its
 *   bytes and starts a protocol session: HTTP/1 with a partial request 5.9 KB, HTTP/2 after its
 *   preface and SETTINGS 7.4 KB, PostgreSQL after its startup message 3.4 KB;
 * - `piece`: one held out-of-order piece (its record, Buffer object and the held array; its bytes
 *   count as themselves): 370 B beside a shared inner map, 515 B with the connection's own;
 * - `timeWait`: one remembered closed connection (key, ISN, time).
 * What a session accumulates beyond that (bodies, pending requests) is bounded per connection by
 * each protocol's own limits, not by this estimate.
 */
export const CONNECTION_MEMORY = {
  connection: 1600,
  session: 8192,
  piece: 576,
  timeWait: 160,
} as const;
