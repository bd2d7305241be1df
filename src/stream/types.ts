/**
 * Byte streams as protocol analyzers see them: one connection's in-order bytes per direction,
 * explicit gaps, and its end. Two sources produce them: TCP reassembly (src/reassembly/) from
 * packets, and sources that deliver streams without packets (TLS plaintext read by eBPF uprobes),
 * which enter the pipeline at Pipeline.streams. Nothing here knows any application protocol.
 */

/** 0: client → server (requests), 1: server → client (responses). */
export type Dir = 0 | 1;
export const CLIENT_TO_SERVER: Dir = 0;
export const SERVER_TO_CLIENT: Dir = 1;

export interface Endpoint {
  ip: string;
  port: number;
}

/** Where in-order bytes came from. Reused between calls: copy what you keep. */
export interface StreamMeta {
  /** Capture time of the packet that carried these bytes (epoch seconds). */
  time: number;
  /** Frame number of that packet in its source. */
  frame: number;
  /** Stream offset of the first byte (0 = first byte after the SYN, or the first byte seen). */
  offset: number;
  /**
   * How many bytes of the *other* direction the sender had acknowledged when it sent this
   * packet, as an offset in that direction's stream; -1 when the packet carried no ACK.
   * A response cannot answer a request the server had not started to receive, and a request
   * sent after its client acknowledged a whole response does not belong to that response:
   * these two facts pair messages safely after a gap.
   */
  peerAck: number;
}

export type CloseReason = 'fin' | 'rst' | 'idle' | 'evicted' | 'eof' | 'reused';

export interface ConnectionInfo {
  /** Deterministic for a capture file: the same file gives the same ids. */
  id: string;
  client: Endpoint;
  server: Endpoint;
  family: 4 | 6;
  /** Capture time and frame of the connection's first packet. */
  startTime: number;
  firstFrame: number;
  /** True when a SYN or SYN-ACK was seen, so client and server are certain. */
  handshakeSeen: boolean;
  /** True when the capture started after the connection did (no SYN seen). */
  midStream: boolean;
}

/** Receives one connection's in-order bytes. Implemented by the protocol dispatcher. */
export interface StreamHandler {
  open(conn: ConnectionInfo): void;
  data(conn: ConnectionInfo, dir: Dir, bytes: Buffer, meta: StreamMeta): void;
  /** `length` bytes of direction `dir` were lost at `meta.offset` and will never come. */
  gap(conn: ConnectionInfo, dir: Dir, length: number, meta: StreamMeta): void;
  /** Direction `dir` sent its FIN and every byte before it was delivered. */
  fin(conn: ConnectionInfo, dir: Dir, time: number): void;
  close(conn: ConnectionInfo, time: number, reason: CloseReason): void;
}
