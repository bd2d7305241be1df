/**
 * Link layers: find where the network-layer packet starts and what it is.
 * Returns the EtherType-style protocol (0x0800 IPv4, 0x86dd IPv6) and the offset, or undefined
 * for frames that carry something else (ARP, STP, ...) or are too short.
 */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW_BSD12: 12,
  RAW_OPENBSD14: 14,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;

export interface LinkResult {
  /** 0x0800 or 0x86dd; anything else means "not IP". */
  etherType: number;
  offset: number;
}

/** Outcome codes for frames that do not reach IP. */
export const LINK_SHORT = -1;
export const LINK_NOT_IP = -2;
export const LINK_UNSUPPORTED = -3;

function ipByVersion(data: Buffer, off: number): number {
  if (off >= data.length) return LINK_SHORT;
  const v = data[off]! >> 4;
  return v === 4 ? ETHERTYPE_IPV4 : v === 6 ? ETHERTYPE_IPV6 : LINK_NOT_IP;
}

/** Decodes the link header; returns the etherType (or a negative LINK_* code) and sets `out.offset`. */
export function decodeLink(linkType: number, data: Buffer, out: LinkResult): number {
  let off: number;
  let type: number;
  switch (linkType) {
    case LINKTYPE.ETHERNET: {
      if (data.length < 14) return LINK_SHORT;
      type = data.readUInt16BE(12);
      off = 14;
      // 802.1Q / 802.1ad tags, possibly stacked (QinQ).
      while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD) {
        if (data.length < off + 4) return LINK_SHORT;
        type = data.readUInt16BE(off + 2);
        off += 4;
      }
      if (type <= 1500) {
        // IEEE 802.3 length field: 802.2 LLC follows; IP rides in SNAP (AA AA 03 + OUI + type).
        if (data.length < off + 8) return LINK_SHORT;
        if (data[off] !== 0xaa || data[off + 1] !== 0xaa || data[off + 2] !== 0x03) return LINK_NOT_IP;
        type = data.readUInt16BE(off + 6);
        off += 8;
      }
      break;
    }
    case LINKTYPE.LINUX_SLL: // 16-byte cooked header, protocol in the last two bytes
      if (data.length < 16) return LINK_SHORT;
      type = data.readUInt16BE(14);
      off = 16;
      break;
    case LINKTYPE.LINUX_SLL2: // 20-byte cooked header v2, protocol first
      if (data.length < 20) return LINK_SHORT;
      type = data.readUInt16BE(0);
      off = 20;
      break;
    case LINKTYPE.RAW:
    case LINKTYPE.RAW_BSD12:
    case LINKTYPE.RAW_OPENBSD14:
      off = 0;
      type = ipByVersion(data, 0);
      break;
    case LINKTYPE.IPV4:
      off = 0;
      type = ETHERTYPE_IPV4;
      break;
    case LINKTYPE.IPV6:
      off = 0;
      type = ETHERTYPE_IPV6;
      break;
    case LINKTYPE.NULL:
    case LINKTYPE.LOOP: {
      // 4-byte address family: host order of the capturing machine for NULL, network order for
      // LOOP. AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 depending on the OS.
      if (data.length < 4) return LINK_SHORT;
      const le = data.readUInt32LE(0);
      const af = linkType === LINKTYPE.LOOP ? data.readUInt32BE(0) : le < 256 ? le : data.readUInt32BE(0);
      off = 4;
      type = af === 2 ? ETHERTYPE_IPV4 : af === 10 || af === 24 || af === 28 || af === 30 ? ETHERTYPE_IPV6 : ipByVersion(data, 4);
      break;
    }
    default:
      return LINK_UNSUPPORTED;
  }
  if (type < 0) return type;
  if (type !== ETHERTYPE_IPV4 && type !== ETHERTYPE_IPV6) return LINK_NOT_IP;
  out.offset = off;
  out.etherType = type;
  return type;
}
