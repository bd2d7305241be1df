import { openLiveSource, type CaptureCounters, type LiveSource, type Packet, type SourceChoice } from '../capture/index.js';
import type { FlowRecord, Redactor } from '../flows/index.js';
import { Pipeline } from '../pipeline/index.js';
import { Barriers, markerTarget, withMarkers } from './barrier.js';

export interface RecorderOptions {
  interfaces: string[];
  /** BPF filter; drain markers are let through it. */
  filter?: string;
  bufferBytes?: number;
  /** libpcap (default), the eBPF TC source, both side by side, or auto (eBPF when it can run). */
  source?: SourceChoice;
  /** The TC source's ring buffer bytes. */
  ringBytes?: number;
  /** Hears which source auto chose, and links the TC source follows or cannot attach to. */
  onNote?: (line: string) => void;
  bodyLimit: number;
  redactor?: Redactor;
  /** Every record, as soon as its last byte is decoded. */
  onRecord: (r: FlowRecord) => void;
  /** Every captured packet (not drain markers), e.g. for a store's packet ring. */
  onPacket?: (p: Packet) => void;
  /** Called after each tick, e.g. to sync a store. */
  onTick?: () => void;
  tickMs?: number;
  /** Bytes TCP connection state may cost before the idlest are evicted (reassembly's maxConnectionMemory). */
  connectionMemory?: number;
}

export interface Drained {
  /** Capture-clock time (epoch seconds) up to which every record is out. */
  at: number;
  /** False when a marker could not cross some interface (see markerTarget) or was not seen in time. */
  proven: boolean;
}

/** How often buffered packets are released: well inside the agent's one-second promise. */
const TICK_MS = 200;
/** A marker is normally seen within a millisecond; this long means it was lost. */
const DRAIN_TIMEOUT_MS = 2000;

/**
 * Live capture → decode pipeline, with a drain: the shared core of the agent, `tapwire run` and
 * `tapwire watch`. Live packets are stamped in arrival order, never backwards, so no reordering
 * window is needed and a record leaves as soon as its last byte is decoded.
 */
export class Recorder {
  readonly capture: LiveSource;
  readonly pipeline: Pipeline;
  private readonly barriers = new Barriers();
  private timer?: NodeJS.Timeout;

  private constructor(private readonly o: RecorderOptions) {
    this.pipeline = new Pipeline({
      onRecord: o.onRecord, bodyLimit: o.bodyLimit, redactor: o.redactor, frames: false, timeOrder: { windowSec: 0 },
      ...(o.connectionMemory ? { reassembly: { maxConnectionMemory: o.connectionMemory } } : {}),
    });
    this.capture = openLiveSource({
      source: o.source ?? 'pcap', interfaces: o.interfaces, filter: withMarkers(o.filter), kernelFilter: o.filter,
      bufferBytes: o.bufferBytes, ringBytes: o.ringBytes, onNote: o.onNote,
    }, (p) => {
      if (this.barriers.waiting && this.barriers.seen(p.data)) return;
      o.onPacket?.(p);
      this.pipeline.packet(p);
    });
  }

  /** Opens the capture (CaptureOpenError names the interface and why) and starts ticking. */
  static start(o: RecorderOptions): Recorder {
    const r = new Recorder(o);
    r.capture.start();
    r.timer = setInterval(() => r.tick(), o.tickMs ?? TICK_MS);
    return r;
  }

  /** The capture clock: epoch seconds, the clock records are stamped with. */
  now(): number {
    return this.capture.now();
  }

  counters(): CaptureCounters {
    return this.capture.counters();
  }

  /**
   * Waits until every packet sent before this call has been captured and decoded, then releases
   * what the pipeline holds: records of exchanges that completed before now are then out. This is
   * what lets a snapshot or a test run stop "at this instant" without a fixed sleep.
   * Where no marker can cross an interface, two turns of the event loop stand in (the capture
   * socket is read in the poll phase of each), and the result says the drain is unproven.
   */
  async drain(timeoutMs = DRAIN_TIMEOUT_MS): Promise<Drained> {
    const targets = this.o.interfaces.map(markerTarget);
    const routable = [...new Set(targets.filter((t): t is string => t !== undefined))];
    let proven = await this.barriers.send(routable, timeoutMs);
    if (routable.length < targets.length) {
      proven = false;
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    }
    const at = this.now();
    this.tick();
    return { at, proven };
  }

  private tick(): void {
    this.pipeline.tick(this.capture.now());
    this.o.onTick?.();
  }

  /** Stops capture and decodes what is still buffered (open exchanges end as incomplete). */
  stop(): void {
    clearInterval(this.timer);
    this.capture.stop();
    this.pipeline.finish();
  }
}
