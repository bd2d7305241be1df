/**
 * The TC packet source (issue 18): native/tc.bpf.c attached as clsact filters, ingress and
 * egress, on named interfaces, feeding the same PacketSink as libpcap (live.ts) and the file
 * readers. Each packet carries the kernel's CLOCK_MONOTONIC stamp turned into epoch seconds with
 * the offset read at open, and the kernel counts what it saw, sent, lost (ring full) and filtered.
 *
 * TC filters are not owned by a file descriptor: a filter holds its program, so it outlives a
 * SIGKILLed process (the program keeps running into a ring nobody reads). Opening therefore first
 * removes any filter with tapwire's handle and priority from each interface (counted as
 * `staleRemoved`); close() and the addon's exit hook remove ours. The clsact qdisc is removed only
 * when this source created it and no filter of another tool sits on it: others (Cilium, Calico,
 * tc users) add their filters to the same qdisc, and removing it would remove theirs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Packet, PacketSink } from '../types.js';
import { DuplicateWindow, findL3, l3Key, type L3 } from '../live/dedup.js';
import { addonLoadError, CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN, effectiveCaps, loadAddon, NATIVE_BUILD_DIR, type BpfHandle } from '../tls/addon.js';
import { parseTcBatch, TC_COUNTERS, TcCounterIndex, type TcDirection } from './events.js';
import { compileTcFilter, type TcFilter } from './filter.js';

export const TC_OBJECT_PATH = join(NATIVE_BUILD_DIR, 'tc.bpf.o');
/** Ethernet: veth, eth and loopback (a zeroed Ethernet header) frames as TC sees them. */
const LINKTYPE_ETHERNET = 1;

/** The addon's TC calls (native/addon.c). */
interface TcAddon {
  open(objectPath: string, ringBytes: number, onBatch: (batch: Buffer) => void): BpfHandle;
  close(handle: BpfHandle): void;
  clocks(): [bigint, bigint];
  tcAttach(handle: BpfHandle, program: string, ifindex: number, egress: boolean): { qdiscCreated: boolean };
  tcDetach(ifindex: number, egress: boolean): boolean;
  tcDestroyQdisc(ifindex: number): boolean;
  mapUpdate(handle: BpfHandle, map: string, key: Buffer, value: Buffer): void;
  mapSums(handle: BpfHandle, map: string, n: number): number[];
  setFilter(handle: BpfHandle, expr: string, linkType: number): void;
  userFiltered(handle: BpfHandle): number;
}

export interface TcOptions {
  /** Interface names in this network namespace; may be empty when add() gives them later. */
  interfaces: string[];
  /** Which directions; default both. */
  directions?: TcDirection[];
  /** Ring buffer bytes (a power of two, at least a page). Default 32 MiB. */
  ringBytes?: number;
  /** Bytes copied of each frame, 1..65535. Default 65535 (as libpcap's in `cap`). */
  snapLength?: number;
  filter?: TcFilter;
  /**
   * A tcpdump (pcap-filter(7)) expression checked exactly by the reader thread, with libpcap,
   * before a frame reaches JS: `filter` is the kernel's cheap superset of it
   * (expression.ts kernelPrefilter), this is what makes the result the same as libpcap's.
   */
  expression?: string;
  /**
   * A copy of an IP packet seen within this many seconds of the first is a duplicate and not
   * delivered (a packet bridged between two captured veths shows on both, as LiveCapture's
   * interfaces do). Default 0.05; 0 delivers every copy.
   */
  dedupWindowSec?: number;
}

export const DEFAULT_TC_RING_BYTES = 32 << 20;

export interface TcCounters {
  /** Frames the programs ran on. */
  seen: number;
  /** Records put in the ring. */
  sent: number;
  /** Records the ring had no room for (JS fell behind). */
  lost: number;
  /** Frames the in-kernel filter left out. */
  filtered: number;
  /** Frames the program could not copy (no scratch slot for the CPU, a load failure). */
  readFail: number;
  /** Frames the exact expression left out in the reader (after the kernel's prefilter kept them). */
  userFiltered: number;
  /** Packets handed to the sink. */
  delivered: number;
  /** Copies of an IP packet already delivered (it crossed another captured interface), not handed on. */
  duplicates: number;
  /** Stale tapwire filters (from a killed process) removed at open. */
  staleRemoved: number;
  /** Packets and bytes seen per interface attached now (duplicates included), in `iface` order (options, then add()). */
  interfaces: { name: string; ifindex: number; packets: number; bytes: number }[];
}


