/**
 * The live packet sources behind one interface (issue 18): libpcap through `cap` (live.ts), the
 * eBPF TC source (tc/), both side by side, or the best that runs here. Whichever is chosen, the
 * same PacketSink gets the packets, and counters() answers in one shape, so the Recorder, the
 * agent's /metrics and the snapshots' stated loss do not care which one captured.
 */
import type { Packet, PacketSink } from './types.js';
import { CaptureOpenError, LiveCapture, liveCaptureUnavailable, type LiveCounters } from './live.js';
import { DuplicateWindow, findL3, l3Key, type L3 } from './live/dedup.js';
import { DEFAULT_TC_RING_BYTES, kernelPrefilter, LinkWatch, linkMatcher, linkWatchUnavailable, TcCapture, tcCaptureUnavailable, type Link, type TcCounters } from './tc/index.js';

export type SourceChoice = 'pcap' | 'ebpf' | 'both' | 'auto';
export const SOURCE_CHOICES: readonly SourceChoice[] = ['pcap', 'ebpf', 'both', 'auto'];

export interface SourceOptions {
  source: SourceChoice;
  /** Interface names, `any`, or (eBPF) name patterns with `*` followed as links come and go. */
  interfaces: string[];
  /** tcpdump syntax: the same packets are kept whichever source captures. */
  filter?: string;
  /**
   * The expression the eBPF source's in-kernel prefilter is worked out from, when `filter` carries
   * a clause the kernel lets through anyway (the Recorder's drain markers, UDP to port 9, which
   * tc.bpf.c always keeps): an `or` with it would otherwise leave the kernel nothing to filter on.
   */
  kernelFilter?: string;
  /** libpcap's kernel buffer per interface. */
  bufferBytes?: number;
  /** The TC source's ring buffer (a power of two). */
  ringBytes?: number;
  /** Hears what was chosen and why (auto's fallback), and interfaces followed or dropped. */
  onNote?: (line: string) => void;
}

/**
 * LiveCounters (what /metrics has always read) plus each source's own. `lost` is what a source
 * knows it dropped: the TC ring's and program's counts; libpcap through `cap` gives none.
 */
export interface CaptureCounters extends LiveCounters {
  source: 'pcap' | 'ebpf' | 'both';
  lost: number;
  pcap?: LiveCounters;
  ebpf?: TcCounters;
  /** `both`: per source, packets it delivered first, and copies of one the other had delivered. */
  compared?: Record<'pcap' | 'ebpf', { first: number; second: number }>;
}

export interface LiveSource {
  readonly kind: 'pcap' | 'ebpf' | 'both';
  start(): void;
  stop(): void;
  /** Epoch seconds on the clock packets are stamped with. */
  now(): number;
  counters(): CaptureCounters;
}

/** Both sources deliver one packet twice, up to the slower one's delay: wider than one source's 50 ms. */
const BOTH_DEDUP_SEC = 0.5;

/** Why `choice` cannot run here ('' when it can be tried). */
export function sourceUnavailable(choice: 'pcap' | 'ebpf' | 'both', interfaces: readonly string[]): string {
  const why: string[] = [];
  if (choice !== 'ebpf') {
    const p = liveCaptureUnavailable();
    if (p) why.push(p);
  }
  if (choice !== 'pcap') {
    why.push(...tcCaptureUnavailable());
    if (interfaces.some(followed)) {
      const l = linkWatchUnavailable();
      if (l) why.push(l);
    }
  }
  return why.join('; ');
}

/** A name the TC source follows through link events rather than opens once. */
function followed(name: string): boolean {
  return name === 'any' || name.includes('*');
}

/**
 * Opens the chosen source (not started). `ebpf` and `both` throw a CaptureOpenError naming what is
 * missing when they cannot run; `auto` takes eBPF when it can, else libpcap, and says which and why.
 */
