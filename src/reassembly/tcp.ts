import { createHash } from 'node:crypto';
import type { Violations } from '../common/index.js';
import { formatIp, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type Decoded } from '../decode/index.js';
import { CONNECTION_MEMORY, DEFAULT_REASSEMBLY_LIMITS, type ReassemblyLimits } from './limits.js';
import type { CloseReason, ConnectionInfo, Dir, StreamHandler, StreamMeta } from '../stream/index.js';
import { Conn, type Half, type Piece, trimBack, trimFront } from './conn.js';

export interface ReassemblyStats {
  connections: number;
  /** Segments whose bytes had all been delivered already (retransmissions). */
  retransmittedSegments: number;
  /** Second copies of one packet (same IP id, checksum, seq, ack, length). */
  duplicatePackets: number;
  /** Segments that arrived ahead of a hole and were held. */
  outOfOrderSegments: number;
  /** Gaps handed to analyzers, and their total bytes. */
  gaps: number;
  gapBytes: number;
  /** Gaps forced by a limit rather than proven by an ACK, a timeout or the end. */
  forcedGaps: number;
  evictedConnections: number;
  /**
   * Evicted connections by the limit that evicted them: `connections` (maxConnections) or `memory`
   * (maxConnectionMemory). They add up to evictedConnections.
   */
  evictions: { connections: number; memory: number };
  /** Packets for no known connection that could not start one (pure ACKs, late FINs). */
  strayPackets: number;
  openConnections: number;
  bufferedBytes: number;
  /** Estimated bytes of connection state (limits.ts CONNECTION_MEMORY) when last updated, and the most held between packets. */
  memoryBytes: number;
  peakMemoryBytes: number;
}

/** Ports below this, or known service ports, are taken for the server side of a mid-stream connection. */
const EPHEMERAL_START = 32_768;

function portScore(port: number): number {
  if (port < 1024) return 3;
  if (port < EPHEMERAL_START) return 2;
  return 1;
}

/**
 * Tracks TCP connections by 4-tuple and hands each direction's bytes, in order and exactly once,
 * to a StreamHandler. Holes become explicit gaps: at once when the receiver's ACK proves the
 * capture missed bytes the peer got, after `gapTimeoutSec` of capture time, when a buffer limit
 * is hit, or when the connection ends. Overlaps keep the first copy of each byte.
 */
export class TcpReassembler {
  readonly stats: ReassemblyStats = {
    connections: 0, retransmittedSegments: 0, duplicatePackets: 0, outOfOrderSegments: 0, gaps: 0, gapBytes: 0,
    forcedGaps: 0, evictedConnections: 0, evictions: { connections: 0, memory: 0 }, strayPackets: 0, openConnections: 0,
    bufferedBytes: 0, memoryBytes: 0, peakMemoryBytes: 0,
  };
  /** IPv4 connections: lower endpoint number → higher endpoint number → connection. */
  private v4 = new Map<number, Map<number, Conn>>();
  private v6 = new Map<string, Conn>();
  private count = 0;
  /** Connections that delivered a byte or gap (`Conn.delivered`), and held pieces: for memory(). */
  private delivering = 0;
  private pieces = 0;
  /**
   * Connections that closed recently (TIME-WAIT, RFC 9293 §3.6.1), oldest first: a late copy of
   * their SYN or of their data must not open a phantom connection. A SYN with a new ISN may.
   */
  private timeWait = new Map<string, { isn: number; time: number }>();
  private bufferedTotal = 0;
  private clock = -Infinity;
  private lastSweep = -Infinity;
  private readonly meta: StreamMeta = { time: 0, frame: 0, offset: 0, peerAck: -1 };

  constructor(
    private readonly handler: StreamHandler,
    private readonly violations: Violations,
    private readonly limits: ReassemblyLimits = DEFAULT_REASSEMBLY_LIMITS,
  ) {}

  /** Feeds one decoded TCP packet. */
  packet(d: Decoded): void {
    this.take(d);
    // Checked once the packet is handled, so no connection is evicted while its packet is.
    if (this.memory() > this.limits.maxConnectionMemory) this.evictForMemory(0);
    const m = this.memory();
    if (m > this.stats.peakMemoryBytes) this.stats.peakMemoryBytes = m;
  }

