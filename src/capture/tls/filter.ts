import { isIPv4 } from 'node:net';
import { loadAddon } from './addon.js';
import type { TcpTuple } from './conn.js';

/** A connection's two ends, as the plaintext streams know them. */
type Ends = Pick<TcpTuple, 'local' | 'remote'>;

/**
 * The agent's capture filter (--filter, tcpdump syntax) for TLS plaintext, which has no packets of
 * its own: libpcap (through the addon) judges one synthetic IP+TCP header per direction of the
 * connection, and the connection is kept when either matches, as a capture keeps a connection
 * whose packets it sees. Throws "filter: …" (libpcap's words) for a filter that does not compile,
 * and names the addon when it is not built.
 */
export function plaintextFilter(expr: string): (ends: Ends) => boolean {
  const addon = loadAddon();
  if (!addon) throw new Error('the TLS plaintext filter needs the eBPF addon (npm run build:native)');
  addon.filterMatches(expr, []); // compiles: a bad filter is refused before any connection
  return (e) => addon.filterMatches(expr, [header(e.local, e.remote), header(e.remote, e.local)]).some(Boolean);
}

/** An IPv4 or IPv6 header and a bare TCP header (ACK) from `src` to `dst`. */
function header(src: { ip: string; port: number }, dst: { ip: string; port: number }): Buffer {
  const v4 = isIPv4(src.ip) && isIPv4(dst.ip);
  const ipLen = v4 ? 20 : 40;
  const b = Buffer.alloc(ipLen + 20);
  if (v4) {
    b[0] = 0x45;
    b.writeUInt16BE(b.length, 2);
    b[8] = 64;
    b[9] = 6; // TCP
    src.ip.split('.').forEach((o, i) => { b[12 + i] = Number(o); });
    dst.ip.split('.').forEach((o, i) => { b[16 + i] = Number(o); });
  } else {
    b[0] = 0x60;
    b.writeUInt16BE(20, 4);
    b[6] = 6; // next header: TCP
    b[7] = 64;
    ipv6Bytes(src.ip).copy(b, 8);
    ipv6Bytes(dst.ip).copy(b, 24);
  }
  b.writeUInt16BE(src.port, ipLen);
  b.writeUInt16BE(dst.port, ipLen + 2);
  b[ipLen + 12] = 0x50; // data offset: 5 words
  b[ipLen + 13] = 0x10; // ACK
  return b;
}

/** 16 bytes of an IPv6 address (IPv4-mapped included) in any RFC 4291 spelling. */
function ipv6Bytes(ip: string): Buffer {
  const out = Buffer.alloc(16);
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number);
    text = text.slice(0, -v4[1]!.length) + `${((a! << 8) | b!).toString(16)}:${((c! << 8) | d!).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return out;
}
