import type { PlaintextMark } from './plaintext-mark.js';

/**
 * One captured frame as it leaves a packet source.
 *
 * View rule: `data` is a zero-copy view into the reader's current chunk. A consumer that keeps
 * bytes beyond the call that delivered them (out-of-order buffers, fragments, body previews)
 * must copy them first, or it pins the whole chunk in memory.
 */
export interface Packet {
  /** 1-based position of the frame in its source (file order, not time order). */
  frame: number;
  /** Capture time, epoch seconds (fractional). */
  time: number;
  /** LINKTYPE_* value of the interface the frame came from. */
  linkType: number;
  /** Interface index within the source (pcapng IDB order; 0 for pcap). */
  iface: number;
  /** Captured bytes (may be shorter than wireLen when the snap length cut the frame). */
  data: Buffer;
  /** Length of the frame on the wire. */
  wireLen: number;
  /**
   * Set when the frame is not wire bytes but decrypted TLS plaintext synthesized as TCP on the
   * real 4-tuple (a tapwire pcapng export: plaintext-mark.ts). The pipeline reassembles such frames
   * apart from the wire's, which share their 4-tuple.
   */
  plaintext?: PlaintextMark;
}

export type PacketSink = (packet: Packet) => void;

/** What a file reader learned beyond its packets. */
export interface ReaderInfo {
  format: 'pcap' | 'pcapng';
  /** Bytes of the file consumed so far. */
  bytesRead: number;
  /** Set when the file ended inside a record: everything before the cut was delivered. */
  truncatedAt?: number;
}

/** A file that cannot be read as a capture at all (exit status 2 in the CLI). */
export class CaptureFormatError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'CaptureFormatError';
  }
}