  /**
   * Estimated bytes of what is tracked (CONNECTION_MEMORY): a few multiplications, so it is
   * computed when needed rather than kept up to date on every change.
   */
  private memory(): number {
    const c = CONNECTION_MEMORY;
    return this.count * c.connection + this.delivering * c.session + this.pieces * c.piece
      + this.bufferedTotal + this.timeWait.size * c.timeWait;
  }

  /** Evicts the idlest connections until `room` more bytes fit under maxConnectionMemory. */
  private evictForMemory(room: number): void {
    while (this.count > 0 && this.memory() + room > this.limits.maxConnectionMemory) {
      // The oldest remembered closed connection goes first: it holds no data, only a defence
      // against late copies of its packets.
      if (this.timeWait.size > 0) this.timeWait.delete(this.timeWait.keys().next().value as string);
      else this.evictIdlest('memory');
    }
  }

  private take(d: Decoded): void {
    const time = d.time;
    if (time > this.clock) {
      this.clock = time;
      if (time - this.lastSweep >= 1) this.sweep(time);
    }
    const flags = d.flags;
    let conn: Conn | undefined;
    let fromLow: boolean;
    let a: number, b: number, v6key = '', srcKey: number | string;
    if (d.family === 4) {
      a = d.src.readUInt32BE(0) * 65536 + d.srcPort;
      b = d.dst.readUInt32BE(0) * 65536 + d.dstPort;
      fromLow = a <= b;
      srcKey = a;
      const lo = fromLow ? a : b, hi = fromLow ? b : a;
      conn = this.v4.get(lo)?.get(hi);
    } else {
      const sa = `${d.src.toString('hex')}.${d.srcPort}`, sb = `${d.dst.toString('hex')}.${d.dstPort}`;
      fromLow = sa <= sb;
      srcKey = sa;
      a = b = 0;
      v6key = fromLow ? `${sa}|${sb}` : `${sb}|${sa}`;
      conn = this.v6.get(v6key);
    }

    const syn = (flags & TCP_SYN) !== 0;
    if (conn && syn && !(flags & TCP_ACK) && srcKey === conn.clientKey) {
      // A client SYN on a known 4-tuple is port reuse when its ISN is new; a repeat of the SYN we
      // know (retransmitted, or a second copy) is not. A SYN from the server side is a
      // simultaneous open or split handshake (RFC 9293 §3.5), not a new connection.
      const h = conn.halves[0];
      if (!this.isDuplicate(h, d) && (!h.init || h.offsetOf((d.seq + 1) >>> 0) !== 0)) {
        this.close(conn, time, 'reused');
        conn = undefined;
      } else {
        conn.lastSeen = time;
        return;
      }
    }
    if (!conn) {
      if (!syn && d.payloadLen === 0) {
        this.stats.strayPackets++;
        return;
      }
      if (this.timeWait.size > 0) {
        const tw = this.timeWait.get(d.family === 4 ? `${fromLow ? a : b}-${fromLow ? b : a}` : v6key);
        if (tw && time - tw.time <= this.limits.timeWaitSec && !(syn && !(flags & TCP_ACK) && d.seq !== tw.isn)) {
          this.stats.strayPackets++;
          return;
        }
      }
      conn = this.open(d, fromLow, a, b, v6key, srcKey);
    }
    conn.lastSeen = time;
    const dir: Dir = srcKey === conn.clientKey ? 0 : 1;
    const half = conn.halves[dir];
    const other = conn.halves[(1 - dir) as Dir];

    if (this.isDuplicate(half, d)) {
      this.stats.duplicatePackets++;
      return;
    }

    let seq = d.seq;
    // The SYN occupies one sequence number before the first data byte (RFC 9293 §3.4): the stream
    // starts at ISN + 1. Without a SYN the first data byte seen is offset 0.
    if (syn && dir === 0 && !(flags & TCP_ACK)) conn.isn = d.seq;
    if (syn) {
      if (!half.init || (half.next === 0 && half.held.length === 0)) half.start((seq + 1) >>> 0);
      seq = (seq + 1) >>> 0;
    } else if (!half.init && d.payloadLen > 0) {
      half.start(seq);
    }

    let peerAck = -1;
    if (flags & TCP_ACK) {
      // Caught mid-stream, the first ACK names the next byte the other side will send (RFC 9293
      // §3.4): its stream starts there, so acknowledgements and offsets share one origin.
      if (!other.init) other.start(d.ack);
      peerAck = other.offsetOf(d.ack);
      if (peerAck > other.acked) other.acked = peerAck;
      // The receiver has bytes the capture does not: the hole before held data is a real gap, as
      // far as the ACK goes. A bare ACK only starts the reorder window (settle).
      if (other.held.length > 0 && other.acked > other.next) {
        // Data that acknowledged those bytes is delivered after them, in causal order: a
        // session must see a request before the response that acknowledged it.
        if (d.payloadLen > 0) {
          other.provenAt = -1;
          other.provenPackets = 0;
          this.fillHole(conn, (1 - dir) as Dir, other.acked);
        } else if (other.provenAt < 0) other.provenAt = time;
      }
    }

    if (d.payloadLen > 0 && half.init) this.segment(conn, dir, half, seq, d, peerAck);
    if (conn.halves[0].provenAt >= 0 || conn.halves[1].provenAt >= 0) this.settle(conn, time, true);

    if (flags & TCP_FIN && half.init && half.finOff < 0) {
      // The FIN comes after the segment's data and takes one sequence number of its own (RFC 9293
      // §3.4, §3.6): the direction ends once every byte before it was delivered, in order.
      half.finOff = half.offsetOf(seq) + d.payloadLen;
      half.finTime = time;
      this.checkFin(conn, dir, half);
    }
    if (flags & TCP_RST) {
      // A receiver accepts a reset only if its sequence number is in its window (RFC 9293 §3.5.3,
      // tightened by RFC 5961 §3); a sniffer does not know the window and takes it as sent.
      this.close(conn, time, 'rst');
      return;
    }
    if (conn.halves[0].closed && conn.halves[1].closed) this.close(conn, time, 'fin');
  }

