/**
 * Live capture as a packet source: libpcap through `cap`, feeding the same PacketSink as the file
 * readers. Several interfaces merge into one time-ordered stream, and the same L3 packet seen on
 * several of them is delivered once.
 *
 * What `cap` 0.2.1 gives (and what follows from it):
 * - one JS callback per packet, with the bytes copied into one shared buffer. There is no kernel
 *   timestamp: a packet's time is read from a monotonic clock (process.hrtime) anchored to the
 *   wall clock at start, first thing in its callback. All interfaces run their callbacks on the one
 *   JS thread, so callback order is time order and times never go backwards. Across interfaces
 *   that order is the order the event loop read them in: when the loop falls behind, two packets
 *   pending on two interfaces are stamped in poll order, not wire order (one handle, `any`, has
 *   no such ambiguity);
 * - no wire length: it is taken from the IP header, so a frame the 65535-byte snap length cut
 *   (64 KiB loopback frames, GSO) keeps its true length and counts as `truncated`;
 * - no pcap_stats drop counter: interface counters from /sys/class/net stand beside the packets
 *   seen instead (see `counters()`).
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import type { Packet, PacketSink } from './types.js';
import { DuplicateWindow, findL3, l3Key, wireLength, type L3 } from './live/dedup.js';
import { interfaceExists, listInterfaces, netDelta, readAllNetCounters, readNetCounters, type NetCounters } from './live/netstats.js';

export interface LiveOptions {
  /** Interface names, or ['any'] for every interface of the network namespace. */
  interfaces: string[];
  /** BPF filter (pcap-filter(7)), applied in the kernel on every interface. */
  filter?: string;
  /** Kernel ring per interface, bytes: what absorbs bursts while JS is busy. Default 256 MiB (see DEFAULT_LIVE_BUFFER_BYTES). */
  bufferBytes?: number;
  /** A copy of an L3 packet seen within this many seconds of the first is a duplicate. Default 0.05. */
  dedupWindowSec?: number;
}

export interface LiveCounters {
  /**
   * Per interface, in options order: packets and captured bytes seen (duplicates included), and the
   * kernel's counters for it since start (until stop). For `any` the kernel counters are summed over
   * every interface of the namespace (one that appeared later counts from zero, one that went away
   * drops out). They are undefined when the interface is gone.
   *
   * What to compare: on an interface without a filter, `seen` equals rx + tx packets (a bridge, in
   * the promiscuous mode libpcap sets, passes bridged frames up as rx); on `any`, each packet is
   * seen once per interface it crossed, so `seen` equals rx + tx summed, except that loopback
   * packets are seen once, not twice. Fewer seen than that is packets the capture lost.
   */
  interfaces: { name: string; linkType: number; seen: number; bytes: number; rxPackets?: number; txPackets?: number; rxDropped?: number }[];
  /** Packets handed to the sink. */
  delivered: number;
  /** Copies of an L3 packet already delivered (another interface, or `any` seeing it again). */
  duplicates: number;
  /** Delivered packets the snap length (65535 bytes) cut short. */
  truncated: number;
}

export type CaptureOpenReason = 'no-such-device' | 'permission-denied' | 'bad-filter' | 'unavailable' | 'bad-option' | 'failed';

/** A capture that could not start; the message names the interface and why. */
export class CaptureOpenError extends Error {
  constructor(readonly iface: string, readonly reason: CaptureOpenReason, message: string) {
    // A missing binding is not the interface's fault: its message stands alone.
    super(reason === 'unavailable' ? message : `${iface}: ${message}`);
    this.name = 'CaptureOpenError';
  }
}

/** What `cap` exposes (it ships no types). */
interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  close(): boolean;
  on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): void;
  removeAllListeners(event: 'packet'): void;
}
interface CapModule {
  Cap: new () => CapHandle;
}

let capModule: CapModule | undefined;
let capLoadError: string | undefined;

function loadCap(): CapModule | undefined {
  if (!capModule && capLoadError === undefined) {
    try {
      capModule = createRequire(import.meta.url)('cap') as CapModule;
    } catch (e) {
      capLoadError = (e as Error).message.split('\n')[0]!;
    }
  }
  return capModule;
}

/** What to do when the optional `cap` binding is missing: it is built from source against libpcap. */
export const CAP_INSTALL_HINT = "apt-get install libpcap-dev g++ make, then npm rebuild cap";

/**
 * Why live capture cannot work in this process ('' when it can be tried). `cap` is an optional
 * dependency: `npm ci` skips it when libpcap's headers or a C++ toolchain are missing, so that
 * offline use (analyze, verify, diff, mcp on files) needs nothing native.
 */
export function liveCaptureUnavailable(): string {
  if (loadCap()) return '';
  const missing = /Cannot find module 'cap'/.test(capLoadError ?? '') ? 'it is not installed' : `it does not load: ${capLoadError}`;
  return `live capture needs the optional 'cap' module (${missing}): ${CAP_INSTALL_HINT}`;
}