/**
 * Every reason the TC source cannot run here (empty when it can be tried), each naming what is
 * missing and how to get it: the addon and tc.bpf.o, and the privileges (loading a classifier
 * needs CAP_BPF or CAP_SYS_ADMIN; adding a qdisc and a filter needs CAP_NET_ADMIN).
 */
export function tcCaptureUnavailable(): string[] {
  if (process.platform !== 'linux') return [`eBPF needs Linux (this is ${process.platform})`];
  const reasons: string[] = [];
  const err = addonLoadError();
  if (err) reasons.push(err);
  else if (!existsSync(TC_OBJECT_PATH)) reasons.push(`no ${TC_OBJECT_PATH}: rebuild the addon with npm run build:native`);
  else if (typeof (loadAddon() as unknown as Partial<TcAddon>).tcAttach !== 'function') reasons.push('the eBPF addon predates TC capture: rebuild it with npm run build:native');
  const caps = effectiveCaps();
  const has = (c: bigint) => ((caps >> c) & 1n) === 1n;
  const who = `uid ${process.getuid?.() ?? '?'}, CapEff ${caps.toString(16)}`;
  if (!has(CAP_BPF) && !has(CAP_SYS_ADMIN)) reasons.push(`not privileged to load BPF programs: run as root or with CAP_BPF (${who})`);
  if (!has(CAP_NET_ADMIN)) reasons.push(`not privileged to add TC filters: run as root or with CAP_NET_ADMIN (${who})`);
  return reasons;
}

/** The interface's index in this network namespace, or an error naming it. */
export function interfaceIndex(name: string): number {
  if (!/^[^/\s]{1,15}$/.test(name)) throw new Error(`${name}: not an interface name`);
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
  } catch {
    throw new Error(`${name}: no such interface`);
  }
}

interface Iface { name: string; ifindex: number; packets: number; bytes: number; qdiscCreated: boolean }

/** ARPHRD_* (linux/if_arph.h): the link types whose frames TC sees from an Ethernet header. */
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;

