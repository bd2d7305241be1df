/**
 * The in-kernel filter of native/tc.bpf.c, from plain options: ports and IPv4/IPv6 prefixes, each
 * matched at either end of a frame. Empty lists keep every frame. These are map entries, checked
 * here so that a bad option names itself instead of failing inside the kernel.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { ipBytes16 } from '../../common/index.js';

export interface TcFilter {
  /** TCP/UDP/SCTP ports; a frame is kept when its source or destination port is one of them. */
  ports?: number[];
  /** "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). */
  nets?: string[];
}

/** At most this many of each (the maps' max_entries in tc.bpf.c). */
export const TC_FILTER_MAX = 64;

export const TcFilterFlag = { ports: 1, nets: 2 } as const;

export interface CompiledTcFilter {
  flags: number;
  /** `ports` map keys: u16 host order (little-endian here). */
  ports: Buffer[];
  /** `nets4` keys: u32 prefixlen + 4 address bytes; `nets6`: u32 prefixlen + 16. */
  nets4: Buffer[];
  nets6: Buffer[];
}


/** The map entries for `f`; throws naming the option and value that is wrong. */
export function compileTcFilter(f: TcFilter = {}): CompiledTcFilter {
  const ports = f.ports ?? [];
  const nets = f.nets ?? [];
  if (ports.length > TC_FILTER_MAX) throw new Error(`tc filter: ${ports.length} ports, at most ${TC_FILTER_MAX}`);
  if (nets.length > TC_FILTER_MAX) throw new Error(`tc filter: ${nets.length} nets, at most ${TC_FILTER_MAX}`);
  const out: CompiledTcFilter = { flags: 0, ports: [], nets4: [], nets6: [] };
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`tc filter: port ${p} is not an integer in 1..65535`);
    const k = Buffer.alloc(2);
    k.writeUInt16LE(p);
    out.ports.push(k);
  }
  for (const n of nets) {
    const [addr = '', bits, extra] = n.split('/');
    const v4 = isIPv4(addr), v6 = isIPv6(addr);
    const max = v4 ? 32 : 128;
    const len = bits === undefined ? max : Number(bits);
    if ((!v4 && !v6) || extra !== undefined || !/^\d*$/.test(bits ?? '') || !Number.isInteger(len) || len < 0 || len > max) {
      throw new Error(`tc filter: net "${n}" is not an IPv4 or IPv6 address with an optional /prefix length`);
    }
    const key = Buffer.alloc(4 + (v4 ? 4 : 16));
    key.writeUInt32LE(len);
    if (v4) Buffer.from(addr.split('.').map(Number)).copy(key, 4);
    else ipBytes16(addr)!.copy(key, 4);
    (v4 ? out.nets4 : out.nets6).push(key);
  }
  if (out.ports.length) out.flags |= TcFilterFlag.ports;
  if (out.nets4.length || out.nets6.length) out.flags |= TcFilterFlag.nets;
  return out;
}
