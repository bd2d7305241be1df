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
