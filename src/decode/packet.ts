import type { Violations } from '../common/index.js';
import type { Packet } from '../capture/index.js';
import { Fragments, type FragmentLimits, DEFAULT_FRAGMENT_LIMITS } from './fragments.js';
import { decodeLink, ETHERTYPE_IPV4, LINK_SHORT, LINK_UNSUPPORTED, type LinkResult } from './link.js';

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/**
 * A decoded TCP or UDP packet. The Decoder reuses one instance: consumers copy what they keep.
 * `src`/`dst` are views of the address bytes (4 or 16); `payload` is a view of the captured
 * transport payload, which may be shorter than `payloadLen` when the snap length cut the frame.
 */
export interface Decoded {
  frame: number;
  time: number;
  family: 4 | 6;
  src: Buffer;
  dst: Buffer;
  proto: number;
  srcPort: number;
  dstPort: number;
  /** TCP only. */
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** IPv4 identification (0 for IPv6) and transport checksum: together they tell a duplicate
   *  copy of one packet from a retransmission (which gets a new IP id). */
  ipId: number;
  checksum: number;
  payload: Buffer;
  /** Payload length on the wire, from the IP length fields. */
  payloadLen: number;
}

/** IPv6 extension headers walked over to reach the transport (RFC 8200 §4). */
const V6_HOP = 0;
const V6_ROUTING = 43;
const V6_FRAGMENT = 44;
const V6_ESP = 50;
const V6_AH = 51;
const V6_NONE = 59;
const V6_DSTOPTS = 60;
const V6_MOBILITY = 135;
const V6_HIP = 139;
const V6_SHIM6 = 140;

export interface DecodeStats {
  ipv4: number;
  ipv6: number;
  tcp: number;
  udp: number;
  /** Frames that were not IP (ARP, STP ...) or carried another transport. */
  other: number;
}

export class Decoder {
  readonly fragments: Fragments;
  readonly stats: DecodeStats = { ipv4: 0, ipv6: 0, tcp: 0, udp: 0, other: 0 };
  private readonly out: Decoded = {
    frame: 0, time: 0, family: 4, src: Buffer.alloc(0), dst: Buffer.alloc(0), proto: 0, srcPort: 0, dstPort: 0,
    seq: 0, ack: 0, flags: 0, window: 0, ipId: 0, checksum: 0, payload: Buffer.alloc(0), payloadLen: 0,
  };
  private readonly link: LinkResult = { etherType: 0, offset: 0 };
  private readonly unsupportedLinks = new Set<number>();
  /** Wire length of the frame being decoded: IP length fields may not claim more. */
  private wireLen = 0;

  constructor(private readonly violations: Violations, fragmentLimits: FragmentLimits = DEFAULT_FRAGMENT_LIMITS) {
    this.fragments = new Fragments(violations, fragmentLimits);
  }

  /** Decodes one frame down to TCP/UDP. Returns undefined for anything else (counted). */
  decode(p: Packet): Decoded | undefined {
    const data = p.data;
    this.wireLen = p.wireLen;
    const et = decodeLink(p.linkType, data, this.link);
    if (et < 0) {
      if (et === LINK_SHORT) this.violations.add('link.short', `frame of ${data.length} bytes is shorter than its link header`, p.frame);
      else if (et === LINK_UNSUPPORTED && !this.unsupportedLinks.has(p.linkType)) {
        this.unsupportedLinks.add(p.linkType);
        this.violations.add('link.unsupported', `link type ${p.linkType} is not supported; its frames are skipped`, p.frame);
      }
      this.stats.other++;
      return undefined;
    }
    const out = this.out;
    out.frame = p.frame;
    out.time = p.time;
    return et === ETHERTYPE_IPV4 ? this.ipv4(data, this.link.offset, out) : this.ipv6(data, this.link.offset, out);
  }

