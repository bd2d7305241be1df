/**
 * The ring-buffer records of native/tc.bpf.c (native/tc_event.h): one frame seen by a TC clsact
 * filter. A batch from the addon is [u64 batch length][record][record]…, each record a 24-byte
 * header then `caplen` frame bytes, padded to 8 bytes:
 *
 *    0 ts_ns u64 (CLOCK_MONOTONIC) | 8 ifindex u32 | 12 len u32 | 16 caplen u32 | 20 dir u8 | 21 pad[3]
 */
export const TC_EVENT_SIZE = 24;

/** Index of each counter in tc.bpf.c's per-CPU `counters` map (TC_CNT_*). */
export const TcCounterIndex = { seen: 0, sent: 1, lost: 2, filtered: 3, readFail: 4 } as const;
export const TC_COUNTERS = 8;

export type TcDirection = 'ingress' | 'egress';

export interface TcFrame {
  /** CLOCK_MONOTONIC ns as a double (exact below 2^53 ns, 104 days of uptime; then within a few ns). */
  tsNs: number;
  ifindex: number;
  /** The frame's length on the device. */
  len: number;
  direction: TcDirection;
  /** A view into the batch: copy it to keep it past the call. */
  data: Buffer;
}

/**
 * Every record of one batch, in ring order. A record whose caplen runs past the batch (never
 * written so by the addon) ends the batch, never throws. Returns how many were given.
 */
export function parseTcBatch(batch: Buffer, each: (f: TcFrame) => void): number {
  if (batch.length < 8) return 0;
  const end = Math.min(Number(batch.readBigUInt64LE(0)), batch.length);
  let n = 0;
  for (let off = 8; off + TC_EVENT_SIZE <= end;) {
    const caplen = batch.readUInt32LE(off + 16);
    const dataEnd = off + TC_EVENT_SIZE + caplen;
    if (dataEnd > end) break;
    each({
      tsNs: batch.readUInt32LE(off) + batch.readUInt32LE(off + 4) * 2 ** 32,
      ifindex: batch.readUInt32LE(off + 8),
      len: batch.readUInt32LE(off + 12),
      direction: batch[off + 20] === 1 ? 'egress' : 'ingress',
      data: batch.subarray(off + TC_EVENT_SIZE, dataEnd),
    });
    n++;
    off = (dataEnd + 7) & ~7;
  }
  return n;
}
