/**
 * A time-versioned IP history: what each address was, and when. Pod IPs are reused (a new pod may
 * get a dead pod's IP within seconds), so a flow is named by the identity its addresses had at the
 * flow's start, not by what they are when the record is looked at.
 *
 * Per IP, versions `{ from, to?, identity }` in epoch seconds, in the order they were opened; the
 * open one (no `to`) is the current identity. Bounded two ways: versions that ended more than
 * `keepSec` ago are pruned (flows older than that are enriched already), and an IP keeps at most
 * `maxVersions` (the oldest go first), so a flapping object cannot grow it without end.
 *
 * Addresses are keyed in the form record peers carry (dotted IPv4, RFC 5952 IPv6); another
 * spelling of an IPv6 address and IPv4-mapped IPv6 (::ffff:10.0.0.1, RFC 4291 §2.5.5.2) resolve
 * to the same entry. No range is special: loopback, link-local and private addresses are keys
 * like any other.
 */
import { canonicalIp as canonicalForm, unmappedIp } from '../ip.js';
import type { Identity } from '../types.js';

export interface Version {
  /** Epoch seconds the identity started. */
  from: number;
  /** Epoch seconds it ended (exclusive); absent while it is current. */
  to?: number;
  identity: Identity;
}

export interface IpHistoryOptions {
  /** How long an ended version is kept, in seconds (default one hour). */
  keepSec?: number;
  /** Versions kept per IP (default 16). */
  maxVersions?: number;
}

/** An address in the form record peers carry; undefined when `ip` is not an address. */
export function canonicalIp(ip: string): string | undefined {
  const canon = canonicalForm(ip);
  return canon === undefined ? undefined : unmappedIp(canon) ?? canon;
}

/** Whether two identities say the same (labels compared by content). */
export function sameIdentity(a: Identity | undefined, b: Identity | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  if (a.name !== b.name || a.namespace !== b.namespace || a.workload !== b.workload || a.node !== b.node || a.service !== b.service) return false;
  const la = a.labels ?? {}, lb = b.labels ?? {};
  const ka = Object.keys(la);
  if (ka.length !== Object.keys(lb).length) return false;
  return ka.every((k) => la[k] === lb[k]);
}

export class IpHistory {
  readonly keepSec: number;
  readonly maxVersions: number;
  private readonly byIp = new Map<string, Version[]>();
  private versionCount = 0;
  private lastSweep = -Infinity;

  constructor(opts: IpHistoryOptions = {}) {
    this.keepSec = opts.keepSec ?? 3600;
    this.maxVersions = Math.max(1, opts.maxVersions ?? 16);
  }

  /** Addresses with at least one version. */
  get ips(): number {
    return this.byIp.size;
  }

  /** Versions kept, all addresses together. */
  get versions(): number {
    return this.versionCount;
  }

  /**
   * From `at` on, `ip` is `identity` (undefined: nothing). The open version, if any, ends at `at`;
   * an identity equal to the current one changes nothing. `since` is when the new identity may
   * have started already, when the IP had no current version: a pod's creation time, so that
   * packets sent between its start and the moment the informer heard of it still resolve. It is
   * never earlier than the IP's previous version's end, nor later than `at`.
   * Returns whether the history changed.
   */
  set(ip: string, identity: Identity | undefined, at: number, since?: number): boolean {
    const key = canonicalIp(ip);
    if (key === undefined) return false;
    let list = this.byIp.get(key);
    const last = list?.[list.length - 1];
    const open = last && last.to === undefined ? last : undefined;
    if (sameIdentity(open?.identity, identity)) return false;
    let from = at;
    if (open) {
      // Time may step back (wall clock adjusted): a version never ends before it started.
      open.to = Math.max(at, open.from);
    } else if (since !== undefined && since < at) {
      from = Math.max(since, last?.to ?? -Infinity);
    }
    if (identity) {
      if (!list) this.byIp.set(key, (list = []));
      list.push({ from, identity });
      this.versionCount++;
      if (list.length > this.maxVersions) {
        list.shift();
        this.versionCount--;
      }
    }
    this.prune(at, key);
    if (at - this.lastSweep >= Math.min(60, this.keepSec)) this.prune(at);
    return true;
  }

  /**
   * Replaces the current version's identity without opening a new one: a correction (a
   * workload learnt late), not a change of the address. Returns whether there was one.
   */
  amend(ip: string, identity: Identity): boolean {
    const key = canonicalIp(ip);
    const list = key === undefined ? undefined : this.byIp.get(key);
    const last = list?.[list.length - 1];
    if (!last || last.to !== undefined) return false;
    last.identity = identity;
    return true;
  }

  /**
   * The identity `ip` had at `at` (epoch seconds): the latest version with from ≤ at < to.
   * Without `at`, the current one.
   */
  lookup(ip: string, at?: number): Identity | undefined {
    return this.version(ip, at)?.identity;
  }

  /** The version `lookup` answers from. */
  version(ip: string, at?: number): Version | undefined {
    let list = this.byIp.get(ip);
    if (!list) {
      const key = canonicalIp(ip);
      if (key === undefined || key === ip) return undefined;
      list = this.byIp.get(key);
      if (!list) return undefined;
    }
    if (at === undefined) {
      const last = list[list.length - 1]!;
      return last.to === undefined ? last : undefined;
    }
    for (let i = list.length - 1; i >= 0; i--) {
      const v = list[i]!;
      if (v.from <= at && (v.to === undefined || at < v.to)) return v;
    }
    return undefined;
  }

  /** All versions of `ip`, oldest first (a copy). */
  versionsOf(ip: string): Version[] {
    const key = canonicalIp(ip);
    return key === undefined ? [] : (this.byIp.get(key) ?? []).map((v) => ({ ...v }));
  }

  /** Drops versions that ended more than keepSec before `now` (one IP, or all). */
  prune(now: number, ip?: string): void {
    const cutoff = now - this.keepSec;
    const one = (key: string, list: Version[]) => {
      let n = 0;
      while (n < list.length && list[n]!.to !== undefined && list[n]!.to! < cutoff) n++;
      if (n === 0) return;
      list.splice(0, n);
      this.versionCount -= n;
      if (list.length === 0) this.byIp.delete(key);
    };
    if (ip !== undefined) {
      const list = this.byIp.get(ip);
      if (list) one(ip, list);
      return;
    }
    this.lastSweep = now;
    for (const [key, list] of this.byIp) one(key, list);
  }
}
