/** One packet as it leaves the store for a capture file. */
export interface OutPacket { time: number; linkType: number; data: Buffer; wireLen: number }

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

/** One pcapng Enhanced Packet Block (type 6) on interface `iface`: head, bytes, padding and trailing length. */
export function pcapngPacketBlock(p: Omit<OutPacket, 'linkType'>, iface: number): [Buffer, Buffer, Buffer] {
  const pad = (4 - (p.data.length % 4)) % 4;
  const total = 32 + p.data.length + pad;
  const us = micros(p.time);
  const h = Buffer.alloc(28);
  h.writeUInt32LE(6, 0);
  h.writeUInt32LE(total, 4);
  h.writeUInt32LE(iface, 8);
  h.writeUInt32LE(Math.floor(us / 2 ** 32), 12);
  h.writeUInt32LE(us % 2 ** 32, 16);
  h.writeUInt32LE(p.data.length, 20);
  h.writeUInt32LE(p.wireLen, 24);
  const tail = Buffer.alloc(pad + 4);
  tail.writeUInt32LE(total, pad);
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

/** pcapng, for packets of several link types: one interface per link type. */
export class PcapngWriter extends BufferedWriter {
  private iface = new Map<number, number>();

  constructor(out: NodeJS.WritableStream, linkTypes: number[]) {
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
      const idb = Buffer.alloc(20);
      idb.writeUInt32LE(1, 0);
      idb.writeUInt32LE(20, 4);
      idb.writeUInt16LE(lt, 8);
      idb.writeUInt32LE(SNAPLEN, 12);
      idb.writeUInt32LE(20, 16);
      return idb;
    });
    void this.put(shb, ...idbs);
  }

  packet(p: OutPacket): Promise<void> | undefined {
    return this.put(...pcapngPacketBlock(p, this.iface.get(p.linkType) ?? 0));
  }
}