  private open(d: Decoded, fromLow: boolean, a: number, b: number, v6key: string, srcKey: number | string): Conn {
    if (this.count >= this.limits.maxConnections) this.evictIdlest('connections');
    this.evictForMemory(CONNECTION_MEMORY.connection);
    const flags = d.flags;
    const syn = (flags & TCP_SYN) !== 0;
    const ack = (flags & TCP_ACK) !== 0;
    let senderIsClient: boolean;
    if (syn) senderIsClient = !ack; // SYN: sender is the client; SYN-ACK: sender is the server
    else {
      // Mid-stream: the side with the service-like port is the server; a tie goes to the receiver
      // of this first data packet. The HTTP probe may still swap the two by content.
      const ss = portScore(d.srcPort), ds = portScore(d.dstPort);
      senderIsClient = ss === ds ? true : ss < ds;
    }
    const src = { ip: formatIp(d.src), port: d.srcPort };
    const dst = { ip: formatIp(d.dst), port: d.dstPort };
    const client = senderIsClient ? src : dst;
    const server = senderIsClient ? dst : src;
    const id = createHash('sha1')
      .update(`${client.ip}|${client.port}|${server.ip}|${server.port}|${d.time}|${d.frame}`)
      .digest('hex').slice(0, 12);
    const info: ConnectionInfo = {
      id, client, server, family: d.family, startTime: d.time, firstFrame: d.frame,
      handshakeSeen: syn, midStream: !syn,
    };
    let conn: Conn;
    const clientKey = senderIsClient ? srcKey : d.family === 4 ? b : `${d.dst.toString('hex')}.${d.dstPort}`;
    if (d.family === 4) {
      const lo = fromLow ? a : b, hi = fromLow ? b : a;
      conn = new Conn(info, lo, hi, clientKey);
      let m = this.v4.get(lo);
      if (!m) this.v4.set(lo, (m = new Map()));
      m.set(hi, conn);
    } else {
      conn = new Conn(info, v6key, 0, clientKey);
      this.v6.set(v6key, conn);
    }
    this.count++;
    this.stats.connections++;
    this.stats.openConnections = this.count;
    this.handler.open(info);
    return conn;
  }

