/**
 * The hub's snapshot pcap (hub.ts): each agent's pcap or pcapng stream read packet by packet and
 * merged by capture time into one stream, so a snapshot across nodes opens in Wireshark as one
 * capture.
 *
 * One link type everywhere (every agent on bridges or veths: Ethernet) gives classic pcap, what
 * every tool reads. Different link types (one agent on `any`, Linux cooked capture, another on a
 * bridge) cannot share a classic pcap file, whose header holds one link type: then the output is
 * pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html) with one interface per
 * agent and link type, named by the agent's URL, rather than a refusal: a merged capture with a
 * note on its interfaces is more use than none. Timestamps are written in microseconds, the
 * resolution the agents store.
 */

import { PLAINTEXT_INTERFACE, PLAINTEXT_INTERFACE_DESCRIPTION } from '../capture/index.js';
import { pcapngPacketBlock, pcapRecord } from '../store/index.js';

/**
 * A packet of one agent's stream. `plaintext`: on the agent's decrypted-plaintext interface
 * (capture/plaintext-mark.ts), with `comment` its mark, both carried into the merged pcapng so the
 * plaintext stays apart from the ciphertext of its 4-tuple.
 */
interface Packet { time: number; linkType: number; data: Buffer; wireLen: number; plaintext?: boolean; comment?: string }

const PCAP_US = 0xa1b2c3d4, PCAP_NS = 0xa1b23c4d, PCAPNG_SHB = 0x0a0d0d0a, BYTE_ORDER = 0x1a2b3c4d;
const SNAPLEN = 262_144;
/** A block longer than this is not one an agent writes (a packet of SNAPLEN and its header fit). */
const MAX_BLOCK = SNAPLEN + 4096;

/** Pulls exact byte counts from a stream of chunks. */
class Bytes {
  private buf = Buffer.alloc(0);
  private off = 0;
  private readonly it: AsyncIterator<Buffer>;

