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
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = {
  maxBufferedPerConnection: 4 << 20,
  maxBufferedTotal: 64 << 20,
  maxConnections: 100_000,
  gapTimeoutSec: 2,
  idleTimeoutSec: 300,
};