  private ipv4(data: Buffer, off: number, out: Decoded): Decoded | undefined {
    const frame = out.frame;
    if (data.length < off + 20) {
      this.violations.add('ipv4.short', `IPv4 header cut short (${data.length - off} bytes)`, frame);
      return undefined;
    }
    const vihl = data[off]!;
    const ihl = (vihl & 0x0f) * 4;
    if (vihl >> 4 !== 4 || ihl < 20) {
      this.violations.add('ipv4.bad_header', `IPv4 version/IHL byte 0x${vihl.toString(16)} is invalid`, frame);
      return undefined;
    }
    if (data.length < off + ihl) {
      this.violations.add('ipv4.short', `IPv4 options cut short`, frame);
      return undefined;
    }
    const total = data.readUInt16BE(off + 2);
    // Total length 0 happens with TSO on the capturing host; take what was captured.
    let wireEnd = total === 0 ? data.length : off + total;
    if (wireEnd > Math.max(this.wireLen, data.length)) {
      // The IP header claims more than the frame held on the wire: a lie, not a snap-length cut.
      this.violations.add('ipv4.length_exceeds_frame', `IPv4 total length ${total} exceeds the ${this.wireLen - off} bytes the frame carried`, frame);
      wireEnd = Math.max(this.wireLen, data.length);
    }
    if (total !== 0 && total < ihl) {
      this.violations.add('ipv4.bad_length', `IPv4 total length ${total} is shorter than its header (${ihl})`, frame);
      return undefined;
    }
    this.stats.ipv4++;
    out.family = 4;
    out.src = data.subarray(off + 12, off + 16);
    out.dst = data.subarray(off + 16, off + 20);
    out.ipId = data.readUInt16BE(off + 4);
    const proto = data[off + 9]!;
    const fragField = data.readUInt16BE(off + 6);
    const more = (fragField & 0x2000) !== 0;
    const fragOff = (fragField & 0x1fff) * 8;
    let payload = data.subarray(off + ihl, Math.min(wireEnd, data.length));
    let payloadLen = wireEnd - off - ihl;
    if (more || fragOff > 0) {
      if (payload.length < payloadLen) {
        this.violations.add('ipv4.fragment_truncated', `a fragment was cut by the snap length; its datagram is dropped`, frame);
        return undefined;
      }
      const key = `4:${out.src.readUInt32BE(0)}:${out.dst.readUInt32BE(0)}:${out.ipId}:${proto}`;
      const whole = this.fragments.add(key, fragOff, more, payload, out.time, frame);
      if (!whole) return undefined;
      payload = whole;
      payloadLen = whole.length;
    }
    return this.transport(proto, payload, payloadLen, out);
  }

  private ipv6(data: Buffer, off: number, out: Decoded): Decoded | undefined {
    const frame = out.frame;
    if (data.length < off + 40) {
      this.violations.add('ipv6.short', `IPv6 header cut short (${data.length - off} bytes)`, frame);
      return undefined;
    }
    if (data[off]! >> 4 !== 6) {
      this.violations.add('ipv6.bad_header', `IPv6 version nibble is ${data[off]! >> 4}`, frame);
      return undefined;
    }
    this.stats.ipv6++;
    const plen = data.readUInt16BE(off + 4);
    out.family = 6;
    out.src = data.subarray(off + 8, off + 24);
    out.dst = data.subarray(off + 24, off + 40);
    out.ipId = 0;
    let next = data[off + 6]!;
    let p = off + 40;
    // Payload length 0 means a jumbogram or TSO: take what was captured.
    let wireEnd = plen === 0 ? data.length : off + 40 + plen;
    if (wireEnd > Math.max(this.wireLen, data.length)) {
      this.violations.add('ipv6.length_exceeds_frame', `IPv6 payload length ${plen} exceeds the ${this.wireLen - off - 40} bytes the frame carried`, frame);
      wireEnd = Math.max(this.wireLen, data.length);
    }
    let fragment: { off: number; more: boolean; id: number } | undefined;
    for (;;) {
      if (next === V6_HOP || next === V6_ROUTING || next === V6_DSTOPTS || next === V6_MOBILITY || next === V6_HIP || next === V6_SHIM6) {
        if (data.length < p + 8) return this.short6(frame);
        const len = (data[p + 1]! + 1) * 8;
        next = data[p]!;
        p += len;
      } else if (next === V6_AH) {
        if (data.length < p + 8) return this.short6(frame);
        const len = (data[p + 1]! + 2) * 4;
        next = data[p]!;
        p += len;
      } else if (next === V6_FRAGMENT) {
        if (data.length < p + 8) return this.short6(frame);
        const f = data.readUInt16BE(p + 2);
        fragment = { off: f & 0xfff8, more: (f & 1) !== 0, id: data.readUInt32BE(p + 4) };
        next = data[p]!;
        p += 8;
        // What follows a real fragment header is the fragmentable part (RFC 8200 §4.5): it is
        // walked after reassembly, not in each fragment.
        if (fragment.more || fragment.off > 0) break;
      } else if (next === V6_ESP || next === V6_NONE) {
        this.stats.other++;
        return undefined;
      } else break;
      if (p > wireEnd) {
        this.violations.add('ipv6.bad_extension', `IPv6 extension headers run past the payload length`, frame);
        return undefined;
      }
    }
    let payload = data.subarray(Math.min(p, data.length), Math.min(wireEnd, data.length));
    let payloadLen = wireEnd - p;
    if (fragment && (fragment.more || fragment.off > 0)) {
      if (payload.length < payloadLen) {
        this.violations.add('ipv6.fragment_truncated', `a fragment was cut by the snap length; its datagram is dropped`, frame);
        return undefined;
      }
      const key = `6:${out.src.toString('hex')}:${out.dst.toString('hex')}:${fragment.id}`;
      const whole = this.fragments.add(key, fragment.off, fragment.more, payload, out.time, frame);
      if (!whole) return undefined;
      // Extension headers at the start of the fragmentable part (Destination Options, AH ...).
      let q = 0;
      while (next === V6_ROUTING || next === V6_DSTOPTS || next === V6_AH || next === V6_MOBILITY || next === V6_HIP || next === V6_SHIM6) {
        if (whole.length < q + 8) return this.short6(frame);
        const len = next === V6_AH ? (whole[q + 1]! + 2) * 4 : (whole[q + 1]! + 1) * 8;
        next = whole[q]!;
        q += len;
      }
      if (next === V6_ESP || next === V6_NONE) { this.stats.other++; return undefined; }
      payload = whole.subarray(Math.min(q, whole.length));
      payloadLen = whole.length - q;
    }
    return this.transport(next, payload, payloadLen, out);
  }

