/**
 * The ring-buffer records (native/tls_event.h) read out of one batch from the addon. A batch is
 * [u64 batch length][record][record]…, each record 8-byte aligned:
 *
 *    0 ts_ns u64 | 8 ssl u64 | 16 cgroup_id u64 | 24 pid u32 | 28 tid u32 | 32 fd s32 | 36 total u32
 *   40 offset u32 | 44 len u32 | 48 kind u8 | 49 dir u8 | 50 fd_src u8 | 51 flags u8 | 52 pad u32
 *   56 comm[16] | 72 data[len]
 */
export const TLS_EVENT_HDR_SIZE = 72;
export const TLS_CHUNK_MAX = 16384;
export const TLS_CHUNKS_PER_CALL = 8;

export const TlsEventKind = { data: 1, bind: 2 } as const;
export const FD_SOURCES = ['none', 'syscall', 'cached', 'last-read', 'after-write'] as const;
export type FdSource = (typeof FD_SOURCES)[number];

export interface RawTlsEvent {
  kind: number;
  /** CLOCK_MONOTONIC ns at the return probe. */
  tsNs: bigint;
  ssl: bigint;
  cgroupId: bigint;
  pid: number;
  tid: number;
  fd: number;
  direction: 'egress' | 'ingress';
  fdSource: FdSource;
  /** Bytes the call moved. */
  total: number;
  /** Where data starts within the call's bytes. */
  offset: number;
  truncated: boolean;
  comm: string;
  /** A view into the batch: copy before keeping it past the batch (see parseBatch). */
  data: Buffer;
}

/**
 * Every record of a batch. `data` is copied out (Buffer.from) because the batch's memory is the
 * addon's and is freed with the batch.
 */
export function parseBatch(batch: Buffer, each: (e: RawTlsEvent) => void): number {
  if (batch.length < 8) return 0;
  const end = Math.min(Number(batch.readBigUInt64LE(0)), batch.length);
  let off = 8;
  let n = 0;
  while (off + TLS_EVENT_HDR_SIZE <= end) {
    const len = batch.readUInt32LE(off + 44);
    if (off + TLS_EVENT_HDR_SIZE + len > end) break;
    const commRaw = batch.subarray(off + 56, off + 72);
    const nul = commRaw.indexOf(0);
    each({
      tsNs: batch.readBigUInt64LE(off),
      ssl: batch.readBigUInt64LE(off + 8),
      cgroupId: batch.readBigUInt64LE(off + 16),
      pid: batch.readUInt32LE(off + 24),
      tid: batch.readUInt32LE(off + 28),
      fd: batch.readInt32LE(off + 32),
      total: batch.readUInt32LE(off + 36),
      offset: batch.readUInt32LE(off + 40),
      kind: batch[off + 48]!,
      direction: batch[off + 49] === 0 ? 'egress' : 'ingress',
      fdSource: FD_SOURCES[batch[off + 50]!] ?? 'none',
      truncated: (batch[off + 51]! & 1) === 1,
      comm: commRaw.subarray(0, nul < 0 ? 16 : nul).toString('utf8'),
      data: Buffer.from(batch.subarray(off + TLS_EVENT_HDR_SIZE, off + TLS_EVENT_HDR_SIZE + len)),
    });
    n++;
    off += (TLS_EVENT_HDR_SIZE + len + 7) & ~7;
  }
  return n;
}
