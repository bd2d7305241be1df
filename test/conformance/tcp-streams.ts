/**
 * Reassembles every TCP connection of a capture file with tapwire's TcpReassembler and reduces
 * each direction to what tshark's `-z follow,tcp,raw` gives: byte count and sha256. The packet
 * path is the Pipeline's (time order → decode → reassembly) with a hashing StreamHandler in place
 * of the protocol dispatcher.
 */
import { createHash } from 'node:crypto';
import { readCapture } from '../../src/capture/reader.js';
import { DEFAULT_TIME_ORDER, TimeOrder } from '../../src/capture/timeorder.js';
import type { ReaderInfo } from '../../src/capture/types.js';
import { Violations } from '../../src/common/violations.js';
import { Decoder, IPPROTO_TCP } from '../../src/decode/packet.js';
import { TcpReassembler, type ReassemblyStats } from '../../src/reassembly/tcp.js';
import type { CloseReason, ConnectionInfo, Dir, Endpoint, StreamHandler } from '../../src/stream/index.js';

export interface DirStream {
  /** Bytes delivered by data() (gap bytes not included). */
  bytes: number;
  sha256: string;
  /** Gaps reported for this direction, and their total length. */
  gaps: number;
  gapBytes: number;
  /**
   * The direction as tshark 4.0's `follow,tcp,raw` renders a stream with holes: a hole between
   * data becomes the text "[N bytes missing in capture file]" and a NUL; holes before the first
   * or after the last data byte are left out. Equal to bytes/sha256 when there were no gaps.
   */
  followBytes: number;
  followSha256: string;
}

/** What tshark's follow writes for N missing bytes (epan/follow.c, 4.0). */
export function followGapMarker(n: number): Buffer {
  return Buffer.from(`[${n} bytes missing in capture file]\0`, 'latin1');
}

class DirState {
  readonly plain = createHash('sha256');
  readonly follow = createHash('sha256');
  readonly out: DirStream = { bytes: 0, sha256: '', gaps: 0, gapBytes: 0, followBytes: 0, followSha256: '' };
  /** Gap bytes since the last data, not yet written as a marker. */
  private pendingGap = 0;

  data(b: Buffer): void {
    if (this.pendingGap > 0 && this.out.bytes > 0) {
      const m = followGapMarker(this.pendingGap);
      this.follow.update(m);
      this.out.followBytes += m.length;
    }
    this.pendingGap = 0;
    this.plain.update(b);
    this.follow.update(b);
    this.out.bytes += b.length;
    this.out.followBytes += b.length;
  }

  gap(n: number): void {
    this.out.gaps++;
    this.out.gapBytes += n;
    this.pendingGap += n;
  }

  close(): DirStream {
    this.out.sha256 = this.plain.digest('hex');
    this.out.followSha256 = this.follow.digest('hex');
    return this.out;
  }
}

export interface TcpConn {
  id: string;
  client: Endpoint;
  server: Endpoint;
  firstFrame: number;
  handshakeSeen: boolean;
  /** [client → server, server → client]. */
  dirs: [DirStream, DirStream];
  closeReason?: CloseReason;
}

export interface TcpRun {
  conns: TcpConn[];
  stats: ReassemblyStats;
  violations: Violations;
  file: ReaderInfo;
}

class HashingHandler implements StreamHandler {
  readonly done: TcpConn[] = [];
  private open_ = new Map<string, { conn: TcpConn; dirs: [DirState, DirState] }>();

  open(c: ConnectionInfo): void {
    const dirs: [DirState, DirState] = [new DirState(), new DirState()];
    const conn: TcpConn = {
      id: c.id, client: { ...c.client }, server: { ...c.server }, firstFrame: c.firstFrame,
      handshakeSeen: c.handshakeSeen, dirs: [dirs[0].out, dirs[1].out],
    };
    this.open_.set(c.id, { conn, dirs });
  }

  data(c: ConnectionInfo, dir: Dir, bytes: Buffer): void {
    this.open_.get(c.id)!.dirs[dir].data(bytes);
  }

  gap(c: ConnectionInfo, dir: Dir, length: number): void {
    this.open_.get(c.id)!.dirs[dir].gap(length);
  }

  fin(): void {}

  close(c: ConnectionInfo, _time: number, reason: CloseReason): void {
    const s = this.open_.get(c.id)!;
    this.open_.delete(c.id);
    s.conn.closeReason = reason;
    s.dirs[0].close();
    s.dirs[1].close();
    this.done.push(s.conn);
  }
}

export async function reassembleFile(path: string): Promise<TcpRun> {
  const violations = new Violations();
  const handler = new HashingHandler();
  const decoder = new Decoder(violations);
  const reassembler = new TcpReassembler(handler, violations);
  const order = new TimeOrder((p) => {
    const d = decoder.decode(p);
    if (d && d.proto === IPPROTO_TCP) reassembler.packet(d);
  }, DEFAULT_TIME_ORDER);
  const file = await readCapture(path, (p) => order.push(p), { violations });
  order.flush();
  reassembler.finish();
  const conns = [...handler.done].sort((a, b) => a.firstFrame - b.firstFrame);
  return { conns, stats: reassembler.stats, violations, file };
}
