import type { PairingLimits } from '../pairing.js';

/**
 * Named bounds on what HTTP/1 decoding holds per connection, with their defaults in one place (as
 * reassembly's are in src/reassembly/limits.ts). Crossing one is a violation, never silent; only
 * maxStartLine is a search bound (how far back a start line is looked for), not a limit on input.
 */
export interface Http1Limits extends PairingLimits {
  /**
   * Longest single line (start line, field line, trailer line) or partial line a parser may hold:
   * http-parser-js's own 80 KiB. The bound is the recipient's to choose (RFC 9112 §3 asks for at
   * least 8000 octets of request line; RFC 9110 §5.4 lets a recipient refuse larger fields).
   */
  maxLine: number;
  /** Longest chunk-size line (RFC 9112 §7.1 allows chunk extensions; 1 KiB is generous). */
  maxChunkLine: number;
  /** Longest start line looked for while resynchronising or probing (probe.ts uses the default). */
  maxStartLine: number;
  /** Client bytes held while the server decides on an Upgrade or CONNECT (RFC 9110 §7.8, §9.3.6). */
  maxUpgradeHold: number;
}

export const DEFAULT_HTTP1_LIMITS: Http1Limits = {
  maxLine: 80 * 1024,
  maxChunkLine: 1024,
  maxStartLine: 8192,
  maxUpgradeHold: 256 * 1024,
  // Real pipelines are a few dozen deep; these only stop a connection whose responses never come
  // (or never pair) from growing without end. Past them the oldest request is reported `evicted`.
  maxPendingRequests: 1000,
  maxPendingBytes: 16 * 1024 * 1024,
  maxUnparsed: 1000,
};
