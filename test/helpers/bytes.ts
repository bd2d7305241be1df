import type { Packet } from '../../src/capture/types.js';
/**
 * Small byte builders for test fixtures: link headers, IPv4/IPv6 (with extension headers), TCP,
 * UDP, and whole pcap / pcapng files. Every length and checksum is computed, never pasted.
 */

// ---- addresses and checksums -----------------------------------------------------------------

/** "10.0.0.1" → 4 bytes; "2001:db8::1" → 16 bytes. */
export function ipBytes(ip: string): Buffer {
  if (!ip.includes(':')) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** RFC 1071 one's-complement sum of 16-bit words, folded and inverted. */
export function inetChecksum(...parts: Buffer[]): number {
  const b = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// ---- link layers -------------------------------------------------------------------------------

export const ETH_IPV4 = 0x0800;
export const ETH_IPV6 = 0x86dd;

export interface EthernetOptions {
  etherType?: number;
  /** Tags outermost first; tpid defaults to 0x8100 (use 0x88a8 for a QinQ outer tag). */
  vlans?: { vid: number; tpid?: number }[];
  src?: Buffer;
  dst?: Buffer;
}

export function ethernet(payload: Buffer, o: EthernetOptions = {}): Buffer {
  const tags = (o.vlans ?? []).map((v) => u16(v.tpid ?? 0x8100, v.vid & 0x0fff));
  return Buffer.concat([
    o.dst ?? Buffer.from([2, 0, 0, 0, 0, 2]), o.src ?? Buffer.from([2, 0, 0, 0, 0, 1]),
    ...tags, u16(o.etherType ?? etherTypeOf(payload)), payload,
  ]);
}

/** IEEE 802.3 frame with an 802.2 LLC + SNAP header (AA AA 03, OUI 000000) carrying `etherType`. */
export function ethernetSnap(payload: Buffer, etherType = etherTypeOf(payload), llc = [0xaa, 0xaa, 0x03]): Buffer {
  const snap = Buffer.concat([Buffer.from([...llc, 0, 0, 0]), u16(etherType), payload]);
  return Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]), u16(snap.length), snap]);
}

/** Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 16 bytes). */
export function sll(payload: Buffer, protocol = etherTypeOf(payload), packetType = 0): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt16BE(packetType, 0);
  h.writeUInt16BE(1, 2); // ARPHRD_ETHER
  h.writeUInt16BE(6, 4);
  h.set([2, 0, 0, 0, 0, 1], 6);
  h.writeUInt16BE(protocol, 14);
  return Buffer.concat([h, payload]);
}

/** Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20 bytes). */
export function sll2(payload: Buffer, protocol = etherTypeOf(payload), ifIndex = 1): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(protocol, 0);
  h.writeUInt32BE(ifIndex, 4);
  h.writeUInt16BE(1, 8); // ARPHRD_ETHER
  h[11] = 6;
  h.set([2, 0, 0, 0, 0, 1], 12);
  return Buffer.concat([h, payload]);
}

/** BSD loopback: 4-byte address family, little-endian for NULL (host order), big-endian for LOOP. */
export function bsdLoop(payload: Buffer, af: number, order: 'le' | 'be'): Buffer {
  const h = Buffer.alloc(4);
  if (order === 'le') h.writeUInt32LE(af); else h.writeUInt32BE(af);
  return Buffer.concat([h, payload]);
}

function etherTypeOf(ipPacket: Buffer): number {
  return ipPacket.length > 0 && ipPacket[0]! >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
}

// ---- IP ----------------------------------------------------------------------------------------

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export interface Ipv4Options {
  src?: string;
  dst?: string;
  proto?: number;
  id?: number;
  ttl?: number;
  df?: boolean;
  mf?: boolean;
  /** Fragment offset in bytes (must be a multiple of 8). */
  fragOffset?: number;
  /** Raw option bytes, padded to 4 here. */
  options?: Buffer;
  /** Overrides the computed total length (0 = TSO style, or a lie). */
  totalLength?: number;
  /** Overrides the version/IHL byte. */
  vihl?: number;
}

