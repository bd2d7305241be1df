import { crc32 } from 'node:zlib';
import { ipBytes, ipBytes16 } from '../common/index.js';
import type { PlaintextMark } from '../capture/index.js';
import type { CloseReason, ConnectionInfo, Dir, StreamHandler, StreamMeta } from '../stream/index.js';

/** LINKTYPE_RAW: the frame is an IPv4 or IPv6 packet, told apart by its version nibble. */
export const LINKTYPE_RAW = 101;

/** One synthesized packet of decrypted plaintext, for the agent's packet store. */
export interface PlaintextPacket {
  time: number;
  linkType: number;
  /** An IP packet (IPv4 or IPv6) with a TCP segment; its own buffer. */
  data: Buffer;
  mark: PlaintextMark;
}

export interface PlaintextPacketCounters {
  connections: number;
  packets: number;
  /** Bytes of the packets made (headers included). */
  bytes: number;
  /** Packets the sink refused (the store closed, a disk error): the decode went on without them. */
  failed: number;
}

/** TCP payload per synthesized segment: an IPv4 total length is 16 bits (RFC 791), so below 65535 - 60. */
const MAX_SEGMENT = 65_000;
const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;
const IPV4_HEADER = 20, IPV6_HEADER = 40, TCP_HEADER = 20;
const TTL = 64, WINDOW = 0xffff;

interface Conn {
  v6: boolean;
  /** Address bytes of the client [0] and the server [1]. */
  addr: [Buffer, Buffer];
  port: [number, number];
  /** Initial sequence numbers; a direction's byte at stream offset o has seq isn + 1 + o. */
  isn: [number, number];
  /** Stream offset after the last byte or gap of each direction. */
  next: [number, number];
  finned: [boolean, boolean];
  mark: PlaintextMark;
  ipId: number;
}

/**
 * A StreamHandler tee: every call goes on to `next` (protocol dispatch) unchanged, and each
 * plaintext stream is also written as TCP packets on the connection's real 4-tuple for the
 * packet store (issue 17, kubeshark/kubeshark#1882: snapshots keep decrypted plaintext), so a
 * snapshot's pcap holds the plaintext beside the ciphertext and can be decoded again.
 *
 * The packets are what a capture of the plaintext would have given: SYN, SYN-ACK and ACK at open
 * (RFC 9293 §3.5, so a reader knows client from server), data with sequence numbers from the
 * stream offsets and the peer's progress as ACK, a gap as a jump in the sequence numbers (a
 * reader sees the hole, and the other side's ACK past it proves the loss), FINs when the stream
 * ended (fin, or a close because the library ended the session), each stamped with its chunk's
 * time. A close for idleness or the source's end sends no FIN: the session was not seen to end.
 * Every packet carries the stream's mark (library, process), told by `originOf` at open.
 */
export class PlaintextPackets implements StreamHandler {
  private readonly conns = new Map<string, Conn>();
  readonly counters: PlaintextPacketCounters = { connections: 0, packets: 0, bytes: 0, failed: 0 };

  constructor(
    private readonly next: StreamHandler,
    private readonly sink: (p: PlaintextPacket) => void,
    private readonly originOf: (conn: ConnectionInfo) => PlaintextMark | undefined,
    private readonly onError?: (e: Error) => void,
  ) {}

  open(conn: ConnectionInfo): void {
    const c = this.start(conn);
    if (c) {
      const t = conn.startTime;
      this.emit(c, 0, SYN, c.isn[0], 0, undefined, t);
      this.emit(c, 1, SYN | ACK, c.isn[1], add(c.isn[0], 1), undefined, t);
      this.emit(c, 0, ACK, add(c.isn[0], 1), add(c.isn[1], 1), undefined, t);
    }
    this.next.open(conn);
  }

  data(conn: ConnectionInfo, dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    const c = this.conns.get(conn.id);
    if (c) {
      const other = (1 - dir) as Dir;
      const ack = add(c.isn[other], 1 + (meta.peerAck >= 0 ? meta.peerAck : c.next[other]));
      for (let at = 0; at < bytes.length; at += MAX_SEGMENT) {
        const piece = bytes.subarray(at, Math.min(bytes.length, at + MAX_SEGMENT));
        this.emit(c, dir, PSH | ACK, add(c.isn[dir], 1 + meta.offset + at), ack, piece, meta.time);
      }
      c.next[dir] = Math.max(c.next[dir], meta.offset + bytes.length);
    }
    this.next.data(conn, dir, bytes, meta);
  }

  gap(conn: ConnectionInfo, dir: Dir, length: number, meta: StreamMeta): void {
    // Nothing is sent: the next segment's sequence number jumps past the lost bytes.
    const c = this.conns.get(conn.id);
    if (c) c.next[dir] = Math.max(c.next[dir], meta.offset + length);
    this.next.gap(conn, dir, length, meta);
  }

  fin(conn: ConnectionInfo, dir: Dir, time: number): void {
    const c = this.conns.get(conn.id);
    if (c) this.finish(c, dir, time);
    this.next.fin(conn, dir, time);
  }

