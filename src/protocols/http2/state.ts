import type { StreamError, StreamMessageReader } from '../types.js';

/** What an Http2Session keeps per stream half, per stream and per header block being read. */
export interface Half {
  pseudo: Record<string, string>;
  headers: Record<string, string>;
  trailers?: Record<string, string>;
  start: number;
  end: number;
  firstFrame: number;
  lastFrame: number;
  /** Wire bytes of this half's frames (headers included). */
  size: number;
  bodySize: number;
  body: Buffer[];
  kept: number;
  truncated: boolean;
  gap: boolean;
  ended: boolean;
  partialHeaders: boolean;
  /** The carried protocol's message reader, when the stream carries one (gRPC). */
  grpc?: StreamMessageReader;
  interim?: { status: number; time: number; frame: number }[];
}

export interface Stream {
  id: number;
  req?: Half;
  resp?: Half;
  error?: StreamError;
  emitted: boolean;
  /** A server → client gap came while no response was seen: the response may have been in it. */
  respLost?: boolean;
}

export interface Block {
  stream: number;
  flags: number;
  parts: Buffer[];
  size: number;
  time: number;
  frame: number;
  wire: number;
  promised?: number;
  dropped: boolean;
}
