/**
 * One way to write an endpoint, for the CLI, the API, MCP and finding keys alike: "10.0.0.1:80",
 * and IPv6 in brackets, "[::1]:51164" (RFC 3986 §3.2.2), so the port cannot be read as part of
 * the address.
 */
export function hostPort(ip: string, port: number | string): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** `hostPort` of a peer or a connection end. */
export function endpoint(p: { ip: string; port: number }): string {
  return hostPort(p.ip, p.port);
}

/**
 * One key for a TCP connection whichever end is named first: a packet capture names it client →
 * server, a probed process names it local → remote, and both ends of a connection may be probed.
 */
export function connectionKey(a: { ip: string; port: number }, b: { ip: string; port: number }): string {
  const x = endpoint(a), y = endpoint(b);
  return x < y ? `${x} ${y}` : `${y} ${x}`;
}

/**
 * The bytes of an address in text form: 4 for IPv4 and for IPv4-mapped IPv6 (the peer is IPv4 on
 * the wire), 16 for IPv6 (RFC 4291 §2.2, a zone index dropped); undefined when it is neither.
 */
export function ipBytes(text: string): Buffer | undefined {
  const ip = text.replace(/%.*$/, '');
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    return parts.every((n) => n <= 255) ? Buffer.from(parts) : undefined;
  }
  if (!ip.includes(':')) return undefined;
  // A dotted IPv4 tail (::ffff:1.2.3.4) is the last two 16-bit words.
  let head = ip;
  const dotted = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (dotted) {
    const four = ipBytes(dotted[1]!);
    if (!four) return undefined;
    head = `${ip.slice(0, dotted.index)}${four.readUInt16BE(0).toString(16)}:${four.readUInt16BE(2).toString(16)}`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => (/^[0-9a-f]{1,4}$/i.test(w) ? parseInt(w, 16) : NaN)));
  const left = words(halves[0]!), right = halves.length === 2 ? words(halves[1]!) : [];
  const fill = 8 - left.length - right.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const all = [...left, ...(halves.length === 2 ? new Array<number>(fill).fill(0) : []), ...right];
  if (all.length !== 8 || all.some((w) => Number.isNaN(w))) return undefined;
  const b = Buffer.alloc(16);
  all.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff) return b.subarray(12);
  return b;
}

/** 16 bytes of an address in text form: IPv4 as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2); undefined when it is neither. */
export function ipBytes16(text: string): Buffer | undefined {
  const a = ipBytes(text);
  if (!a || a.length === 16) return a;
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0xffff, 10);
  a.copy(b, 12);
  return b;
}