  close(conn: ConnectionInfo, time: number, reason: CloseReason): void {
    const c = this.conns.get(conn.id);
    if (c) {
      this.conns.delete(conn.id);
      if (reason === 'rst') {
        this.emit(c, 0, RST | ACK, add(c.isn[0], 1 + c.next[0]), add(c.isn[1], 1 + c.next[1]), undefined, time);
      } else if (reason === 'fin' || reason === 'reused') {
        // The library ended the session: the server's side first, as a server closing after its
        // response would (an HTTP/1.0 body delimited by the close completes on either FIN).
        this.finish(c, 1, time);
        this.finish(c, 0, time);
        this.emit(c, 1, ACK, add(c.isn[1], 2 + c.next[1]), add(c.isn[0], 2 + c.next[0]), undefined, time);
      }
    }
    this.next.close(conn, time, reason);
  }

  private finish(c: Conn, dir: Dir, time: number): void {
    if (c.finned[dir]) return;
    c.finned[dir] = true;
    const other = (1 - dir) as Dir;
    this.emit(c, dir, FIN | ACK, add(c.isn[dir], 1 + c.next[dir]), add(c.isn[other], 1 + c.next[other] + (c.finned[other] ? 1 : 0)), undefined, time);
  }

  private start(conn: ConnectionInfo): Conn | undefined {
    const a = ipBytes(conn.client.ip), b = ipBytes(conn.server.ip);
    if (!a || !b) return undefined;
    // An IPv4 peer seen through an IPv6 socket (::ffff:a.b.c.d) is IPv4 on the wire.
    const v6 = a.length === 16 || b.length === 16;
    const addr: [Buffer, Buffer] = v6 ? [ipBytes16(conn.client.ip)!, ipBytes16(conn.server.ip)!] : [a, b];
    // Stable for a connection, different between connections: a hash of its id.
    const isn0 = crc32(conn.id), isn1 = crc32(`${conn.id}/server`);
    const c: Conn = {
      v6, addr, port: [conn.client.port, conn.server.port], isn: [isn0, isn1], next: [0, 0], finned: [false, false],
      mark: this.originOf(conn) ?? { via: 'uprobe', library: 'unknown' }, ipId: isn0 & 0xffff,
    };
    this.conns.set(conn.id, c);
    this.counters.connections++;
    return c;
  }

  private emit(c: Conn, dir: Dir, flags: number, seq: number, ack: number, payload: Buffer | undefined, time: number): void {
    const data = tcpPacket(c, dir, flags, seq, ack, payload);
    this.counters.packets++;
    this.counters.bytes += data.length;
    try {
      this.sink({ time, linkType: LINKTYPE_RAW, data, mark: c.mark });
    } catch (e) {
      // The decode goes on: the plaintext's records do not depend on the store taking its packets.
      if (this.counters.failed++ === 0) this.onError?.(e as Error);
    }
  }
}

function add(seq: number, n: number): number {
  return (seq + n) >>> 0;
}

/** An IP packet carrying one TCP segment (RFC 791 / RFC 8200, RFC 9293 §3.1), checksums filled in. */
function tcpPacket(c: Conn, dir: Dir, flags: number, seq: number, ack: number, payload: Buffer | undefined): Buffer {
  const len = payload?.length ?? 0;
  const ip = c.v6 ? IPV6_HEADER : IPV4_HEADER;
  const p = Buffer.alloc(ip + TCP_HEADER + len);
  const src = c.addr[dir], dst = c.addr[1 - dir]!;
  if (c.v6) {
    p.writeUInt32BE(0x60000000, 0);
    p.writeUInt16BE(TCP_HEADER + len, 4);
    p[6] = 6; // next header: TCP
    p[7] = TTL;
    src.copy(p, 8);
    dst.copy(p, 24);
  } else {
    p[0] = 0x45;
    p.writeUInt16BE(ip + TCP_HEADER + len, 2);
    c.ipId = (c.ipId + 1) & 0xffff;
    p.writeUInt16BE(c.ipId, 4);
    p.writeUInt16BE(0x4000, 6); // don't fragment
    p[8] = TTL;
    p[9] = 6;
    src.copy(p, 12);
    dst.copy(p, 16);
    p.writeUInt16BE(checksum(p, 0, IPV4_HEADER, 0), 10);
  }
  const t = ip;
  p.writeUInt16BE(c.port[dir], t);
  p.writeUInt16BE(c.port[1 - dir]!, t + 2);
  p.writeUInt32BE(seq, t + 4);
  p.writeUInt32BE(flags & ACK ? ack : 0, t + 8);
  p[t + 12] = (TCP_HEADER / 4) << 4;
  p[t + 13] = flags;
  p.writeUInt16BE(WINDOW, t + 14);
  payload?.copy(p, t + TCP_HEADER);
  // The pseudo-header (RFC 9293 §3.1; RFC 8200 §8.1): addresses, protocol, TCP length.
  let pseudo = sumWords(src, 0, src.length) + sumWords(dst, 0, dst.length) + 6 + TCP_HEADER + len;
  pseudo = (pseudo & 0xffff) + Math.floor(pseudo / 0x10000);
  p.writeUInt16BE(checksum(p, t, p.length, pseudo), t + 16);
  return p;
}

function sumWords(b: Buffer, from: number, to: number): number {
  let s = 0;
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (i < to) s += b[i]! << 8;
  return s;
}

/** The Internet checksum (RFC 1071) of b[from..to), starting from `initial`. */
function checksum(b: Buffer, from: number, to: number, initial: number): number {
  let s = initial + sumWords(b, from, to);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}
