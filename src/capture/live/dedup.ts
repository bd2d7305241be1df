/**
 * The same L3 packet seen more than once by a live capture: through `any` a packet bridged
 * between two pods shows on the sending veth, the bridge and the receiving veth, each time behind
 * another link header (SLL, Ethernet). Copies are recognised by their network-layer bytes, never
 * by the link header.
 *
 * This module only looks at link and IP headers far enough to find where L3 starts and how long
 * the packet was on the wire; src/decode/ does the real decoding later (capture/ may not import it).
 */

/** LINKTYPE_* values a live capture can report (tcpdump.org/linktypes.html). */
export const LIVE_LINKTYPE = { NULL: 0, ETHERNET: 1, RAW: 101, LOOP: 108, LINUX_SLL: 113, LINUX_SLL2: 276 } as const;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

/** Where the network layer of a frame starts, and what it is. */
export interface L3 {
  offset: number;
  /** 4, 6, or 0 for anything else (ARP, STP …), which is still deduplicated by its bytes. */
  version: 0 | 4 | 6;
}

/** Finds the network layer; undefined when the frame is shorter than its link header. */
export function findL3(linkType: number, data: Buffer, out: L3): L3 | undefined {
  let off: number;
  let type = -1;
  switch (linkType) {
    case LIVE_LINKTYPE.ETHERNET:
      if (data.length < 14) return undefined;
      off = 14;
      type = data.readUInt16BE(12);
      // 802.1Q / 802.1ad tags: a packet may be tagged on one interface and not on another.
      while ((type === 0x8100 || type === 0x88a8 || type === 0x9100) && data.length >= off + 4) {
        type = data.readUInt16BE(off + 2);
        off += 4;
      }
      break;
    case LIVE_LINKTYPE.LINUX_SLL:
      if (data.length < 16) return undefined;
      off = 16;
      type = data.readUInt16BE(14);
      break;
    case LIVE_LINKTYPE.LINUX_SLL2:
      if (data.length < 20) return undefined;
      off = 20;
      type = data.readUInt16BE(0);
      break;
    case LIVE_LINKTYPE.NULL:
    case LIVE_LINKTYPE.LOOP:
      off = 4;
      break;
    default:
      off = 0;
  }
  if (off > data.length) return undefined;
  out.offset = off;
  if (type === ETHERTYPE_IPV4 || type === ETHERTYPE_IPV6) out.version = type === ETHERTYPE_IPV4 ? 4 : 6;
  else if (type === -1 && off < data.length) {
    // No EtherType in the link header (raw IP, BSD null/loop): the IP version nibble says.
    const v = data[off]! >> 4;
    out.version = v === 4 || v === 6 ? v : 0;
  } else out.version = 0;
  return out;
}

/**
 * Length of the frame on the wire as its IP header states it, when the capture kept less (the
 * 65535-byte snap length cuts 64 KiB loopback and GSO frames). Returns the captured length
 * otherwise, also for an IPv4 total length of 0 (TSO) and for anything that is not IP.
 */
export function wireLength(data: Buffer, l3: L3): number {
  const off = l3.offset;
  let ipLen = 0;
  if (l3.version === 4 && data.length >= off + 4) ipLen = data.readUInt16BE(off + 2);
  else if (l3.version === 6 && data.length >= off + 6) {
    const plen = data.readUInt16BE(off + 4);
    ipLen = plen === 0 ? 0 : 40 + plen; // 0: jumbogram or GSO, length unknown here
  }
  return Math.max(data.length, off + ipLen);
}

/** Bytes of the network layer hashed: the IP header and the transport header with its checksum, which covers the payload. */
const HASHED_BYTES = 96;

/**
 * A 53-bit identity of a packet's network-layer bytes: its captured length and its first
 * HASHED_BYTES bytes, leaving out what a router may rewrite (IPv4 TTL and header checksum, IPv6
 * hop limit). TCP and UDP checksums sit inside the hashed bytes and cover the whole payload, so
 * two packets that differ anywhere almost surely hash apart; 53 bits keep false matches among
 * the few thousand packets of a 50 ms window below one in 10^12.
 */
export function l3Key(data: Buffer, l3: L3): number {
  const off = l3.offset;
  const end = Math.min(data.length, off + HASHED_BYTES);
  const len = data.length - off;
  let h1 = 0x811c9dc5 ^ len;
  let h2 = 0x9747b28c ^ Math.imul(len, 0x85ebca6b);
  // Mutable header bytes, as offsets from the start of L3.
  const ttl = l3.version === 4 ? off + 8 : l3.version === 6 ? off + 7 : -9; // TTL / hop limit
  const sum = l3.version === 4 ? off + 10 : -9; // IPv4 header checksum, 2 bytes
  for (let i = off; i < end; i++) {
    if (i === ttl || i === sum || i === sum + 1) continue;
    const b = data[i]!;
    h1 = Math.imul(h1 ^ b, 0x01000193);
    h2 = Math.imul(h2 ^ b, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return (h1 >>> 0) * 0x200000 + ((h2 >>> 11) & 0x1fffff);
}

/**
 * Keys seen within the last `windowSec` seconds. A key seen again inside the window is a
 * duplicate; the window is not extended by the copy, so a real retransmission of identical
 * bytes later than that is delivered (TCP reassembly then judges it).
 */
export class DuplicateWindow {
  private readonly seen = new Map<number, number>();
  private keys: number[] = [];
  private times: number[] = [];
  private head = 0;

  constructor(private readonly windowSec: number) {}

  /** True when `key` was seen within the window before `time`; otherwise remembers it. */
  duplicate(key: number, time: number): boolean {
    this.expire(time - this.windowSec);
    if (this.seen.has(key)) return true;
    this.seen.set(key, time);
    this.keys.push(key);
    this.times.push(time);
    return false;
  }

  get size(): number {
    return this.seen.size;
  }

  private expire(before: number): void {
    const { keys, times } = this;
    let h = this.head;
    while (h < keys.length && times[h]! < before) {
      if (this.seen.get(keys[h]!) === times[h]) this.seen.delete(keys[h]!);
      h++;
    }
    if (h === keys.length) {
      this.keys = [];
      this.times = [];
      h = 0;
    } else if (h > 4096 && h * 2 > keys.length) {
      this.keys = keys.slice(h);
      this.times = times.slice(h);
      h = 0;
    }
    this.head = h;
  }
}