/** The interface's ARPHRD_* type; -1 when it cannot be read. */
function linkType(name: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${name}/type`, 'utf8').trim());
  } catch {
    return -1;
  }
}

/** Whether `tc` lists filters on the device's hook other than tapwire's; undefined when tc cannot say. */
function othersOnHook(dev: string): boolean | undefined {
  try {
    for (const hook of ['ingress', 'egress']) {
      const out = execFileSync('tc', ['filter', 'show', 'dev', dev, hook], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      if (out.split('\n').some((l) => /^filter /.test(l) && !/ pref 29815 /.test(l))) return true;
    }
    return false;
  } catch {
    return undefined;
  }
}

/**
 * Captures frames on interfaces through TC and hands each to `sink`: `frame` a running number,
 * `iface` the interface's position in options, `time` the kernel stamp in epoch seconds. Packets
 * come in ring order: several CPUs write the ring, so stamps of different CPUs may interleave by
 * a few microseconds; one direction of one flow runs on one CPU at a time and stays in order.
 */
export class TcCapture {
  private readonly addon: TcAddon;
  private handle: BpfHandle | undefined;
  private readonly offsetSec: number;
  /** Every interface ever attached, by `iface` number (a removed one stays, `gone`, so numbers are never reused). */
  /** Interfaces attached now, by `iface` number: a removed one is forgotten, its number never reused (pods come and go). */
  private readonly ifaces = new Map<number, Iface>();
  private nextIface = 0;
  /** A loopback device with both hooks (directions asked for): each packet shows twice on it. */
  private twiceOnOne = false;
  private readonly byIndex = new Map<number, number>();
  private readonly attached: { ifindex: number; egress: boolean }[] = [];
  private delivered = 0;
  private duplicates = 0;
  private staleRemoved = 0;
  private readonly dedup: DuplicateWindow | undefined;
  private readonly l3: L3 = { offset: 0, version: 0 };

  constructor(readonly options: TcOptions, private readonly sink: PacketSink) {
    const why = tcCaptureUnavailable();
    if (why.length) throw new Error(`TC capture is unavailable: ${why.join('; ')}`);
    const snap = options.snapLength ?? 65535;
    if (!Number.isInteger(snap) || snap < 1 || snap > 65535) throw new Error(`TC capture: snapLength ${snap} is not in 1..65535`);
    const filter = compileTcFilter(options.filter);
    const windowSec = options.dedupWindowSec ?? 0.05;
    if (!(windowSec >= 0)) throw new Error(`TC capture: dedupWindowSec ${windowSec} is not a number ≥ 0`);
    this.dedup = windowSec > 0 ? new DuplicateWindow(windowSec) : undefined;
    const indexes = options.interfaces.map(interfaceIndex); // every name checked before anything attaches
    this.addon = loadAddon() as unknown as TcAddon;
    const [rt, mono] = this.addon.clocks();
    // Kernel stamps are CLOCK_MONOTONIC (bpf_ktime_get_ns): the offset to the wall clock, read back to back.
    this.offsetSec = Number(rt - mono) / 1e9;
    this.handle = this.addon.open(TC_OBJECT_PATH, options.ringBytes ?? DEFAULT_TC_RING_BYTES, (b) => this.onBatch(b));
    try {
      const one = Buffer.from([1]);
      for (const k of filter.ports) this.addon.mapUpdate(this.handle, 'ports', k, one);
      for (const k of filter.nets4) this.addon.mapUpdate(this.handle, 'nets4', k, one);
      for (const k of filter.nets6) this.addon.mapUpdate(this.handle, 'nets6', k, one);
      const settings = Buffer.alloc(8);
      settings.writeUInt32LE(snap, 0);
      settings.writeUInt32LE(filter.flags, 4);
      this.addon.mapUpdate(this.handle, 'settings', Buffer.alloc(4), settings);
      // Before any program is attached: the reader thread reads the filter without a lock.
      if (options.expression) {
        try {
          this.addon.setFilter(this.handle, options.expression, LINKTYPE_ETHERNET);
        } catch (e) {
          throw new Error(`filter "${options.expression}": ${(e as Error).message}`);
        }
      }
      options.interfaces.forEach((name, k) => this.attach(name, indexes[k]!));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /**
   * Removes stale tapwire filters from the interface, then attaches ours in the chosen directions.
   * On failure, detaches what it attached and throws.
   */
  private attach(name: string, ifindex: number): number {
    const type = linkType(name);
    // tun, WireGuard, ipip, netkit in L3 mode: TC sees the frame from its IP header, which neither
    // tc.bpf.c's filter nor the Ethernet link type given to the pipeline would read right.
    if (type !== ARPHRD_ETHER && type !== ARPHRD_LOOPBACK) {
      throw new Error(`${name}: link type ${type} has no Ethernet header, which the eBPF source needs: capture it with --source pcap`);
    }
    const k = this.nextIface++;
    const i: Iface = { name, ifindex, packets: 0, bytes: 0, qdiscCreated: false };
    this.ifaces.set(k, i);
    this.byIndex.set(ifindex, k);
    try {
      let stale = false;
      for (const egress of [false, true]) {
        if (!this.addon.tcDetach(ifindex, egress)) continue;
        this.staleRemoved++;
        stale = true;
      }
      // A stale filter's qdisc was a killed tapwire's: ours to remove at close, once nothing else is on it.
      i.qdiscCreated = stale;
      // On loopback every packet passes egress and then ingress: one hook sees it once, as libpcap does.
      const loopback = type === ARPHRD_LOOPBACK;
      const directions = this.options.directions ?? ['ingress', 'egress'];
      if (loopback && this.options.directions !== undefined && directions.length > 1) this.twiceOnOne = true;
      for (const d of directions) {
        if (loopback && d === 'egress' && this.options.directions === undefined) continue;
        const egress = d === 'egress';
        const r = this.addon.tcAttach(this.handle!, egress ? 'tc_egress' : 'tc_ingress', ifindex, egress);
        i.qdiscCreated ||= r.qdiscCreated;
        this.attached.push({ ifindex, egress });
      }
    } catch (e) {
      this.detach(k);
      throw e;
    }
    return k;
  }

  /**
   * Starts capturing on one more interface (a pod's veth that appeared): its packets carry the
   * returned `iface` number. Throws naming the interface when it does not exist or cannot be attached.
   */
  add(name: string): number {
    if (!this.handle) throw new Error('TC capture is closed');
    const ifindex = interfaceIndex(name);
    const have = this.byIndex.get(ifindex);
    if (have !== undefined) return have;
    try {
      return this.attach(name, ifindex);
    } catch (e) {
      const m = (e as Error).message;
      throw new Error(m.startsWith(`${name}: `) ? m : `${name}: ${m}`);
    }
  }

  /** Stops capturing on an interface (it may be gone already, as a deleted pod's veth is). */
  remove(name: string): void {
    for (const [k, i] of this.ifaces) if (i.name === name) this.detach(k);
  }

  private detach(k: number): void {
    const i = this.ifaces.get(k);
    if (!i) return;
    this.ifaces.delete(k);
    this.byIndex.delete(i.ifindex);
    for (let n = this.attached.length - 1; n >= 0; n--) {
      const a = this.attached[n]!;
      if (a.ifindex !== i.ifindex) continue;
      this.addon.tcDetach(a.ifindex, a.egress);
      this.attached.splice(n, 1);
    }
    if (i.qdiscCreated && othersOnHook(i.name) === false) this.addon.tcDestroyQdisc(i.ifindex);
    i.qdiscCreated = false;
  }

  /** Wall-clock now, on the clock packets are stamped with (for Pipeline.tick). */
  now(): number {
    const [rt] = this.addon.clocks();
    return Number(rt) / 1e9;
  }

  private onBatch(b: Buffer): void {
    parseTcBatch(b, (f) => {
      const k = this.byIndex.get(f.ifindex);
      if (k === undefined) return; // a frame from an interface detached since
      const i = this.ifaces.get(k)!;
      i.packets++;
      i.bytes += f.data.length;
      const time = f.tsNs / 1e9 + this.offsetSec;
      // One interface cannot show a packet twice (loopback is hooked on ingress only): no hash to pay.
      if (this.dedup && (this.byIndex.size > 1 || this.twiceOnOne)) {
        const l3 = findL3(LINKTYPE_ETHERNET, f.data, this.l3);
        if (l3 && this.dedup.duplicate(l3Key(f.data, l3), time)) {
          this.duplicates++;
          return;
        }
      }
      const p: Packet = { frame: ++this.delivered, time, linkType: LINKTYPE_ETHERNET, iface: k, data: f.data, wireLen: f.len };
      this.sink(p);
    });
  }

  counters(): TcCounters {
    const sums = this.handle ? this.addon.mapSums(this.handle, 'counters', TC_COUNTERS) : [];
    const at = (i: number) => sums[i] ?? 0;
    return {
      seen: at(TcCounterIndex.seen),
      sent: at(TcCounterIndex.sent),
      lost: at(TcCounterIndex.lost),
      filtered: at(TcCounterIndex.filtered),
      readFail: at(TcCounterIndex.readFail),
      userFiltered: this.handle ? this.addon.userFiltered(this.handle) : 0,
      delivered: this.delivered,
      duplicates: this.duplicates,
      staleRemoved: this.staleRemoved,
      interfaces: [...this.ifaces.values()].map(({ name, ifindex, packets, bytes }) => ({ name, ifindex, packets, bytes })),
    };
  }

  /** Detaches every filter, removes a qdisc this source created (when no other filter is on it), frees the object. */
  close(): void {
    const counters = this.handle ? this.counters() : undefined;
    for (const k of [...this.ifaces.keys()]) this.detach(k);
    if (this.handle) this.addon.close(this.handle);
    this.handle = undefined;
    if (counters) this.last = counters;
  }

  /** The counters as they were at close(), for a report after the fact. */
  last: TcCounters | undefined;
}