  private isDuplicate(half: Half, d: Decoded): boolean {
    // One number per packet identity; exact copies of a packet agree on all of these.
    const sig = ((d.seq ^ Math.imul(d.ack, 31) ^ Math.imul(d.ipId, 65599) ^ Math.imul(d.checksum, 2654435761)) >>> 0)
      * 65536 + ((d.payloadLen ^ d.flags ^ (d.window << 3)) & 0xffff);
    const r = half.recent;
    for (let i = 0; i < r.length; i++) if (r[i] === sig) return true;
    if (r.length >= 8) r.shift();
    r.push(sig);
    return false;
  }

  private segment(conn: Conn, dir: Dir, half: Half, seqRaw: number, d: Decoded, peerAck: number): void {
    let off = half.offsetOf(seqRaw);
    let data = d.payload;
    // Bytes beyond what the snap length kept are known lost: a gap right after the data.
    let lost = d.payloadLen - data.length;
    const end = off + d.payloadLen;
    // A segment wholly before `next` was delivered already (a retransmission); one that starts
    // before it is trimmed to its new bytes, as a receiver trims a segment to its window (RFC 9293
    // §3.10.7.4). One beyond `next` is held until the hole before it fills or is declared lost.
    if (end <= half.next) {
      this.stats.retransmittedSegments++;
      return;
    }
    if (off < half.next) {
      const skip = half.next - off;
      if (skip >= data.length) {
        lost -= skip - data.length;
        data = data.subarray(data.length);
      } else data = data.subarray(skip);
      off = half.next;
    }
    if (off === half.next && half.held.length === 0) {
      // The fast path: in order, nothing held.
      if (data.length > 0) this.deliver(conn, dir, half, data, off, d.time, d.frame, peerAck);
      if (lost > 0) this.deliverGap(conn, dir, half, lost, d.time, d.frame, peerAck);
      return;
    }
    if (off > half.next) this.stats.outOfOrderSegments++;
    if (data.length > 0) this.hold(half, { off, len: data.length, data: Buffer.from(data), time: d.time, frame: d.frame, peerAck }, d.frame);
    if (lost > 0) this.hold(half, { off: off + data.length, len: lost, data: undefined, time: d.time, frame: d.frame, peerAck }, d.frame);
    this.drain(conn, dir, half);
    if (half.held.length > 0) {
      if (half.acked > half.next && half.provenAt < 0) half.provenAt = d.time;
      if (half.heldBytes > this.limits.maxBufferedPerConnection || this.bufferedTotal > this.limits.maxBufferedTotal) {
        this.stats.forcedGaps++;
        this.fillHole(conn, dir);
      }
    }
  }

  /**
   * Inserts a piece in offset order, keeping the bytes that arrived first wherever they overlap.
   * RFC 9293 leaves overlapping data to the receiver; peers differ, so a copy that disagrees with
   * the first one is reported (tcp.overlap_conflict), never silently merged.
   */
  private hold(half: Half, p: Piece, frame: number): void {
    const held = half.held;
    if (held.length === 0) half.waitingSince = p.time;
    let i = held.length;
    while (i > 0 && held[i - 1]!.off > p.off) i--;
    // Trim against the piece before.
    const prev = held[i - 1];
    if (prev && prev.off + prev.len > p.off) {
      const cut = Math.min(prev.off + prev.len - p.off, p.len);
      this.checkConflict(prev, p, cut, frame);
      if (cut >= p.len) return;
      p = trimFront(p, cut);
    }
    // Split around the pieces after it.
    while (i < held.length && p.len > 0) {
      const nx = held[i]!;
      if (p.off + p.len <= nx.off) break;
      if (p.off < nx.off) {
        const head = trimBack(p, nx.off - p.off);
        this.insert(half, i, head);
        i++;
        p = trimFront(p, head.len);
      }
      const cut = Math.min(nx.off + nx.len - p.off, p.len);
      this.checkConflict(nx, p, cut, frame);
      p = trimFront(p, cut);
      i++;
    }
    if (p.len > 0) this.insert(half, i, p);
  }

  private insert(half: Half, i: number, p: Piece): void {
    half.held.splice(i, 0, p);
    this.pieces++;
    const n = p.data ? p.len : 0;
    half.heldBytes += n;
    this.bufferedTotal += n;
  }

