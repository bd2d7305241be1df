/**
 * The ring-buffer records (native/tls_event.h) read out of one batch from the addon. A batch is
 * [u64 batch length][record][record]…, each record 8-byte aligned:
 *
 *    0 ts_ns u64 | 8 ssl u64 | 16 cgroup_id u64 | 24 pid u32 | 28 tid u32 | 32 fd s32 | 36 total u32
 *   40 offset u32 | 44 len u32 | 48 kind u8 | 49 dir u8 | 50 fd_src u8 | 51 flags u8 | 52 library u8 | 53 pad[3]
 *   56 comm[16] | 72 family u16 | 74 lport u16 | 76 rport u16 | 78 pad | 80 laddr[16] | 96 raddr[16]
 *  112 data[len]
 * family/ports/addresses: the fd's socket as the kernel saw it when the fd became known
 * (family 0: not known); ports in host order, addresses in network order.
 */
export const TLS_EVENT_HDR_SIZE = 112;
import type { TcpTuple } from './conn.js';

export const TLS_CHUNK_MAX = 16384;
export const TLS_CHUNKS_PER_CALL = 8;

/**
 * data: plaintext; bind: an SSL* got its fd; end: SSL_free or Go's (*tls.Conn).Close; exec: a
 * process ran a new program; exit: a process with probed TLS calls is gone (its leader exited).
 */
export const TlsEventKind = { data: 1, bind: 2, end: 3, exec: 4, exit: 5 } as const;
/** go-conn: read from Go's *tls.Conn (conn → *net.TCPConn → netFD → poll.FD.Sysfd). */
export const FD_SOURCES = ['none', 'syscall', 'cached', 'last-read', 'after-write', 'go-conn'] as const;
/** The library byte (tls_event.h TLS_LIB_*). */
export const TLS_LIBRARIES = ['openssl', 'go'] as const;
export type TlsLibrary = (typeof TLS_LIBRARIES)[number];
export type FdSource = (typeof FD_SOURCES)[number];

export interface RawTlsEvent {
  kind: number;
  /** Whose call: OpenSSL's SSL_* (ssl is an SSL*) or Go's crypto/tls (ssl is a *tls.Conn). */
  library: TlsLibrary;
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
  /** The socket's addresses read in the kernel, or undefined. */
  connection?: TcpTuple;
  data: Buffer;
}

/** An address as the kernel stores it, written as tapwire writes addresses (IPv4-mapped IPv6 as IPv4, RFC 5952). */
export function ipString(family: number, b: Buffer): string {
  if (family === 2) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // WHATWG URL parsing writes an IPv6 address in its canonical (RFC 5952) short form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
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
    const family = batch.readUInt16LE(off + 72);
    const connection = family === 2 || family === 10 ? {
      local: { ip: ipString(family, batch.subarray(off + 80, off + 96)), port: batch.readUInt16LE(off + 74) },
      remote: { ip: ipString(family, batch.subarray(off + 96, off + 112)), port: batch.readUInt16LE(off + 76) },
    } : undefined;
    each({
      connection,
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
      library: TLS_LIBRARIES[batch[off + 52]!] ?? 'openssl',
      comm: commRaw.subarray(0, nul < 0 ? 16 : nul).toString('utf8'),
      data: Buffer.from(batch.subarray(off + TLS_EVENT_HDR_SIZE, off + TLS_EVENT_HDR_SIZE + len)),
    });
    n++;
    off += (TLS_EVENT_HDR_SIZE + len + 7) & ~7;
  }
  return n;
}