/**
 * Every `cap` handle ever created stays referenced for the life of the process: cap 0.2.1 must not
 * be garbage-collected. Its destructor emits an async-hooks destroy event from inside the GC
 * (a segfault, seen here under load), and for a handle whose open() threw it also stops a libuv
 * poll handle that was never initialised (an abort). A closed handle costs a few hundred bytes;
 * one whose open() failed after activation (a bad filter) keeps its pcap socket, so a filter is
 * first tried on a probe handle with a tiny buffer (PROBE_BYTES).
 */
const keptHandles: CapHandle[] = [];
const PROBE_BYTES = 64 * 1024;

function newHandle(mod: CapModule): CapHandle {
  const cap = new mod.Cap();
  keptHandles.push(cap);
  return cap;
}

/** cap's link type names → LINKTYPE_* (cap reports others as "Unknown linktype <DLT>"). */
const CAP_LINKTYPES: Record<string, number> = { NULL: 0, ETHERNET: 1, RAW: 101, LINKTYPE_LINUX_SLL: 113, IEEE802_11_RADIO: 127 };

function linkTypeOf(name: string): number {
  const known = CAP_LINKTYPES[name];
  if (known !== undefined) return known;
  const m = /^Unknown linktype (\d+)$/.exec(name);
  return m ? Number(m[1]) : -1;
}

/**
 * cap asks for immediate mode, in which libpcap uses TPACKET_V2: a ring of fixed-size slots, each
 * sized for the 65535-byte snap length and rounded up to a 128 KiB block (measured: a 1 MiB ring
 * holds 8 packets). A ring therefore holds bufferBytes / 128 KiB packets however small they are:
 * 256 MiB is 2048 packets, about 200 ms of 10 k packets/s while JS is busy or not scheduled.
 * On lo at 5 k requests/s feeding a Pipeline in the same thread (bench/live-capture.mjs, 2 cores
 * shared with wrk and the server), 32 and 128 MiB lost packets; 256 MiB lost none in 60 s.
 * The kernel allocates the ring when the capture opens: about 1.2 s for 256 MiB, during which
 * start() blocks.
 */
export const DEFAULT_LIVE_BUFFER_BYTES = 256 << 20;
const DEFAULT_DEDUP_WINDOW_SEC = 0.05;
/** Linux interface names are at most IFNAMSIZ − 1 bytes, without '/' or white space. */
const IFNAME = /^[^/\s]{1,15}$/;

interface Tap {
  name: string;
  index: number;
  linkType: number;
  cap: CapHandle;
  buffer: Buffer;
  seen: number;
  bytes: number;
  /** Kernel counters at start, and at stop once stopped. */
  before: Map<string, NetCounters>;
  after?: Map<string, NetCounters>;
}

/**
 * Captures live traffic on one or more interfaces and hands each packet to `sink`, with `time`
 * from the monotonic clock, `frame` a running number over all interfaces and `iface` the
 * interface's index in `opts.interfaces`. Packets are copies the sink may keep.
 *
 * A live source has gaps in traffic: whoever runs the pipeline should call `Pipeline.tick(now())`
 * a few times a second so nothing waits in a buffer for the next packet. The sink runs inside
 * libpcap's callback: what it throws is an uncaught exception, and while it works the ring fills.
 */
export class LiveCapture {
  private readonly taps: Tap[] = [];
  private readonly dedup: DuplicateWindow;
  private readonly l3: L3 = { offset: 0, version: 0 };
  private hr0 = process.hrtime.bigint();
  private wall0 = (performance.timeOrigin + performance.now()) / 1000;
  private last = 0;
  private delivered = 0;
  private duplicates = 0;
  private truncated = 0;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(private readonly opts: LiveOptions, private readonly sink: PacketSink) {
    this.dedup = new DuplicateWindow(opts.dedupWindowSec ?? DEFAULT_DEDUP_WINDOW_SEC);
  }

  /** The capture clock: epoch seconds, monotonic, the same clock packets are stamped with. */
  now(): number {
    return this.wall0 + Number(process.hrtime.bigint() - this.hr0) / 1e9;
  }

  /** Opens every interface; throws CaptureOpenError naming the first that fails (none stays open). */
  start(): void {
    if (this.state !== 'new') throw new Error(`LiveCapture is ${this.state}: start() runs once`);
    const names = this.opts.interfaces;
    this.checkOptions(names);
    const cap = loadCap();
    if (!cap) throw new CaptureOpenError(names.join(','), 'unavailable', liveCaptureUnavailable());
    this.hr0 = process.hrtime.bigint();
    this.wall0 = (performance.timeOrigin + performance.now()) / 1000;
    try {
      names.forEach((name, index) => this.open(cap, name, index));
    } catch (e) {
      for (const t of this.taps) {
        t.cap.close();
        t.cap.removeAllListeners('packet');
      }
      this.taps.length = 0;
      throw e;
    }
    this.state = 'running';
  }

  /** Closes every interface. Counters stay readable, frozen at this moment. */
  stop(): void {
    if (this.state !== 'running') return;
    this.state = 'stopped';
    for (const t of this.taps) {
      t.after = this.kernelCounters(t.name);
      t.cap.close();
      // The handle outlives this capture (keptHandles): it must not keep the sink alive.
      t.cap.removeAllListeners('packet');
    }
  }

