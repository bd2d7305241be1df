/**
 * (pid, fd) → the TCP connection's 4-tuple, from /proc/<pid>/fd (the socket's inode) and
 * /proc/<pid>/net/tcp{,6} (the process's own network namespace). It runs when a chunk reaches JS,
 * so a socket already closed by then cannot be named: that is counted (`closed`), not guessed.
 */
import { readFileSync, readlinkSync } from 'node:fs';

export interface TcpTuple {
  /** The probed process's end. */
  local: { ip: string; port: number };
  remote: { ip: string; port: number };
}

export interface ConnCounters {
  resolved: number;
  /** Chunks whose fd is unknown (-1). */
  noFd: number;
  /** The fd was gone, or no longer a TCP socket, when the chunk was resolved. */
  closed: number;
  /** Lookups answered from the cache. */
  cached: number;
}

function hexPort(s: string): number {
  return parseInt(s, 16);
}

/** /proc/net/tcp's address: IPv4 as one host-order u32, IPv6 as four. */
function hexIp(s: string): string {
  if (s.length === 8) {
    const v = parseInt(s, 16);
    return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24].join('.');
  }
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const v = parseInt(s.slice(w * 8, w * 8 + 8), 16);
    bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  }
  // An IPv4-mapped address reads as IPv4 (a dual-stack listener).
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // WHATWG URL parsing writes an IPv6 address in its canonical (RFC 5952) short form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** inode → tuple for one /proc/<pid>/net/tcp{,6} pair. */
export function parseProcNetTcp(text: string, into: Map<number, TcpTuple>): void {
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [lip, lport] = f[1]!.split(':');
    const [rip, rport] = f[2]!.split(':');
    const inode = Number(f[9]);
    if (!inode || !lip || !rip) continue;
    into.set(inode, { local: { ip: hexIp(lip), port: hexPort(lport!) }, remote: { ip: hexIp(rip), port: hexPort(rport!) } });
  }
}

export class ConnResolver {
  private readonly cache = new Map<string, TcpTuple | null>();
  readonly counters: ConnCounters = { resolved: 0, noFd: 0, closed: 0, cached: 0 };

  constructor(private readonly procRoot = '/proc', private readonly maxEntries = 65536) {}

  /** The connection of one SSL* on one fd of one process (cached by all three). */
  resolve(pid: number, fd: number, ssl: string): TcpTuple | undefined {
    if (fd < 0) {
      this.counters.noFd++;
      return undefined;
    }
    const key = `${pid}:${fd}:${ssl}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.counters.cached++;
      if (hit) this.counters.resolved++;
      else this.counters.closed++;
      return hit ?? undefined;
    }
    const tuple = this.lookup(pid, fd);
    if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    // A miss is cached too only when the fd is a socket that is gone from the tables.
    if (tuple) this.cache.set(key, tuple);
    if (tuple) this.counters.resolved++;
    else this.counters.closed++;
    return tuple;
  }

  /** Forget a process's entries (it exited). */
  forgetPid(pid: number): void {
    for (const k of this.cache.keys()) if (k.startsWith(`${pid}:`)) this.cache.delete(k);
  }

  private lookup(pid: number, fd: number): TcpTuple | undefined {
    let link: string;
    try {
      link = readlinkSync(`${this.procRoot}/${pid}/fd/${fd}`);
    } catch {
      return undefined;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (!m) return undefined;
    const inode = Number(m[1]);
    const table = new Map<number, TcpTuple>();
    for (const name of ['tcp', 'tcp6']) {
      try {
        parseProcNetTcp(readFileSync(`${this.procRoot}/${pid}/net/${name}`, 'utf8'), table);
      } catch {
        // no IPv6, or the process is gone
      }
      const t = table.get(inode);
      if (t) return t;
    }
    return undefined;
  }
}
