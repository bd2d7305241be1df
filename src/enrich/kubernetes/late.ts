/**
 * A pod that appears after its first packet: its IP carries traffic a moment before the informer
 * hears of it (the CNI assigns the address, the kubelet writes status.podIPs, and the watch event
 * follows). A record whose peer is not known yet is held for a bounded wait and released enriched
 * as soon as the address becomes known, or as it is at the deadline.
 *
 * No address is special-cased (an external address is unknown like a pod not yet seen), so every
 * record with an unknown peer waits: `waitSec` (default 2 s) is the latency such records pay. The
 * wait is bounded by count too (`maxHeld`, default 10 000): past it the oldest held record is
 * released as it is. Every pushed record is released exactly once, through the callback given at
 * construction; order between records is not kept (a record released enriched may pass an older
 * one still waiting).
 *
 * Time is the caller's: `now` is the agent's capture time in epoch seconds (a record's start is
 * in the same clock), passed to push() and tick(), so a test drives it and a replayed capture
 * waits in capture time, not wall time.
 */
import type { FlowRecord } from '../../flows/index.js';
import { fillPeer } from '../identity.js';
import type { IdentitySource } from '../types.js';
import { canonicalIp } from './history.js';

/** An identity source that says when an address becomes known (KubernetesIdentity does). */
export interface KnownSource extends IdentitySource {
  /** Calls `listener(ip)` whenever `ip` gets an identity; returns a function that stops it. */
  onKnown(listener: (ip: string) => void): () => void;
}

export interface LateOptions {
  /** How long a record waits for an unknown peer, in seconds (default 2). */
  waitSec?: number;
  /** Records held at most (default 10 000); past it the oldest is released as it is. */
  maxHeld?: number;
}

export interface LateStats {
  /** Records held now. */
  held: number;
  /** Released at once or later because every peer was known. */
  releasedKnown: number;
  /** Released at the deadline with a peer still unknown. */
  releasedTimeout: number;
  /** Released early, unknown peer and all, because maxHeld was reached. */
  releasedFull: number;
  /** Released by flush() (a snapshot's drain). */
  releasedFlush: number;
}

interface Held {
  r: FlowRecord;
  deadline: number;
  /** Canonical addresses still unknown. */
  waiting: Set<string>;
}

export class LateIdentities {
  readonly waitSec: number;
  readonly maxHeld: number;
  /** Insertion order is deadline order: every record waits the same time from its push. */
  private readonly held = new Set<Held>();
  private readonly byIp = new Map<string, Set<Held>>();
  private readonly counts: Omit<LateStats, 'held'> = { releasedKnown: 0, releasedTimeout: 0, releasedFull: 0, releasedFlush: 0 };
  private readonly unsubscribe: () => void;

  constructor(private readonly source: KnownSource, private readonly release: (r: FlowRecord) => void, opts: LateOptions = {}) {
    this.waitSec = opts.waitSec ?? 2;
    this.maxHeld = Math.max(0, opts.maxHeld ?? 10_000);
    this.unsubscribe = source.onKnown((ip) => this.known(ip));
  }

  /**
   * Takes a record: released at once, enriched, when both peers are known at its start;
   * otherwise held until they are, or until `now + waitSec`. Also releases what is due at `now`.
   */
  push(r: FlowRecord, now: number): void {
    this.tick(now);
    const waiting = new Set<string>();
    for (const peer of [r.src, r.dst]) {
      if (this.identityOf(peer.ip, r.start)) continue;
      waiting.add(canonicalIp(peer.ip) ?? peer.ip);
    }
    if (waiting.size === 0 || this.maxHeld === 0) {
      this.out(r, waiting.size === 0 ? 'releasedKnown' : 'releasedFull');
      return;
    }
    const h: Held = { r, deadline: now + this.waitSec, waiting };
    this.held.add(h);
    for (const ip of waiting) {
      let set = this.byIp.get(ip);
      if (!set) this.byIp.set(ip, (set = new Set()));
      set.add(h);
    }
    while (this.held.size > this.maxHeld) {
      const oldest = this.held.values().next().value!;
      this.drop(oldest);
      this.out(oldest.r, 'releasedFull');
    }
  }

  /** Releases, as they are, the records whose wait ended at or before `now`. */
  tick(now: number): void {
    for (const h of this.held) {
      if (h.deadline > now) break;
      this.drop(h);
      this.out(h.r, 'releasedTimeout');
    }
  }

  /** Releases everything held now, with what is known of it (a snapshot's drain). */
  flush(): void {
    for (const h of [...this.held]) {
      this.drop(h);
      this.out(h.r, 'releasedFlush');
    }
  }

  /** Stops listening to the source and releases what is held. */
  close(): void {
    this.unsubscribe();
    this.flush();
  }

  stats(): LateStats {
    return { held: this.held.size, ...this.counts };
  }

  /** When the wait of the oldest held record ends (capture time), if any is held. */
  nextDeadline(): number | undefined {
    return this.held.values().next().value?.deadline;
  }

  private known(ip: string): void {
    const key = canonicalIp(ip) ?? ip;
    const set = this.byIp.get(key);
    if (!set) return;
    for (const h of [...set]) {
      if (!this.identityOf(key, h.r.start)) continue;
      h.waiting.delete(key);
      set.delete(h);
      if (h.waiting.size === 0) {
        this.drop(h);
        this.out(h.r, 'releasedKnown');
      }
    }
    if (set.size === 0) this.byIp.delete(key);
  }

  /**
   * What `ip` is for a record that started at `at`: the version covering `at`, else the current
   * one, since an address that became known while its record waited was that pod's already
   * (the informer hears of a pod after its first packets).
   */
  private identityOf(ip: string, at: number) {
    return this.source.lookup(ip, at) ?? this.source.lookup(ip);
  }

  private drop(h: Held): void {
    this.held.delete(h);
    for (const ip of h.waiting) {
      const set = this.byIp.get(ip);
      set?.delete(h);
      if (set?.size === 0) this.byIp.delete(ip);
    }
  }

  private out(r: FlowRecord, why: Exclude<keyof LateStats, 'held'>): void {
    this.counts[why]++;
    fillPeer(r.src, this.identityOf(r.src.ip, r.start));
    fillPeer(r.dst, this.identityOf(r.dst.ip, r.start));
    this.release(r);
  }
}
