import type { Peer } from '../flows/index.js';
import { endpoint } from '../common/index.js';

/**
 * Names the services in findings and selectors. A peer's own identity (from an identity source)
 * wins; otherwise a spec's `services:` map, whose entries are "ip" (any port: the service's
 * address, as in a pod) or "ip:port"; otherwise the address itself, "ip:port".
 */
export class ServiceNames {
  private readonly byAddr = new Map<string, string>();
  private readonly byIp = new Map<string, string>();

  constructor(map: Record<string, readonly string[]> = {}) {
    for (const [name, addrs] of Object.entries(map)) {
      // "[v6]:port" is the form `endpoint` writes, and so the form peers are looked up by.
      for (const a of addrs) (isIpPort(a) ? this.byAddr : this.byIp).set(a, name);
    }
  }

  /** The name of the service at this peer: a server's name for dst, the caller's for src. */
  name(p: Peer): string {
    return p.name ?? this.byAddr.get(endpoint(p)) ?? this.byIp.get(p.ip) ?? endpoint(p);
  }

  /** The service that owns an address when only the ip is known (a client's ephemeral port). */
  nameOfIp(ip: string): string | undefined {
    return this.byIp.get(ip) ?? [...this.byAddr].find(([a]) => a.slice(0, a.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1') === ip)?.[1];
  }

  /** Does this peer belong to the named service (by identity, map, "ip" or "ip:port")? */
  matches(p: Peer, service: string): boolean {
    if (p.name === service || p.workload === service) return true;
    if (service === p.ip || service === endpoint(p)) return true;
    return this.byAddr.get(endpoint(p)) === service || this.byIp.get(p.ip) === service;
  }
}

function isIpPort(a: string): boolean {
  // "[v6]:port" or "v4:port"; a bare IPv6 address has colons but no brackets.
  return /^\[.*\]:\d+$/.test(a) || /^[^:]+:\d+$/.test(a);
}