export function openLiveSource(o: SourceOptions, sink: PacketSink): LiveSource {
  let choice = o.source;
  if (choice === 'auto') {
    const why = sourceUnavailable('ebpf', o.interfaces);
    if (!why) return new AutoSource(o, sink);
    choice = 'pcap';
    o.onNote?.(`--source auto: capturing with libpcap, since eBPF cannot run here: ${why}`);
  }
  const why = sourceUnavailable(choice, o.interfaces);
  if (why) throw new CaptureOpenError(o.interfaces.join(','), 'unavailable', `--source ${choice}: ${why}`);
  if (choice === 'pcap') return new PcapSource(o, sink);
  if (choice === 'ebpf') return new EbpfSource(o, sink);
  return new BothSources(o, sink);
}

/**
 * `--source auto` where eBPF should run: it is tried first, and when it still fails at start (a
 * kernel without ring buffers or clsact, a verifier or lockdown refusal, a seccomp profile) libpcap
 * takes over, and the note says why.
 */
class AutoSource implements LiveSource {
  private running: LiveSource;

  constructor(private readonly o: SourceOptions, private readonly sink: PacketSink) {
    this.running = new EbpfSource(o, sink);
  }

  get kind(): 'pcap' | 'ebpf' {
    return this.running.kind === 'ebpf' ? 'ebpf' : 'pcap';
  }

  start(): void {
    try {
      this.running.start();
      this.o.onNote?.('--source auto: capturing with eBPF (TC)');
    } catch (e) {
      const why = liveCaptureUnavailable();
      if (why) throw e;
      this.o.onNote?.(`--source auto: capturing with libpcap, since eBPF failed to start: ${(e as Error).message}`);
      this.running = new PcapSource(this.o, this.sink);
      this.running.start();
    }
  }

  stop(): void {
    this.running.stop();
  }

  now(): number {
    return this.running.now();
  }

  counters(): CaptureCounters {
    return this.running.counters();
  }
}

class PcapSource implements LiveSource {
  readonly kind = 'pcap' as const;

  constructor(private readonly o: SourceOptions, private readonly sink: PacketSink) {}

  private capture: LiveCapture | undefined;

  start(): void {
    this.capture = new LiveCapture({ interfaces: this.o.interfaces, filter: this.o.filter, bufferBytes: this.o.bufferBytes }, this.sink);
    this.capture.start();
  }

  stop(): void {
    this.capture?.stop();
  }

  now(): number {
    return this.capture?.now() ?? Date.now() / 1000;
  }

  counters(): CaptureCounters {
    const c = this.capture?.counters() ?? { interfaces: [], delivered: 0, duplicates: 0, truncated: 0 };
    return { ...c, source: 'pcap', lost: 0, pcap: c };
  }
}

/**
 * The TC source on fixed names, or on every link a pattern (or `any`) matches, added and removed
 * as link events say: a pod's veth appears on the host when the pod starts.
 */
class EbpfSource implements LiveSource {
  readonly kind = 'ebpf' as const;
  private tc: TcCapture | undefined;
  private links: LinkWatch | undefined;
  private readonly fixed: string[];
  private readonly match: ((l: Link) => boolean) | undefined;

  constructor(private readonly o: SourceOptions, private readonly sink: PacketSink) {
    this.fixed = o.interfaces.filter((n) => !followed(n));
    const patterns = o.interfaces.filter(followed);
    this.match = patterns.length ? linkMatcher(patterns) : undefined;
  }

  start(): void {
    // The kernel keeps a superset; the expression itself always decides in the reader (exact
    // alone would not do: the kernel also keeps every drain marker).
    const pre = kernelPrefilter(this.o.kernelFilter ?? this.o.filter);
    const tc = new TcCapture({
      interfaces: this.fixed, ringBytes: this.o.ringBytes ?? DEFAULT_TC_RING_BYTES,
      filter: pre.filter, ...(this.o.filter ? { expression: this.o.filter } : {}),
    }, this.sink);
    this.tc = tc;
    if (!this.match) return;
    const match = this.match;
    try {
      this.links = LinkWatch.open((c) => this.follow(c.added, c.removed), { match });
    } catch (e) {
      this.stop();
      throw e;
    }
  }

