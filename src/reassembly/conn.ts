import type { ConnectionInfo } from '../stream/index.js';

/* Connection state of the reassembler: one Half per direction, and the pieces a Half holds. */

/** A held out-of-order piece: bytes (copied) or, with `data` undefined, bytes known lost. */
export interface Piece {
  off: number;
  len: number;
  data: Buffer | undefined;
  time: number;
  frame: number;
  peerAck: number;
}

/** One direction of a connection: sequence space, expected offset and held pieces. */
export class Half {
  init = false;
  /** Raw sequence number of `next`, kept so 32-bit wrap is handled by signed differences. */
  nextRaw = 0;
  /** Next stream offset to deliver. Offsets are unbounded numbers, not 32-bit. */
  next = 0;
  held: Piece[] = [];
  heldBytes = 0;
  /** Capture time the oldest hole started waiting. */
  waitingSince = 0;
  /**
   * Highest offset the peer acknowledged. An acknowledgment number is the next sequence number
   * its sender expects (RFC 9293 §3.4), so every byte before it was received: bytes the receiver
   * certainly got, whether or not the capture saw them.
   */
  acked = -1;
  finOff = -1;
  finTime = 0;
  closed = false;
  /** Recent packets, to drop a second copy of the same packet (seen via `any`, or twice). */
  recent: number[] = [];
  /**
   * Capture time an ACK first proved bytes of the hole before the held data lost to the capture,
   * and packets of the connection since (-1: no such proof pending). See TcpReassembler.settle.
   */
  provenAt = -1;
  provenPackets = 0;

  /**
   * Stream offset of a raw sequence number. Sequence numbers are 32-bit and wrap (RFC 9293 §3.4:
   * all arithmetic is modulo 2^32), so the distance from `nextRaw` is taken as a signed 32-bit
   * difference: right while the two are less than 2^31 apart, which a receive window (at most
   * 2^30 with window scaling, RFC 7323 §2.3) keeps them. Offsets themselves never wrap.
   */
  offsetOf(seqRaw: number): number {
    return this.next + ((seqRaw - this.nextRaw) | 0);
  }

  start(seqRaw: number): void {
    this.init = true;
    this.nextRaw = seqRaw >>> 0;
    this.next = 0;
  }

  advance(n: number): void {
    this.next += n;
    this.nextRaw = (this.nextRaw + n) >>> 0;
  }
}

export class Conn {
  readonly halves: [Half, Half] = [new Half(), new Half()];
  /** The client's initial sequence number, when its SYN was seen. */
  isn = -1;
  lastSeen: number;
  closed = false;
  /** A byte or gap was delivered: the handler holds a session for it (CONNECTION_MEMORY.session). */
  delivered = false;
  constructor(
    readonly info: ConnectionInfo,
    readonly key: string | number,
    readonly key2: number,
    /** The client's endpoint key (IPv4: ip * 65536 + port; IPv6: "hex.port"): tells directions apart. */
    readonly clientKey: string | number,
  ) {
    this.lastSeen = info.startTime;
  }
}

export function trimFront(p: Piece, n: number): Piece {
  return { off: p.off + n, len: p.len - n, data: p.data?.subarray(n), time: p.time, frame: p.frame, peerAck: p.peerAck };
}

export function trimBack(p: Piece, keep: number): Piece {
  return { off: p.off, len: keep, data: p.data?.subarray(0, keep), time: p.time, frame: p.frame, peerAck: p.peerAck };
}