  private checkConflict(kept: Piece, incoming: Piece, n: number, frame: number): void {
    if (!kept.data || !incoming.data || n <= 0) return;
    const ko = incoming.off - kept.off;
    if (ko < 0) return;
    if (kept.data.compare(incoming.data, 0, n, ko, ko + n) !== 0) {
      this.violations.add('tcp.overlap_conflict', `retransmitted bytes at stream offset ${incoming.off} differ from the first copy; the first copy is kept`, frame);
    }
  }

  /** Delivers held pieces that have become contiguous. */
  private drain(conn: Conn, dir: Dir, half: Half): void {
    const held = half.held;
    while (held.length > 0 && !conn.closed) {
      let p = held[0]!;
      if (p.off > half.next) break;
      held.shift();
      this.pieces--;
      const n = p.data ? p.len : 0;
      half.heldBytes -= n;
      this.bufferedTotal -= n;
      if (p.off + p.len <= half.next) continue;
      if (p.off < half.next) p = trimFront(p, half.next - p.off);
      if (p.data) this.deliver(conn, dir, half, p.data, p.off, p.time, p.frame, p.peerAck);
      else this.deliverGap(conn, dir, half, p.len, p.time, p.frame, p.peerAck);
      if (held.length > 0) half.waitingSince = p.time;
    }
    this.checkFin(conn, dir, half);
  }

  private checkFin(conn: Conn, dir: Dir, half: Half): void {
    if (half.closed || half.finOff < 0 || half.next < half.finOff || conn.closed) return;
    half.closed = true;
    this.handler.fin(conn.info, dir, half.finTime);
  }

  /**
   * Declares the first hole of a direction lost (every hole before `upTo` when an ACK is what
   * proves them, and no further), and
   * delivers what follows it. Its length is exact: the held piece after it carries its own
   * sequence number (RFC 9293 §3.4), so the gap covers precisely the missing bytes and later
   * offsets stay right. An ACK proves only the bytes before it (RFC 9293 §3.4): the rest of the
   * hole may still arrive (reordered, or retransmitted) and keeps waiting, so a lost segment
   * cannot take the start of the next message with it.
   */
  private fillHole(conn: Conn, dir: Dir, upTo = Infinity): void {
    const half = conn.halves[dir];
    // An ACK proves every hole before it, not only the first (a request lost in two pieces).
    do {
      const first = half.held[0];
      if (!first) return;
      const end = Math.min(first.off, upTo);
      if (end > half.next) this.deliverGap(conn, dir, half, end - half.next, first.time, first.frame, first.peerAck);
      this.drain(conn, dir, half);
    } while (upTo !== Infinity && half.next < upTo && half.held.length > 0 && !conn.closed);
  }

  private deliver(conn: Conn, dir: Dir, half: Half, data: Buffer, off: number, time: number, frame: number, peerAck: number): void {
    if (!conn.delivered) this.startDelivering(conn);
    half.advance(data.length);
    const m = this.meta;
    m.time = time; m.frame = frame; m.offset = off; m.peerAck = peerAck;
    this.handler.data(conn.info, dir, data, m);
  }

  private deliverGap(conn: Conn, dir: Dir, half: Half, len: number, time: number, frame: number, peerAck: number): void {
    if (!conn.delivered) this.startDelivering(conn);
    const m = this.meta;
    m.time = time; m.frame = frame; m.offset = half.next; m.peerAck = peerAck;
    half.advance(len);
    this.stats.gaps++;
    this.stats.gapBytes += len;
    this.handler.gap(conn.info, dir, len, m);
  }

  private startDelivering(conn: Conn): void {
    conn.delivered = true;
    this.delivering++;
  }

