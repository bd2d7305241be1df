/**
 * The ring-buffer records of native/conn.bpf.c (native/conn_event.h): which process connected or
 * accepted each TCP connection, and which ran a new program. A batch from the addon is
 * [u64 batch length][record][record]…, each record 80 bytes (already 8-byte aligned):
 *
 *    0 ts_ns u64 | 8 cgroup_id u64 | 16 pid u32 | 20 tid u32 | 24 kind u8 | 25 pad u8 | 26 family u16
 *   28 lport u16 | 30 rport u16 | 32 laddr[16] | 48 raddr[16] | 64 comm[16]
 * Ports in host order, addresses in network order (IPv4 in the first 4 bytes).
 */
import { ipString } from '../tls/events.js';

export const OWNER_EVENT_SIZE = 80;

export const OwnerEventKind = { connect: 1, accept: 2, exec: 3 } as const;

export interface Endpoint { ip: string; port: number }

export interface OwnerEvent {
  kind: 'connect' | 'accept' | 'exec';
  /** CLOCK_MONOTONIC ns: connect()'s SYN, accept()'s return, or the exec. */
  tsNs: bigint;
  cgroupId: bigint;
  pid: number;
  tid: number;
  comm: string;
  /** The connection from this process's side (absent for exec). */
  local?: Endpoint;
  remote?: Endpoint;
}

const KINDS: Record<number, OwnerEvent['kind']> = { 1: 'connect', 2: 'accept', 3: 'exec' };

/** Every record of one batch; a record of an unknown kind or family is skipped, never thrown on. Returns how many were given. */
export function parseOwnerBatch(batch: Buffer, each: (e: OwnerEvent) => void): number {
  if (batch.length < 8) return 0;
  const end = Math.min(Number(batch.readBigUInt64LE(0)), batch.length);
  let n = 0;
  for (let off = 8; off + OWNER_EVENT_SIZE <= end; off += OWNER_EVENT_SIZE) {
    const kind = KINDS[batch[off + 24]!];
    if (!kind) continue;
    const commRaw = batch.subarray(off + 64, off + 80);
    const nul = commRaw.indexOf(0);
    const e: OwnerEvent = {
      kind,
      tsNs: batch.readBigUInt64LE(off),
      cgroupId: batch.readBigUInt64LE(off + 8),
      pid: batch.readUInt32LE(off + 16),
      tid: batch.readUInt32LE(off + 20),
      comm: commRaw.toString('utf8', 0, nul < 0 ? 16 : nul),
    };
    if (kind !== 'exec') {
      const family = batch.readUInt16LE(off + 26);
      if (family !== 2 && family !== 10) continue;
      e.local = { ip: ipString(family, batch.subarray(off + 32, off + 48)), port: batch.readUInt16LE(off + 28) };
      e.remote = { ip: ipString(family, batch.subarray(off + 48, off + 64)), port: batch.readUInt16LE(off + 30) };
    }
    each(e);
    n++;
  }
  return n;
}
