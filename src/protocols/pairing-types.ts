/* The shapes request/response pairing (pairing.ts) works with: codes, limits, hooks, views. */

/** Why a request or response is reported without its other half: stable record codes. */
export const UNPAIRED = {
  lostInGap: 'response-lost-in-gap',
  ambiguousResponse: 'response-ambiguous-after-gap',
  ambiguousRequest: 'request-ambiguous-after-gap',
  noRequest: 'no-request-seen',
  evicted: 'evicted',
} as const;

export interface PairingLimits {
  /** Requests awaiting their responses on one connection; past it the oldest is evicted. */
  maxPendingRequests: number;
  /** Bytes those requests hold (as the protocol counts them: headers, body preview). */
  maxPendingBytes: number;
  /** Stretches of client bytes nobody parsed remembered at once; past it pairing gives up until it settles. */
  maxUnparsed: number;
}

/** A request awaiting its answer. `request` and `response` are the protocol's own objects. */
export interface Pending<Q, R> {
  /** Client stream offset of the request's first byte, and the ACK its first packet carried (-1: none). */
  readonly off: number;
  readonly peerAck: number;
  readonly request: Q;
  /** Its final answer, once paired. */
  response?: R;
  /** Server stream offset just past that answer; -1 while it is not whole. */
  responseEnd: number;
  /** Its answer is known lost or not attributable (the UNPAIRED code): it pairs with nothing. */
  done?: string;
  /** A response that could not be told apart from another's (reported alone) may have been its own. */
  maybe?: boolean;
  /** Bytes it holds, counted against maxPendingBytes. */
  bytes: number;
  /** Reported: out of the queue for good. */
  reported: boolean;
}

/**
 * Client bytes that may hold requests nobody parsed: lost in a gap, skipped while resynchronising,
 * or a request too broken to queue. `peerAck` is the least ACK any request in it can carry.
 * `one`: exactly one request whose answer is still to come (a request evicted from the queue).
 */
export interface Unparsed {
  off: number;
  peerAck: number;
  one?: boolean;
  /** The first request seen after these bytes: its client offset (where they end) and ACK (-1: none yet). */
  end: number;
  nextAck: number;
}

/**
 * What the protocol knows of the client direction when a response must be placed. The session
 * keeps one of these and refreshes it before each `pick` (numbers only: no allocation per message).
 * Offsets are -1 when absent.
 */
export interface ClientView {
  /** A request whose first bytes arrived but which is not queued yet (its head is still arriving). */
  partialOff: number;
  partialAck: number;
  /** A start line begun while resynchronising (its ACK is the last client ACK). */
  scanOff: number;
  /** Client bytes held back (an Upgrade awaiting its verdict). */
  heldOff: number;
  heldAck: number;
}

export interface PairingHooks<Q, R> {
  /** `p` will pair with nothing (`p.done` says why): report it once its own bytes are whole. */
  retired(p: Pending<Q, R>): void;
  /** `p` was pushed out of a full queue: report it now. */
  evicted(p: Pending<Q, R>): void;
  /** A held response turned out to be `p`'s answer (now attached): report it once its own bytes are whole. */
  resolved(p: Pending<Q, R>): void;
  /** A held response could not be placed: report it alone, `why` being the UNPAIRED code. */
  unresolved(resp: R, why: string): void;
  /** A limit was crossed (counted as a violation by the protocol). */
  overflow(what: 'pending' | 'unparsed', off: number): void;
  /** Lost server bytes at `p`'s turn may have held only interim (non-final) answers to it. */
  interimMayFill(p: Pending<Q, R>): boolean;
}