  private short6(frame: number): undefined {
    this.violations.add('ipv6.short', `IPv6 extension header cut short`, frame);
    return undefined;
  }

  private transport(proto: number, seg: Buffer, segLen: number, out: Decoded): Decoded | undefined {
    out.proto = proto;
    if (proto === IPPROTO_TCP) {
      if (seg.length < 20) {
        this.violations.add('tcp.header_short', `TCP header cut short (${seg.length} of at least 20 bytes captured)`, out.frame);
        return undefined;
      }
      const doff = (seg[12]! >> 4) * 4;
      if (doff < 20 || doff > segLen) {
        this.violations.add('tcp.bad_offset', `TCP data offset ${doff} is impossible for a ${segLen}-byte segment`, out.frame);
        return undefined;
      }
      if (seg.length < doff) {
        this.violations.add('tcp.header_short', `TCP options cut short (${seg.length} of ${doff} bytes captured)`, out.frame);
        return undefined;
      }
      this.stats.tcp++;
      out.srcPort = seg.readUInt16BE(0);
      out.dstPort = seg.readUInt16BE(2);
      out.seq = seg.readUInt32BE(4);
      out.ack = seg.readUInt32BE(8);
      out.flags = seg[13]!;
      out.window = seg.readUInt16BE(14);
      out.checksum = seg.readUInt16BE(16);
      out.payload = seg.subarray(doff);
      out.payloadLen = segLen - doff;
      return out;
    }
    if (proto === IPPROTO_UDP) {
      if (seg.length < 8) {
        this.violations.add('udp.header_short', `UDP header cut short`, out.frame);
        return undefined;
      }
      this.stats.udp++;
      out.srcPort = seg.readUInt16BE(0);
      out.dstPort = seg.readUInt16BE(2);
      out.checksum = seg.readUInt16BE(6);
      const ulen = seg.readUInt16BE(4);
      const end = ulen >= 8 ? Math.min(ulen, seg.length) : seg.length;
      out.seq = out.ack = out.flags = out.window = 0;
      out.payload = seg.subarray(8, end);
      out.payloadLen = (ulen >= 8 ? ulen : segLen) - 8;
      return out;
    }
    this.stats.other++;
    return undefined;
  }
}

/** Text form of an address view: dotted quad, or RFC 5952 compressed IPv6. */
export function formatIp(addr: Buffer): string {
  if (addr.length === 4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(addr.readUInt16BE(i));
  // Longest run (>= 2) of zero groups becomes "::" (RFC 5952 §4.2).
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
