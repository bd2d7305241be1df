import { markComment, PLAINTEXT_INTERFACE, PLAINTEXT_INTERFACE_DESCRIPTION, type PlaintextMark } from '../capture/index.js';

/** One packet as it leaves the store for a capture file; `mark` for decrypted TLS plaintext synthesized as TCP. */
export interface OutPacket { time: number; linkType: number; data: Buffer; wireLen: number; mark?: PlaintextMark }

export interface PacketWriter {
  /** Resolves when the output can take more (backpressure); most calls only buffer. */
  packet(p: OutPacket): Promise<void> | undefined;
  /** Writes what is buffered. The output is left open: the caller ends it. */
  flush(): Promise<void>;
}

const CHUNK = 64 * 1024;
/** libpcap's MAXIMUM_SNAPLEN: no stored packet is longer than a capture could give. */
const SNAPLEN = 262_144;

/** Gathers small writes into chunks and waits for 'drain' when the output asks for it. */
abstract class BufferedWriter implements PacketWriter {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  abstract packet(p: OutPacket): Promise<void> | undefined;

  protected put(...bufs: Buffer[]): Promise<void> | undefined {
    for (const b of bufs) {
      this.chunks.push(b);
      this.size += b.length;
    }
    return this.size >= CHUNK ? this.flush() : undefined;
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    if (!this.out.write(data)) await drained(this.out);
  }
}

function drained(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      out.off('drain', onDrain).off('close', onClose).off('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('the output closed before the export ended'));
    out.on('drain', onDrain).on('close', onClose).on('error', done);
  });
}

/** Capture time as whole microseconds: what both formats' timestamps hold. */
function micros(t: number): number {
  return Math.round(t * 1e6);
}

/** One classic pcap record (microsecond timestamps, little-endian): its header, then the bytes. */
export function pcapRecord(p: Omit<OutPacket, 'linkType'>): [Buffer, Buffer] {
  const us = micros(p.time);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(Math.floor(us / 1e6), 0);
  h.writeUInt32LE(us % 1e6, 4);
  h.writeUInt32LE(p.data.length, 8);
  h.writeUInt32LE(p.wireLen, 12);
  return [h, p.data];
}

/**
 * pcapng options (draft-ietf-opsawg-pcapng §3.5): code u16, length u16, the value padded to 32
 * bits; then opt_endofopt. Empty when there are none.
 */
function pcapngOptions(options: [code: number, value: string][]): Buffer {
  if (options.length === 0) return Buffer.alloc(0);
  const values = options.map(([code, v]) => [code, Buffer.from(v, 'utf8')] as const);
  const b = Buffer.alloc(values.reduce((n, [, v]) => n + 4 + ((v.length + 3) & ~3), 4));
  let at = 0;
  for (const [code, v] of values) {
    b.writeUInt16LE(code, at);
    b.writeUInt16LE(v.length, at + 2);
    v.copy(b, at + 4);
    at += 4 + ((v.length + 3) & ~3);
  }
  return b; // the last 4 bytes stay zero: opt_endofopt
}

const OPT_COMMENT = 1, IF_NAME = 2, IF_DESCRIPTION = 3;
/** An option value is at most 65535 bytes (its length field). */
const MAX_OPTION = 0xffff;

/**
 * One pcapng Enhanced Packet Block (type 6) on interface `iface`: head, bytes, then padding, an
 * opt_comment when `comment` is given, and the trailing length.
 */
export function pcapngPacketBlock(p: Omit<OutPacket, 'linkType'>, iface: number, comment?: string): [Buffer, Buffer, Buffer] {
  const pad = (4 - (p.data.length % 4)) % 4;
  const opts = comment === undefined ? Buffer.alloc(0) : pcapngOptions([[OPT_COMMENT, comment.slice(0, MAX_OPTION >> 2)]]);
  const total = 32 + p.data.length + pad + opts.length;
  const us = micros(p.time);
  const h = Buffer.alloc(28);
  h.writeUInt32LE(6, 0);
  h.writeUInt32LE(total, 4);
  h.writeUInt32LE(iface, 8);
  h.writeUInt32LE(Math.floor(us / 2 ** 32), 12);
  h.writeUInt32LE(us % 2 ** 32, 16);
  h.writeUInt32LE(p.data.length, 20);
  h.writeUInt32LE(p.wireLen, 24);
  const tail = Buffer.alloc(pad + opts.length + 4);
  opts.copy(tail, pad);
  tail.writeUInt32LE(total, pad + opts.length);
  return [h, p.data, tail];
}

/** Classic pcap (microsecond, little-endian): one link type for the whole file. */
export class PcapWriter extends BufferedWriter {
  constructor(out: NodeJS.WritableStream, linkType: number) {
    super(out);
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(linkType, 20);
    void this.put(h);
  }

  packet(p: OutPacket): Promise<void> | undefined {
    return this.put(...pcapRecord(p));
  }
}

/**
 * pcapng, for packets of several link types, or with decrypted TLS plaintext: one interface per
 * link type of the wire's packets, and one per link type of synthesized plaintext packets, named
 * PLAINTEXT_INTERFACE with a description, each of whose packets carries its mark as opt_comment.
 */
export class PcapngWriter extends BufferedWriter {
  private iface = new Map<number, number>();
  private plain = new Map<number, number>();

  constructor(out: NodeJS.WritableStream, linkTypes: number[], plaintextLinkTypes: number[] = []) {
    super(out);
    const shb = Buffer.alloc(28);
    shb.writeUInt32LE(0x0a0d0d0a, 0);
    shb.writeUInt32LE(28, 4);
    shb.writeUInt32LE(0x1a2b3c4d, 8);
    shb.writeUInt16LE(1, 12);
    shb.writeInt32LE(-1, 16); // section length unknown (64 bits of all ones)
    shb.writeInt32LE(-1, 20);
    shb.writeUInt32LE(28, 24);
    const idbs = linkTypes.map((lt, i) => {
      this.iface.set(lt, i);
      return interfaceBlock(lt, Buffer.alloc(0));
    });
    const named = pcapngOptions([[IF_NAME, PLAINTEXT_INTERFACE], [IF_DESCRIPTION, PLAINTEXT_INTERFACE_DESCRIPTION]]);
    for (const lt of plaintextLinkTypes) {
      this.plain.set(lt, idbs.length);
      idbs.push(interfaceBlock(lt, named));
    }
    void this.put(shb, ...idbs);
  }

  packet(p: OutPacket): Promise<void> | undefined {
    if (p.mark) {
      const iface = this.plain.get(p.linkType);
      if (iface !== undefined) return this.put(...pcapngPacketBlock(p, iface, markComment(p.mark)));
    }
    return this.put(...pcapngPacketBlock(p, this.iface.get(p.linkType) ?? 0));
  }
}

/** An Interface Description Block (type 1): link type, snap length, options (§4.2). */
function interfaceBlock(linkType: number, options: Buffer): Buffer {
  const total = 20 + options.length;
  const idb = Buffer.alloc(total);
  idb.writeUInt32LE(1, 0);
  idb.writeUInt32LE(total, 4);
  idb.writeUInt16LE(linkType, 8);
  idb.writeUInt32LE(SNAPLEN, 12);
  options.copy(idb, 16);
  idb.writeUInt32LE(total, total - 4);
  return idb;
}
