import { isIP } from 'node:net';

/**
 * An address as record peers carry it: dotted IPv4, or IPv6 the RFC 5952 way (lower case, the
 * longest zero run as ::), which is how decode/formatIp writes them. Undefined when not an address.
 */
export function canonicalIp(ip: string): string | undefined {
  const v = isIP(ip);
  if (v === 4) return ip;
  if (v !== 6) return undefined;
  // WHATWG URL serialises IPv6 hosts the RFC 5952 way.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** The IPv4 address inside a canonical IPv4-mapped IPv6 one (::ffff:10.0.0.1, RFC 4291 §2.5.5.2). */
export function unmappedIp(canon: string): string | undefined {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canon);
  if (!m) return undefined;
  const hi = parseInt(m[1]!, 16), lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