  constructor(chunks: AsyncIterable<Buffer | Uint8Array>) {
    this.it = (chunks as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes, or undefined at a clean end; a cut inside them is an error. */
  async take(n: number): Promise<Buffer | undefined> {
    while (this.buf.length - this.off < n) {
      const r = await this.it.next();
      if (r.done) {
        if (this.buf.length === this.off) return undefined;
        throw new Error(`the stream ended inside a record (${this.buf.length - this.off} of ${n} bytes)`);
      }
      this.buf = Buffer.concat([this.buf.subarray(this.off), Buffer.from(r.value)]);
      this.off = 0;
    }
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** One agent's capture stream, pcap or pcapng, read packet by packet. */
export class PacketReader {
  /** Link type of each interface (pcapng IDB order; one for pcap). */
  linkTypes: number[] = [];
  /** Whether each interface is the decrypted-plaintext one (if_name PLAINTEXT_INTERFACE). */
  plaintext: boolean[] = [];
  private pcapng = false;
  private le = true;
  private nanos = false;
  /** pcapng: timestamp units per second of each interface (if_tsresol). */
  private resolution: number[] = [];
  private pending?: Packet;
  private readonly bytes: Bytes;

  constructor(readonly agent: string, chunks: AsyncIterable<Buffer | Uint8Array>) {
    this.bytes = new Bytes(chunks);
  }

  /** Reads the file header (and, for pcapng, the interfaces declared before the first packet). */
  async open(): Promise<void> {
    const head = await this.bytes.take(4);
    if (!head) throw new Error('the snapshot pcap is empty');
    const magicLe = head.readUInt32LE(0), magicBe = head.readUInt32BE(0);
    if (magicLe === PCAPNG_SHB) {
      this.pcapng = true;
      await this.section();
      // Interfaces come before the packets that use them: read up to the first packet.
      this.pending = await this.next();
      return;
    }
    if (magicLe === PCAP_US || magicLe === PCAP_NS) this.le = true;
    else if (magicBe === PCAP_US || magicBe === PCAP_NS) this.le = false;
    else throw new Error(`not a pcap or pcapng stream (it starts with ${head.toString('hex')})`);
    this.nanos = (this.le ? magicLe : magicBe) === PCAP_NS;
    const rest = await this.bytes.take(20);
    if (!rest) throw new Error('the pcap header is cut short');
    this.linkTypes = [this.u32(rest, 16) & 0xffff];
  }

  /** The next packet in stream order, or undefined at the end. */
  async next(): Promise<Packet | undefined> {
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      return p;
    }
    return this.pcapng ? this.nextBlock() : this.nextRecord();
  }

  close(): Promise<void> {
    return this.bytes.close();
  }

  private u32(b: Buffer, at: number): number {
    return this.le ? b.readUInt32LE(at) : b.readUInt32BE(at);
  }

  private u16(b: Buffer, at: number): number {
    return this.le ? b.readUInt16LE(at) : b.readUInt16BE(at);
  }

  private async nextRecord(): Promise<Packet | undefined> {
    const h = await this.bytes.take(16);
    if (!h) return undefined;
    const caplen = this.u32(h, 8);
    if (caplen > MAX_BLOCK) throw new Error(`a pcap record says it holds ${caplen} bytes`);
    const data = caplen ? await this.bytes.take(caplen) : Buffer.alloc(0);
    if (!data) throw new Error('the stream ended inside a packet');
    const time = this.u32(h, 0) + this.u32(h, 4) / (this.nanos ? 1e9 : 1e6);
    return { time, linkType: this.linkTypes[0]!, data, wireLen: this.u32(h, 12) };
  }

  /** A Section Header Block whose first four bytes were read: its byte order, and a fresh set of interfaces. */
  private async section(): Promise<void> {
    const lenOrder = await this.bytes.take(8);
    if (!lenOrder) throw new Error('the pcapng section header is cut short');
    this.le = lenOrder.readUInt32LE(4) === BYTE_ORDER;
    if (!this.le && lenOrder.readUInt32BE(4) !== BYTE_ORDER) throw new Error('the pcapng section header has no byte-order magic');
    const total = this.u32(lenOrder, 0);
    if (total < 28 || total > MAX_BLOCK) throw new Error(`a pcapng section header says it is ${total} bytes long`);
    await this.bytes.take(total - 12);
    this.linkTypes = [];
    this.plaintext = [];
    this.resolution = [];
  }

  private async nextBlock(): Promise<Packet | undefined> {
    for (;;) {
      const head = await this.bytes.take(4);
      if (!head) return undefined;
      if (head.readUInt32LE(0) === PCAPNG_SHB) {
        await this.section();
        continue;
      }
      const lenB = await this.bytes.take(4);
      if (!lenB) throw new Error('the stream ended inside a block header');
      const type = this.u32(head, 0), total = this.u32(lenB, 0);
      if (total < 12 || total % 4 !== 0 || total > MAX_BLOCK) throw new Error(`a pcapng block (type ${type}) says it is ${total} bytes long`);
      const body = (await this.bytes.take(total - 8))!;
      if (!body) throw new Error('the stream ended inside a block');
      if (type === 1) this.interface(body.subarray(0, total - 12));
      else if (type === 6) {
        const iface = this.u32(body, 0), caplen = this.u32(body, 12);
        const units = this.resolution[iface];
        if (units === undefined) throw new Error(`a pcapng packet names interface ${iface}, which was not declared`);
        const ts = this.u32(body, 4) * 2 ** 32 + this.u32(body, 8);
        const p: Packet = { time: ts / units, linkType: this.linkTypes[iface]!, data: body.subarray(20, 20 + caplen), wireLen: this.u32(body, 16) };
        if (this.plaintext[iface]) {
          p.plaintext = true;
          const comment = this.option(body.subarray(20 + ((caplen + 3) & ~3), total - 12), 1);
          if (comment !== undefined) p.comment = comment;
        }
        return p;
      }
      // Other blocks (statistics, name resolution, simple packets without a time) are skipped.
    }
  }

  /** The text of option `code` among a block's options, if there. */
  private option(b: Buffer, code: number): string | undefined {
    for (let at = 0; at + 4 <= b.length;) {
      const c = this.u16(b, at), len = this.u16(b, at + 2);
      if (c === 0 || at + 4 + len > b.length) return undefined;
      if (c === code) return b.toString('utf8', at + 4, at + 4 + len);
      at += 4 + len + ((4 - (len % 4)) % 4);
    }
    return undefined;
  }

  /** An Interface Description Block's body (without the trailing length): link type, if_name, if_tsresol. */
  private interface(b: Buffer): void {
    this.linkTypes.push(this.u16(b, 0));
    this.plaintext.push(this.option(b.subarray(8), 2) === PLAINTEXT_INTERFACE);
    let units = 1e6;
    for (let at = 8; at + 4 <= b.length;) {
      const code = this.u16(b, at), len = this.u16(b, at + 2);
      if (code === 0) break;
      if (code === 9 && len >= 1) {
        const v = b[at + 4]!;
        units = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** (v & 0x7f);
      }
      at += 4 + len + ((4 - (len % 4)) % 4);
    }
    this.resolution.push(units);
  }
}

/** Buffered output that waits for 'drain' when the stream asks for it. */
class Out {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  async put(...bufs: Buffer[]): Promise<void> {
    for (const b of bufs) {
      this.chunks.push(b);
      this.size += b.length;
    }
    if (this.size >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    if (!this.out.write(data)) await new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.out.off('drain', ok).off('close', closed).off('error', done);
        if (e) reject(e);
        else resolve();
      };
      const ok = () => done();
      const closed = () => done(new Error('the output closed before the pcap ended'));
      this.out.on('drain', ok).on('close', closed).on('error', done);
    });
  }
}


/**
 * Merges opened readers by capture time into `out` (left open). Returns the packets written and,
 * per agent, why its stream stopped early (the packets before the break are in the output).
 */
export async function mergePcaps(readers: PacketReader[], out: NodeJS.WritableStream, timeoutMs = 5000): Promise<{ packets: number; broken: { agent: string; error: string }[] }> {
  // An agent whose stream stalls is cut off after the timeout, so one hung agent cannot hold the whole export.
  const next = (r: PacketReader): Promise<Packet | undefined | Error> => {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<Error>((resolve) => {
      timer = setTimeout(() => {
        void r.close().catch(() => undefined);
        resolve(new Error(`no data within ${timeoutMs / 1000} s`));
      }, timeoutMs);
    });
    return Promise.race([r.next().catch((e: unknown) => e as Error), stalled]).finally(() => clearTimeout(timer));
  };
  const types = [...new Set(readers.flatMap((r) => r.linkTypes))];
  const w = new Out(out);
  const iface = new Map<string, number>();
  // Decrypted plaintext needs its own interface and comments: pcapng, whatever the link types.
  const ng = types.length > 1 || readers.some((r) => r.plaintext.includes(true));
  if (!ng) {
    const h = Buffer.alloc(24);
    h.writeUInt32LE(PCAP_US, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(SNAPLEN, 16);
    h.writeUInt32LE(types[0] ?? 1, 20);
    await w.put(h);
  } else {
    const shb = Buffer.alloc(28);
    shb.writeUInt32LE(PCAPNG_SHB, 0);
    shb.writeUInt32LE(28, 4);
    shb.writeUInt32LE(BYTE_ORDER, 8);
    shb.writeUInt16LE(1, 12);
    shb.writeInt32LE(-1, 16);
    shb.writeInt32LE(-1, 20);
    shb.writeUInt32LE(28, 24);
    await w.put(shb);
    for (const r of readers) {
      for (const key of new Set(r.linkTypes.map((lt, i) => `${lt}\u0000${r.plaintext[i] === true}`))) {
        const [lt, plain] = key.split('\u0000');
        iface.set(`${r.agent}\u0000${key}`, iface.size);
        // The plaintext interface keeps its name (readers know it by it) and says whose it is.
        await w.put(plain === 'true' ? idb(Number(lt), PLAINTEXT_INTERFACE, `${PLAINTEXT_INTERFACE_DESCRIPTION}; from ${r.agent}`) : idb(Number(lt), r.agent));
      }
    }
  }
  const heads = await Promise.all(readers.map(next));
  const broken: { agent: string; error: string }[] = [];
  let packets = 0;
  for (;;) {
    let k = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h instanceof Error) {
        broken.push({ agent: readers[i]!.agent, error: h.message });
        heads[i] = undefined;
      } else if (h && (k < 0 || h.time < (heads[k] as Packet).time)) k = i;
    }
    if (k < 0) break;
    const p = heads[k] as Packet;
    packets++;
    // Copied: a reader's buffer may be reused for its next packet while this one is still queued.
    const copy = { ...p, data: Buffer.from(p.data) };
    if (!ng) await w.put(...pcapRecord(copy));
    else await w.put(...pcapngPacketBlock(copy, iface.get(`${readers[k]!.agent}\u0000${p.linkType}\u0000${p.plaintext === true}`) ?? 0, p.comment));
    heads[k] = await next(readers[k]!);
  }
  await w.flush();
  return { packets, broken };
}

/** An Interface Description Block with if_name (option 2): the agent the packets came from; if_description (3) when given. */
function idb(linkType: number, name: string, description?: string): Buffer {
  const opts = [[2, Buffer.from(name, 'utf8')], ...(description !== undefined ? [[3, Buffer.from(description, 'utf8')]] : [])] as [number, Buffer][];
  const optBytes = opts.reduce((n, [, t]) => n + 4 + t.length + ((4 - (t.length % 4)) % 4), 0);
  const total = 20 + optBytes + 4;
  const b = Buffer.alloc(total);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(total, 4);
  b.writeUInt16LE(linkType, 8);
  b.writeUInt32LE(SNAPLEN, 12);
  let at = 16;
  for (const [code, text] of opts) {
    b.writeUInt16LE(code, at);
    b.writeUInt16LE(text.length, at + 2);
    text.copy(b, at + 4);
    at += 4 + text.length + ((4 - (text.length % 4)) % 4);
  }
  // opt_endofopt (4 zero bytes) is already there, then the trailing length.
  b.writeUInt32LE(total, total - 4);
  return b;
}