  private close(conn: Conn, time: number, reason: CloseReason): void {
    if (conn.closed) return;
    // Whatever is still held is delivered behind explicit gaps; bytes the peer acknowledged
    // but the capture never showed are a gap at the end.
    for (const dir of [0, 1] as Dir[]) {
      const half = conn.halves[dir];
      while (half.held.length > 0) this.fillHole(conn, dir);
      // The ACK of a FIN is one past its last data byte (the FIN takes a sequence number, RFC
      // 9293 §3.4): only bytes up to the FIN count as data.
      const ackEnd = half.finOff >= 0 ? Math.min(half.acked, half.finOff) : half.acked;
      if (half.init && ackEnd > half.next) this.deliverGap(conn, dir, half, ackEnd - half.next, time, 0, -1);
    }
    conn.closed = true;
    if (reason === 'fin' || reason === 'rst') {
      const twKey = typeof conn.key === 'number' ? `${conn.key}-${conn.key2}` : conn.key;
      this.timeWait.delete(twKey);
      // Without its SYN, the client's ISN is one before its stream's first byte (offset 0).
      const c = conn.halves[0];
      const isn = conn.isn >= 0 ? conn.isn : c.init ? (c.nextRaw - c.next - 1) >>> 0 : -1;
      this.timeWait.set(twKey, { isn, time });
      if (this.timeWait.size > this.limits.maxConnections) this.timeWait.delete(this.timeWait.keys().next().value as string);
    }
    if (typeof conn.key === 'number') {
      const m = this.v4.get(conn.key);
      if (m?.get(conn.key2) === conn) {
        m.delete(conn.key2);
        if (m.size === 0) this.v4.delete(conn.key);
      }
    } else if (this.v6.get(conn.key) === conn) this.v6.delete(conn.key);
    this.count--;
    if (conn.delivered) this.delivering--;
    this.stats.openConnections = this.count;
    this.handler.close(conn.info, time, reason);
  }

  private *all(): Generator<Conn> {
    for (const m of this.v4.values()) yield* m.values();
    yield* this.v6.values();
  }

  /**
   * Holes an ACK proved lost become gaps (up to the ACK) once the reorder window has passed: a
   * segment shown after the ACK of it fills its hole meanwhile. `packet`: one more packet of the
   * connection was seen.
   */
  private settle(conn: Conn, time: number, packet: boolean): void {
    for (const dir of [0, 1] as Dir[]) {
      const h = conn.halves[dir];
      if (h.provenAt < 0) continue;
      if (h.held.length === 0 || h.next >= h.acked) {
        h.provenAt = -1;
        h.provenPackets = 0;
        continue;
      }
      if (packet) h.provenPackets++;
      if (h.provenPackets <= this.limits.reorderWindowPackets && time - h.provenAt < this.limits.reorderWindowSec) continue;
      h.provenAt = -1;
      h.provenPackets = 0;
      this.fillHole(conn, dir, h.acked);
    }
  }

  /** Once per capture second: idle connections close, holes that waited too long become gaps. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, tw] of this.timeWait) {
      if (now - tw.time <= this.limits.timeWaitSec) break;
      this.timeWait.delete(k);
    }
    const idle: Conn[] = [];
    for (const c of this.all()) {
      if (now - c.lastSeen > this.limits.idleTimeoutSec) idle.push(c);
      else {
        this.settle(c, now, false);
        for (const dir of [0, 1] as Dir[]) {
          const h = c.halves[dir];
          if (h.held.length > 0 && now - h.waitingSince > this.limits.gapTimeoutSec) this.fillHole(c, dir);
        }
      }
    }
    for (const c of idle) this.close(c, now, 'idle');
    this.stats.bufferedBytes = this.bufferedTotal;
    this.stats.memoryBytes = this.memory();
  }

  private evictIdlest(why: keyof ReassemblyStats['evictions']): void {
    // Evict the idlest 1% in one pass so a flood of new connections does not scan per packet.
    const conns = [...this.all()].sort((x, y) => x.lastSeen - y.lastSeen);
    const n = Math.max(1, Math.floor(conns.length / 100));
    for (let i = 0; i < n; i++) {
      this.stats.evictedConnections++;
      this.stats.evictions[why]++;
      this.close(conns[i]!, this.clock, 'evicted');
    }
  }

  /**
   * Time passes without a packet (a live source): at `now` (capture seconds), idle connections
   * close and holes that waited past the gap timeout become gaps, as a packet stamped `now` would
   * have made them. The clock never moves back.
   */
  tick(now: number): void {
    if (now <= this.clock) return;
    this.clock = now;
    if (now - this.lastSweep >= 1) this.sweep(now);
  }

  /** End of input: every connection closes, held data is delivered behind gaps. */
  finish(): void {
    for (const c of [...this.all()]) this.close(c, Math.max(this.clock, c.lastSeen), 'eof');
    this.stats.bufferedBytes = this.bufferedTotal;
    this.stats.memoryBytes = this.memory();
  }
}
