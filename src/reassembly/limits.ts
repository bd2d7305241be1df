/** Named bounds on what TCP reassembly holds. Exceeding any of them is counted, never silent. */
export interface ReassemblyLimits {
  /** Out-of-order bytes buffered per connection direction before a gap is forced. */
  maxBufferedPerConnection: number;
  /** Out-of-order bytes buffered across all connections. */
  maxBufferedTotal: number;
  /** Connections tracked at once; the idlest are evicted past this. */
  maxConnections: number;
  /** Capture seconds a hole may wait for its missing segment before it becomes a gap. */
  gapTimeoutSec: number;
  /** Capture seconds without a packet after which a connection is closed. */
  idleTimeoutSec: number;
  /** Capture seconds a closed connection is remembered, so late copies of its packets are ignored. */
  timeWaitSec: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = {
  maxBufferedPerConnection: 4 << 20,
  maxBufferedTotal: 64 << 20,
  maxConnections: 100_000,
  gapTimeoutSec: 2,
  idleTimeoutSec: 300,
  // 2 × MSL would be 4 minutes (RFC 9293 §3.4.2); late copies in captures arrive within seconds.
  timeWaitSec: 60,
};