  counters(): LiveCounters {
    return {
      interfaces: this.taps.map((t) => {
        const after = t.after ?? this.kernelCounters(t.name);
        const d = after.size > 0 ? netDelta(t.before, after) : undefined;
        return { name: t.name, linkType: t.linkType, seen: t.seen, bytes: t.bytes, rxPackets: d?.rxPackets, txPackets: d?.txPackets, rxDropped: d?.rxDropped };
      }),
      delivered: this.delivered,
      duplicates: this.duplicates,
      truncated: this.truncated,
    };
  }

  private checkOptions(names: string[]): void {
    if (names.length === 0) throw new CaptureOpenError('(none)', 'bad-option', 'no interface given (a name, or any)');
    for (const name of names) {
      if (!IFNAME.test(name) || name === '.' || name === '..') throw new CaptureOpenError(name, 'bad-option', 'not an interface name');
    }
    if (names.length > 1 && names.includes('any')) throw new CaptureOpenError('any', 'bad-option', 'any already captures every interface: give it alone');
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new CaptureOpenError(twice, 'bad-option', 'interface given twice');
    const b = this.opts.bufferBytes;
    if (b !== undefined && !(Number.isInteger(b) && b > 0 && b < 2 ** 31)) throw new CaptureOpenError(names.join(','), 'bad-option', `buffer size ${b} is not a positive 31-bit integer`);
  }

  private open(mod: CapModule, name: string, index: number): void {
    if (name !== 'any' && !interfaceExists(name)) {
      throw new CaptureOpenError(name, 'no-such-device', `no such device (this network namespace has: ${listInterfaces().join(', ')})`);
    }
    const filter = this.opts.filter ?? '';
    if (filter !== '') {
      // The filter is compiled last, after the device is active: try it on a small probe handle
      // first, so that a bad filter leaks only that (see keptHandles).
      const err = tryOpen(mod, name, filter, PROBE_BYTES);
      if (err) {
        const plain = tryOpen(mod, name, '', PROBE_BYTES);
        if (!plain) throw new CaptureOpenError(name, 'bad-filter', `bad BPF filter ${JSON.stringify(filter)}: ${err}`);
        throw openError(name, plain);
      }
    }
    const buffer = Buffer.allocUnsafe(65535);
    const cap = newHandle(mod);
    let linkName: string;
    try {
      linkName = cap.open(name, filter, this.opts.bufferBytes ?? DEFAULT_LIVE_BUFFER_BYTES, buffer);
    } catch (e) {
      throw openError(name, (e as Error).message);
    }
    // The kernel's counters start when the capture does: open() allocates the ring (a quarter of a
    // second for 64 MiB) before the socket sees packets, and a frame counted in that time would
    // read as a loss.
    const before = this.kernelCounters(name);
    const tap: Tap = { name, index, linkType: linkTypeOf(linkName), cap, buffer, seen: 0, bytes: 0, before };
    this.taps.push(tap);
    cap.on('packet', (n, truncated) => this.packet(tap, n, truncated));
  }

  private kernelCounters(name: string): Map<string, NetCounters> {
    if (name === 'any') return readAllNetCounters();
    const c = readNetCounters(name);
    return c ? new Map([[name, c]]) : new Map();
  }

  /** One packet from one interface: the hot path. */
  private packet(tap: Tap, n: number, capTruncated: boolean): void {
    // The timestamp first: everything after it is our own delay, not the packet's.
    let time = this.now();
    if (time < this.last) time = this.last;
    this.last = time;
    tap.seen++;
    tap.bytes += n;
    const frame = tap.buffer.subarray(0, n);
    let wireLen = n;
    const l3 = findL3(tap.linkType, frame, this.l3);
    if (l3) {
      if (this.dedup.duplicate(l3Key(frame, l3), time)) {
        this.duplicates++;
        return;
      }
      wireLen = wireLength(frame, l3);
    }
    if (capTruncated || wireLen > n) this.truncated++;
    const data = Buffer.allocUnsafe(n);
    frame.copy(data);
    const p: Packet = { frame: ++this.delivered, time, linkType: tap.linkType, iface: tap.index, data, wireLen };
    this.sink(p);
  }
}

/** Opens and closes a probe handle; returns cap's error message, or undefined when it opened. */
function tryOpen(mod: CapModule, name: string, filter: string, bytes: number): string | undefined {
  const cap = newHandle(mod);
  try {
    cap.open(name, filter, bytes, Buffer.allocUnsafe(64));
  } catch (e) {
    return (e as Error).message;
  }
  cap.close();
  return undefined;
}

function openError(name: string, message: string): CaptureOpenError {
  if (/no such device/i.test(message)) return new CaptureOpenError(name, 'no-such-device', `no such device: ${message}`);
  if (/permission|not permitted/i.test(message)) {
    return new CaptureOpenError(name, 'permission-denied', `permission denied: ${message} (live capture needs root or CAP_NET_RAW)`);
  }
  return new CaptureOpenError(name, 'failed', message);
}