  private follow(added: Link[], removed: Link[]): void {
    const tc = this.tc;
    if (!tc) return;
    for (const l of removed) if (!this.fixed.includes(l.name)) tc.remove(l.name);
    for (const l of added) {
      if (this.fixed.includes(l.name)) continue;
      try {
        tc.add(l.name);
      } catch (e) {
        // A link gone again before it could be attached (a pod that failed at once) is not an error worth more than a line.
        this.o.onNote?.(`not capturing on ${l.name}: ${(e as Error).message}`);
      }
    }
  }

  stop(): void {
    this.links?.close();
    this.links = undefined;
    this.tc?.close();
  }

  now(): number {
    return this.tc?.now() ?? Date.now() / 1000;
  }

  counters(): CaptureCounters {
    const c = this.tc ? (this.tc.last ?? this.tc.counters()) : undefined;
    const lost = c ? c.lost + c.readFail : 0;
    return {
      source: 'ebpf', lost,
      interfaces: (c?.interfaces ?? []).map((i) => ({ name: i.name, linkType: 1, seen: i.packets, bytes: i.bytes })),
      delivered: c?.delivered ?? 0, duplicates: c?.duplicates ?? 0, truncated: 0,
      ...(c ? { ebpf: c } : {}),
    };
  }
}

/**
 * libpcap and TC on the same interfaces at once, for comparing them live: one duplicate window
 * over both, so each packet reaches the pipeline once, from whichever source had it first, and
 * each source's counts say how often it was first, second, or (by their difference) missing.
 */
class BothSources implements LiveSource {
  readonly kind = 'both' as const;
  private readonly pcap: PcapSource;
  private readonly ebpf: EbpfSource;
  private readonly window = new DuplicateWindow(BOTH_DEDUP_SEC);
  private readonly l3: L3 = { offset: 0, version: 0 };
  private readonly compared = { pcap: { first: 0, second: 0 }, ebpf: { first: 0, second: 0 } };
  private delivered = 0;

  constructor(o: SourceOptions, private readonly sink: PacketSink) {
    // Each keeps its own 50 ms window for copies within itself (a packet on two of its interfaces).
    this.pcap = new PcapSource(o, (p) => this.take(p, 'pcap'));
    this.ebpf = new EbpfSource(o, (p) => this.take(p, 'ebpf'));
  }

  private take(p: Packet, from: 'pcap' | 'ebpf'): void {
    const l3 = findL3(p.linkType, p.data, this.l3);
    if (l3 && this.window.duplicate(l3Key(p.data, l3), p.time)) {
      this.compared[from].second++;
      return;
    }
    this.compared[from].first++;
    // Frame numbers run over the merged stream, as one source's do (each packet is a fresh object of its source's).
    p.frame = ++this.delivered;
    this.sink(p);
  }

  start(): void {
    this.ebpf.start();
    try {
      this.pcap.start();
    } catch (e) {
      this.ebpf.stop();
      throw e;
    }
  }

  stop(): void {
    this.pcap.stop();
    this.ebpf.stop();
  }

  now(): number {
    return this.ebpf.now();
  }

  counters(): CaptureCounters {
    const p = this.pcap.counters(), e = this.ebpf.counters();
    return {
      source: 'both', lost: e.lost,
      interfaces: [...p.interfaces.map((i) => ({ ...i, name: `pcap:${i.name}` })), ...e.interfaces.map((i) => ({ ...i, name: `ebpf:${i.name}` }))],
      delivered: this.delivered,
      duplicates: p.duplicates + e.duplicates + this.compared.pcap.second + this.compared.ebpf.second,
      truncated: p.truncated,
      pcap: p.pcap, ebpf: e.ebpf, compared: { pcap: { ...this.compared.pcap }, ebpf: { ...this.compared.ebpf } },
    };
  }
}