export function ipv4(payload: Buffer, o: Ipv4Options = {}): Buffer {
  const opts = o.options ? pad(o.options, 4) : Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h[0] = o.vihl ?? 0x40 | (h.length / 4);
  h.writeUInt16BE(o.totalLength ?? h.length + payload.length, 2);
  h.writeUInt16BE(o.id ?? 1, 4);
  h.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) / 8), 6);
  h[8] = o.ttl ?? 64;
  h[9] = o.proto ?? PROTO_TCP;
  ipBytes(o.src ?? '10.0.0.1').copy(h, 12);
  ipBytes(o.dst ?? '10.0.0.2').copy(h, 16);
  opts.copy(h, 20);
  h.writeUInt16BE(inetChecksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** One IPv6 extension header. hop/dstopts/routing carry `data` (padded to 8n − 2 bytes). */
export type Ipv6Ext =
  | { type: 'hop' | 'dstopts'; data?: Buffer }
  | { type: 'routing'; routingType?: number; segmentsLeft?: number; data?: Buffer }
  | { type: 'fragment'; offset: number; more: boolean; id: number }
  | { type: 'ah'; data?: Buffer };

const EXT_CODE = { hop: 0, routing: 43, fragment: 44, ah: 51, dstopts: 60 } as const;

export interface Ipv6Options {
  src?: string;
  dst?: string;
  /** Transport protocol after the last extension header. */
  proto?: number;
  ext?: Ipv6Ext[];
  hopLimit?: number;
  payloadLength?: number;
}

export function ipv6(payload: Buffer, o: Ipv6Options = {}): Buffer {
  const ext = o.ext ?? [];
  const codes = [...ext.map((e) => EXT_CODE[e.type]), o.proto ?? PROTO_TCP];
  const parts = ext.map((e, i) => ext6(e, codes[i + 1]!));
  const body = Buffer.concat([...parts, payload]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(o.payloadLength ?? body.length, 4);
  h[6] = codes[0]!;
  h[7] = o.hopLimit ?? 64;
  ipBytes(o.src ?? '2001:db8::1').copy(h, 8);
  ipBytes(o.dst ?? '2001:db8::2').copy(h, 24);
  return Buffer.concat([h, body]);
}

function ext6(e: Ipv6Ext, next: number): Buffer {
  if (e.type === 'fragment') {
    const b = Buffer.alloc(8);
    b[0] = next;
    b.writeUInt16BE((e.offset & 0xfff8) | (e.more ? 1 : 0), 2);
    b.writeUInt32BE(e.id >>> 0, 4);
    return b;
  }
  if (e.type === 'ah') {
    // AH length is in 4-byte units minus 2 (RFC 4302 §2.2); 12 fixed bytes + ICV.
    const icv = pad(e.data ?? Buffer.alloc(4), 4);
    const b = Buffer.alloc(12 + icv.length);
    b[0] = next;
    b[1] = b.length / 4 - 2;
    icv.copy(b, 12);
    return b;
  }
  const head = e.type === 'routing' ? Buffer.from([e.routingType ?? 0, e.segmentsLeft ?? 0]) : Buffer.alloc(0);
  // hop/dstopts data are options; an all-zero tail is Pad1 options, which is valid.
  const data = pad(Buffer.concat([head, e.data ?? Buffer.alloc(0)]), 8, 2);
  const b = Buffer.concat([Buffer.from([next, (data.length + 2) / 8 - 1]), data]);
  return b;
}

// ---- transport ---------------------------------------------------------------------------------

export const FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;

export interface TcpOptions {
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** Raw TCP option bytes, padded to 4 here. */
  options?: Buffer;
  /** Overrides the data-offset nibble (in 32-bit words). */
  dataOffsetWords?: number;
  /** For the checksum: the IP addresses this segment will travel between. */
  src?: string;
  dst?: string;
}

export function tcp(payload: Buffer, o: TcpOptions = {}): Buffer {
  const opts = o.options ? pad(o.options, 4) : Buffer.alloc(0);
  const h = Buffer.alloc(20 + opts.length);
  h.writeUInt16BE(o.srcPort ?? 40000, 0);
  h.writeUInt16BE(o.dstPort ?? 80, 2);
  h.writeUInt32BE((o.seq ?? 0) >>> 0, 4);
  h.writeUInt32BE((o.ack ?? 0) >>> 0, 8);
  h[12] = (o.dataOffsetWords ?? h.length / 4) << 4;
  h[13] = o.flags ?? ACK;
  h.writeUInt16BE(o.window ?? 65535, 14);
  opts.copy(h, 20);
  const seg = Buffer.concat([h, payload]);
  seg.writeUInt16BE(inetChecksum(pseudo(o.src ?? '10.0.0.1', o.dst ?? '10.0.0.2', PROTO_TCP, seg.length), seg), 16);
  return seg;
}

export function udp(payload: Buffer, o: { srcPort?: number; dstPort?: number; src?: string; dst?: string; length?: number } = {}): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(o.srcPort ?? 5353, 0);
  h.writeUInt16BE(o.dstPort ?? 53, 2);
  h.writeUInt16BE(o.length ?? 8 + payload.length, 4);
  const seg = Buffer.concat([h, payload]);
  seg.writeUInt16BE(inetChecksum(pseudo(o.src ?? '10.0.0.1', o.dst ?? '10.0.0.2', PROTO_UDP, seg.length), seg) || 0xffff, 6);
  return seg;
}

function pseudo(src: string, dst: string, proto: number, len: number): Buffer {
  const s = ipBytes(src), d = ipBytes(dst);
  if (s.length === 4) return Buffer.concat([s, d, Buffer.from([0, proto]), u16(len)]);
  const tail = Buffer.alloc(8);
  tail.writeUInt32BE(len, 0);
  tail[7] = proto;
  return Buffer.concat([s, d, tail]);
}

/** An IP packet (v4 or v6 by the address form) carrying a TCP segment with a right checksum. */
export function tcpPacket(payload: Buffer, o: TcpOptions & { src: string; dst: string; id?: number }): Buffer {
  const seg = tcp(payload, o);
  return o.src.includes(':') ? ipv6(seg, { src: o.src, dst: o.dst }) : ipv4(seg, { src: o.src, dst: o.dst, id: o.id });
}

// ---- capture files -----------------------------------------------------------------------------

export interface PcapRecord {
  data: Buffer;
  /** Seconds and fraction (µs or ns per the file's magic). */
  sec?: number;
  frac?: number;
  /** Length on the wire; defaults to data.length. */
  origLen?: number;
  /** Overrides incl_len (a lie); the record still holds `data`. */
  inclLen?: number;
}

export interface PcapOptions {
  byteOrder?: 'le' | 'be';
  nanos?: boolean;
  linkType?: number;
  snaplen?: number;
}

export function pcapHeader(o: PcapOptions = {}): Buffer {
  const le = (o.byteOrder ?? 'le') === 'le';
  const h = Buffer.alloc(24);
  w32(h, 0, o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, le);
  w16(h, 4, 2, le);
  w16(h, 6, 4, le);
  w32(h, 16, o.snaplen ?? 262144, le);
  w32(h, 20, o.linkType ?? 1, le);
  return h;
}

export function pcapRecord(r: PcapRecord, o: PcapOptions = {}): Buffer {
  const le = (o.byteOrder ?? 'le') === 'le';
  const h = Buffer.alloc(16);
  w32(h, 0, r.sec ?? 1_700_000_000, le);
  w32(h, 4, r.frac ?? 0, le);
  w32(h, 8, r.inclLen ?? r.data.length, le);
  w32(h, 12, r.origLen ?? r.data.length, le);
  return Buffer.concat([h, r.data]);
}

export function pcap(records: PcapRecord[], o: PcapOptions = {}): Buffer {
  return Buffer.concat([pcapHeader(o), ...records.map((r) => pcapRecord(r, o))]);
}

/** A pcapng block; the byte order is the one of the last SHB before it. */
export type PcapngBlock =
  | { type: 'shb'; byteOrder?: 'le' | 'be' }
  | { type: 'idb'; linkType: number; snaplen?: number; tsresol?: number; tsoffset?: number }
  | { type: 'epb'; iface: number; ts: bigint; data: Buffer; origLen?: number; capLen?: number }
  | { type: 'spb'; data: Buffer; origLen?: number }
  | { type: 'opb'; iface: number; ts: bigint; data: Buffer; origLen?: number }
  | { type: 'raw'; blockType: number; body?: Buffer; trailingLength?: number };

export function pcapng(blocks: PcapngBlock[]): Buffer {
  let le = true;
  const out: Buffer[] = [];
  for (const b of blocks) {
    if (b.type === 'shb') le = (b.byteOrder ?? 'le') === 'le';
    out.push(pcapngBlock(b, le));
  }
  return Buffer.concat(out);
}

export function pcapngBlock(b: PcapngBlock, le: boolean): Buffer {
  switch (b.type) {
    case 'shb': {
      const body = Buffer.alloc(16);
      w32(body, 0, 0x1a2b3c4d, le);
      w16(body, 4, 1, le);
      w16(body, 6, 0, le);
      body.fill(0xff, 8, 16); // section length unknown (-1)
      return block(0x0a0d0d0a, body, le);
    }
    case 'idb': {
      const head = Buffer.alloc(8);
      w16(head, 0, b.linkType, le);
      w32(head, 4, b.snaplen ?? 0, le);
      const opts: Buffer[] = [];
      if (b.tsresol !== undefined) opts.push(option(9, Buffer.from([b.tsresol]), le));
      if (b.tsoffset !== undefined) {
        const v = Buffer.alloc(8);
        if (le) v.writeBigInt64LE(BigInt(b.tsoffset)); else v.writeBigInt64BE(BigInt(b.tsoffset));
        opts.push(option(14, v, le));
      }
      if (opts.length) opts.push(option(0, Buffer.alloc(0), le));
      return block(1, Buffer.concat([head, ...opts]), le);
    }
    case 'epb':
    case 'opb': {
      const head = Buffer.alloc(20);
      if (b.type === 'epb') w32(head, 0, b.iface, le);
      else w16(head, 0, b.iface, le); // OPB: interface id (16) + drops count (16)
      w32(head, 4, Number(b.ts >> 32n), le);
      w32(head, 8, Number(b.ts & 0xffffffffn), le);
      w32(head, 12, b.type === 'epb' ? b.capLen ?? b.data.length : b.data.length, le);
      w32(head, 16, b.origLen ?? b.data.length, le);
      return block(b.type === 'epb' ? 6 : 2, Buffer.concat([head, pad(b.data, 4)]), le);
    }
    case 'spb': {
      const head = Buffer.alloc(4);
      w32(head, 0, b.origLen ?? b.data.length, le);
      return block(3, Buffer.concat([head, pad(b.data, 4)]), le);
    }
    case 'raw': {
      const out = block(b.blockType, pad(b.body ?? Buffer.alloc(0), 4), le);
      if (b.trailingLength !== undefined) w32(out, out.length - 4, b.trailingLength, le);
      return out;
    }
  }
}

function block(type: number, body: Buffer, le: boolean): Buffer {
  const out = Buffer.alloc(12 + body.length);
  w32(out, 0, type, le);
  w32(out, 4, out.length, le);
  body.copy(out, 8);
  w32(out, out.length - 4, out.length, le);
  return out;
}

function option(code: number, value: Buffer, le: boolean): Buffer {
  const h = Buffer.alloc(4);
  w16(h, 0, code, le);
  w16(h, 2, value.length, le);
  return Buffer.concat([h, pad(value, 4)]);
}

// ---- a whole TCP conversation ------------------------------------------------------------------

/** One TCP segment of a conversation, before it is turned into a frame. Tests may edit it. */
export interface Segment {
  /** 0: client → server, 1: server → client. */
  dir: 0 | 1;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  payload: Buffer;
  /** IPv4 id (the sender's counter). */
  id: number;
  /** Capture time, epoch seconds. */
  time: number;
}

export interface ConversationOptions {
  client?: string;
  server?: string;
  clientPort?: number;
  serverPort?: number;
  clientIsn?: number;
  serverIsn?: number;
  /** First segment's time and the step between segments (seconds). */
  start?: number;
  step?: number;
}

/**
 * Builds the segments of one TCP connection. Each side acknowledges everything the other has
 * sent so far (as if no segment were lost on the wire), so a test that drops segments from the
 * capture still has ACK numbers that prove what the receiver got.
 */
export class Conversation {
  readonly segments: Segment[] = [];
  private readonly ep: [{ ip: string; port: number }, { ip: string; port: number }];
  private readonly nxt: [number, number];
  private readonly ids: [number, number] = [100, 5000];
  private time: number;
  private readonly step: number;

  constructor(o: ConversationOptions = {}) {
    this.ep = [
      { ip: o.client ?? '10.0.0.1', port: o.clientPort ?? 40000 },
      { ip: o.server ?? '10.0.0.2', port: o.serverPort ?? 80 },
    ];
    this.nxt = [o.clientIsn ?? 1000, o.serverIsn ?? 900000];
    this.time = o.start ?? 1_700_000_000;
    this.step = o.step ?? 0.001;
  }

  private push(dir: 0 | 1, flags: number, payload: Buffer, withAck = true): Segment {
    const me = this.ep[dir], peer = this.ep[1 - dir]!;
    const s: Segment = {
      dir, src: me.ip, dst: peer.ip, srcPort: me.port, dstPort: peer.port,
      seq: this.nxt[dir], ack: withAck ? this.nxt[1 - dir]! : 0, flags: withAck ? flags | ACK : flags,
      payload, id: this.ids[dir]++, time: this.time,
    };
    this.time += this.step;
    this.nxt[dir] = (this.nxt[dir] + payload.length + (flags & (SYN | FIN) ? 1 : 0)) >>> 0;
    this.segments.push(s);
    return s;
  }

  handshake(): this {
    this.push(0, SYN, Buffer.alloc(0), false);
    this.push(1, SYN, Buffer.alloc(0));
    this.push(0, 0, Buffer.alloc(0));
    return this;
  }

  /** Sends `bytes` from one side, cut into segments of at most `mss` bytes (or at the given cut points). */
  send(dir: 0 | 1, bytes: Buffer | string, cut: number | number[] = 1460): Segment[] {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    const points = typeof cut === 'number' ? range(cut, b.length, cut) : cut.filter((k) => k > 0 && k < b.length);
    const edges = [0, ...points, b.length];
    const out: Segment[] = [];
    for (let i = 0; i + 1 < edges.length; i++) out.push(this.push(dir, PSH, b.subarray(edges[i], edges[i + 1])));
    return out;
  }

  /** A pure ACK from one side. */
  ack(dir: 0 | 1): Segment {
    return this.push(dir, 0, Buffer.alloc(0));
  }

  fin(dir: 0 | 1): Segment {
    return this.push(dir, FIN, Buffer.alloc(0));
  }

  /** FIN from both sides and the last ACK. */
  close(first: 0 | 1 = 0): this {
    this.fin(first);
    this.fin((1 - first) as 0 | 1);
    this.ack(first);
    return this;
  }

  rst(dir: 0 | 1): Segment {
    return this.push(dir, RST, Buffer.alloc(0));
  }
}

/** A segment as an IP packet (IPv4 or IPv6 by its address form). */
export function segmentIp(s: Segment): Buffer {
  return tcpPacket(s.payload, { src: s.src, dst: s.dst, srcPort: s.srcPort, dstPort: s.dstPort, seq: s.seq, ack: s.ack, flags: s.flags, id: s.id });
}

/** A captured packet: the real type, so the helpers cannot drift from it. */
export type FramePacket = Packet;

/** Segments → Ethernet frames with 1-based frame numbers in list order. */
export function toPackets(segs: Segment[]): FramePacket[] {
  return segs.map((s, i) => {
    const data = ethernet(segmentIp(s));
    return { frame: i + 1, time: s.time, linkType: 1, iface: 0, data, wireLen: data.length };
  });
}

/** Segments → a microsecond little-endian Ethernet pcap file. */
export function segmentsToPcap(segs: Segment[]): Buffer {
  return pcap(segs.map((s) => {
    const sec = Math.floor(s.time);
    return { data: ethernet(segmentIp(s)), sec, frac: Math.round((s.time - sec) * 1e6) };
  }));
}

// ---- small utilities ---------------------------------------------------------------------------

export function u16(...vals: number[]): Buffer {
  const b = Buffer.alloc(vals.length * 2);
  vals.forEach((v, i) => b.writeUInt16BE(v, i * 2));
  return b;
}

function w16(b: Buffer, off: number, v: number, le: boolean): void {
  if (le) b.writeUInt16LE(v, off); else b.writeUInt16BE(v, off);
}

function w32(b: Buffer, off: number, v: number, le: boolean): void {
  if (le) b.writeUInt32LE(v >>> 0, off); else b.writeUInt32BE(v >>> 0, off);
}

/** Zero-pads `b` so that (length + extra) is a multiple of `to`. */
export function pad(b: Buffer, to: number, extra = 0): Buffer {
  const r = (b.length + extra) % to;
  return r === 0 ? b : Buffer.concat([b, Buffer.alloc(to - r)]);
}

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let k = from; k < to; k += step) out.push(k);
  return out;
}
