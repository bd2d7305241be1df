import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';

/**
 * A drain barrier: proof that a live capture has read every packet sent before a moment.
 *
 * libpcap hands packets over in the order the kernel queued them on the capture socket, and cap
 * gives no timestamps, so "every packet up to now" cannot be read off a clock. Instead a small
 * UDP datagram carrying a fresh nonce is sent along the captured path; packets queued before it
 * were read by the time it is seen. Its traffic is one datagram to the discard port (RFC 863).
 *
 *   payload: "tapwire-drain " + 16 hex digits of nonce   (30 bytes)
 */
export const MARKER_PORT = 9;
const PREFIX = Buffer.from('tapwire-drain ');
const NONCE_HEX = 16;
export const MARKER_BYTES = PREFIX.length + NONCE_HEX;

/** BPF that lets markers through a user's capture filter: UDP to the discard port starting "tapw". */
export const MARKER_BPF = `(udp dst port ${MARKER_PORT} and udp[8:4] = 0x74617077)`;

export function withMarkers(filter: string | undefined): string | undefined {
  return filter ? `(${filter}) or ${MARKER_BPF}` : undefined;
}

/**
 * Where a marker must go to cross `iface`. Loopback (and `any`, which includes lo) takes
 * 127.0.0.1. A named interface with an IPv4 address takes its subnet's broadcast address: the
 * host's route for that subnet sends it out through the interface, where the capture sees it.
 * Undefined when no address routes through the interface (a bare veth): no proof is possible.
 */
export function markerTarget(iface: string): string | undefined {
  if (iface === 'any' || iface === 'lo') return '127.0.0.1';
  const addrs = networkInterfaces()[iface] ?? [];
  if (addrs.some((a) => a.internal)) return '127.0.0.1';
  const v4 = addrs.find((a) => a.family === 'IPv4');
  if (!v4) return undefined;
  const ip = toInt(v4.address), mask = toInt(v4.netmask);
  // A /31 or /32 has no broadcast address, and its own address would route over lo, not here.
  if (mask >>> 0 >= 0xfffffffe) return undefined;
  return fromInt((ip | ~mask) >>> 0);
}

function toInt(a: string): number {
  return a.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

function fromInt(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** Pending barriers by nonce; `seen()` is called for every captured packet while any is pending. */
export class Barriers {
  private readonly pending = new Map<string, () => void>();

  get waiting(): boolean {
    return this.pending.size > 0;
  }

  /**
   * Is this frame a marker we are waiting for? Only the frame's tail is read: the marker is the
   * whole UDP payload, and no link type this capture sees pads a frame of that size.
   */
  seen(frame: Buffer): boolean {
    const n = frame.length;
    if (n < MARKER_BYTES + 28) return false;
    const at = n - MARKER_BYTES;
    if (frame.compare(PREFIX, 0, PREFIX.length, at, at + PREFIX.length) !== 0) return false;
    const nonce = frame.toString('latin1', at + PREFIX.length, n);
    const done = this.pending.get(nonce);
    if (!done) return false;
    this.pending.delete(nonce);
    done();
    return true;
  }

  /**
   * Sends one marker to each target and resolves true once all were captured, or false after
   * `timeoutMs` (a marker the kernel ring dropped, or a route that did not cross the interface).
   */
  async send(targets: readonly string[], timeoutMs: number): Promise<boolean> {
    const waits = targets.map((t) => this.one(t, timeoutMs));
    return (await Promise.all(waits)).every(Boolean);
  }

  private async one(target: string, timeoutMs: number): Promise<boolean> {
    const nonce = randomBytes(NONCE_HEX / 2).toString('hex');
    const seen = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(nonce);
        resolve(false);
      }, timeoutMs);
      this.pending.set(nonce, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    const sock = createSocket('udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(0, () => {
          if (target !== '127.0.0.1') sock.setBroadcast(true);
          sock.send(Buffer.concat([PREFIX, Buffer.from(nonce, 'latin1')]), MARKER_PORT, target, (e) => (e ? reject(e) : resolve()));
        });
      });
    } catch {
      // The marker could not be sent (no route): the wait times out and the drain is unproven.
    } finally {
      sock.close();
    }
    return seen;
  }
}
