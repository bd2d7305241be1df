import type { Violations } from '../common/index.js';

/** Bounds on IP fragment reassembly: fragments are attacker-shaped input. */
export interface FragmentLimits {
  /** Datagrams being reassembled at once; the oldest is dropped past this. */
  maxDatagrams: number;
  /** Bytes held across all partial datagrams. */
  maxBytes: number;
  /** Capture seconds a partial datagram may wait for its other fragments (RFC 791 suggests 15 s+). */
  timeoutSec: number;
}

export const DEFAULT_FRAGMENT_LIMITS: FragmentLimits = { maxDatagrams: 1024, maxBytes: 16 << 20, timeoutSec: 30 };

/** IPv4 datagrams cannot exceed 65,535 bytes; IPv6 fragmentable parts likewise (RFC 8200 §4.5). */
const MAX_DATAGRAM = 65_535;

interface Partial {
  first: number;
  pieces: { off: number; data: Buffer }[];
  /** Total payload length once the last fragment (MF clear) was seen, else -1. */
  total: number;
  bytes: number;
}

/**
 * Reassembles fragmented IP payloads (the part after the IP header(s)). Overlapping fragments
 * follow "first copy wins", the same rule as TCP reassembly here.
 */
export class Fragments {
  private partial = new Map<string, Partial>();
  private bytes = 0;
  /** Datagrams dropped for limits or timeout. */
  evicted = 0;
  reassembled = 0;

  constructor(private readonly violations: Violations, private readonly limits: FragmentLimits = DEFAULT_FRAGMENT_LIMITS) {}

  /**
   * Adds one fragment. `offset` is in bytes, `more` is the MF flag. Returns the whole payload
   * when this fragment completed it, else undefined. The fragment bytes are copied.
   */
  add(key: string, offset: number, more: boolean, data: Buffer, time: number, frame: number): Buffer | undefined {
    if (offset + data.length > MAX_DATAGRAM) {
      this.violations.add('ip.fragment_oversize', `fragment at offset ${offset} of ${data.length} bytes passes 65535`, frame);
      return undefined;
    }
    let d = this.partial.get(key);
    if (!d) {
      this.expire(time);
      if (this.partial.size >= this.limits.maxDatagrams) this.dropOldest();
      d = { first: time, pieces: [], total: -1, bytes: 0 };
      this.partial.set(key, d);
    }
    if (!more) {
      const total = offset + data.length;
      if (d.total >= 0 && d.total !== total) {
        this.violations.add('ip.fragment_conflict', `two last fragments disagree on the length (${d.total} vs ${total})`, frame);
      } else d.total = total;
    }
    d.pieces.push({ off: offset, data: Buffer.from(data) });
    d.bytes += data.length;
    this.bytes += data.length;
    while (this.bytes > this.limits.maxBytes && this.partial.size > 0) this.dropOldest();
    if (d.total < 0 || !this.partial.has(key)) return undefined;
    // Complete when the pieces cover [0, total) without holes.
    const sorted = d.pieces.slice().sort((a, b) => a.off - b.off);
    let covered = 0;
    for (const p of sorted) {
      if (p.off > covered) return undefined;
      covered = Math.max(covered, p.off + p.data.length);
    }
    if (covered < d.total) return undefined;
    const out = Buffer.alloc(d.total);
    // Write later arrivals first so the first copy of any overlapping byte is what remains.
    for (let i = d.pieces.length - 1; i >= 0; i--) {
      const p = d.pieces[i]!;
      // The last fragment (MF clear) fixes the datagram's length (RFC 791 §3.2); a fragment that
      // starts at or past it lies about its offset and has nothing to give (found by npm run
      // fuzz: capture/fragment/23253772, where copying it threw).
      if (p.off >= d.total) continue;
      p.data.copy(out, p.off, 0, Math.min(p.data.length, d.total - p.off));
    }
    this.partial.delete(key);
    this.bytes -= d.bytes;
    this.reassembled++;
    return out;
  }

  private dropOldest(): void {
    const [key, d] = this.partial.entries().next().value as [string, Partial];
    this.partial.delete(key);
    this.bytes -= d.bytes;
    this.evicted++;
  }

  private expire(now: number): void {
    for (const [key, d] of this.partial) {
      if (now - d.first <= this.limits.timeoutSec) break; // Map keeps insertion (= age) order
      this.partial.delete(key);
      this.bytes -= d.bytes;
      this.evicted++;
    }
  }

  get pending(): number {
    return this.partial.size;
  }
}
