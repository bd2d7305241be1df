import { isIPv4 } from 'node:net';
import { ipBytes16 } from '../../common/index.js';
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
    (ipBytes16(src.ip) ?? Buffer.alloc(16)).copy(b, 8);
    (ipBytes16(dst.ip) ?? Buffer.alloc(16)).copy(b, 24);
  }
  b.writeUInt16BE(src.port, ipLen);
  b.writeUInt16BE(dst.port, ipLen + 2);
  b[ipLen + 12] = 0x50; // data offset: 5 words
  b[ipLen + 13] = 0x10; // ACK
  return b;
}
