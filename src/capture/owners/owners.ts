import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connectionKey } from '../../common/index.js';
import { loadAddon, NATIVE_BUILD_DIR, tlsProbesUnavailable, type BpfHandle, type ProgramCost } from '../tls/addon.js';
import { classifyProcess, type ProcessTls } from './classify.js';
import { parseOwnerBatch, type Endpoint, type OwnerEvent } from './events.js';

/** native/conn.bpf.c, built beside tls.bpf.o by `npm run build:native`. */
export const CONN_OBJECT_PATH = join(NATIVE_BUILD_DIR, 'conn.bpf.o');

/** One end of a connection: the process that connected (client) or accepted (server). */
export interface ConnectionOwner {
  pid: number;
  comm: string;
  cgroupId: number;
  /** Epoch seconds of the connect() or accept(). */
  time: number;
  /** Its TLS library, looked at when it was first seen (once per pid and exec). */
  tls: ProcessTls;
}

export interface ConnectionEnds { client?: ConnectionOwner; server?: ConnectionOwner }

export interface OwnerCounters {
  events: number;
  connects: number;
  accepts: number;
  execs: number;
  /** Connections held now, and connections forgotten to stay under `maxConnections`. */
  connections: number;
  evicted: number;
  /** Processes whose library was looked at (a /proc read each), and those held now. */
  classified: number;
  processes: number;
  /** Execs not looked at early because MAX_EXEC_LOOKS waited already (looked at when they connect). */
  execLooksSkipped: number;
}

export interface OwnerOptions {
  /** Connections remembered, newest kept (records come out at a connection's end, so its owners must outlive it). Default 131 072. */
  maxConnections?: number;
  /** Processes whose library is remembered. Default 16 384. */
  maxProcesses?: number;
  /** Looks at a process's TLS library (default: /proc). */
  classify?: (pid: number) => ProcessTls;
  /**
   * false: processes are not looked at for their TLS library (no /proc read per process), for
   * attribution alone (pid, comm, cgroup: the agent without --tls). Default true.
   */
  classifyTls?: boolean;
  /** Look at a process this long after its exec, before it connects (0: only when it connects). OwnerWatch: 15 ms. */
  lookAfterExecMs?: number;
}

/** The library of a process not looked at (classifyTls false). */
const NOT_LOOKED_AT: ProcessTls = { library: 'unknown', probed: false, reason: 'not-probed', detail: 'its TLS library was not looked at (the agent runs without --tls)' };

/** An `unknown` answer is asked again after this long: a library may be loaded after the first connection (python's `import ssl`). */
const RECHECK_UNKNOWN_SEC = 5;
/** A process as the owner map holds it, shared by its connections. */
interface Proc { pid: number; comm: string; cgroupId: number; tls: ProcessTls }

function ownerAt(p: Proc, time: number): ConnectionOwner {
  return { pid: p.pid, comm: p.comm, cgroupId: p.cgroupId, time, tls: p.tls };
}
/** One connection's ends: the client's and the server's process and when each was seen (0: not seen). */
interface Entry { c: Proc | undefined; ct: number; s: Proc | undefined; st: number }

/** Exec look-ups waiting at once, at most. */
const MAX_EXEC_LOOKS = 256;
/** An end seen this long before the other is taken as a previous connection on the same 4-tuple. */
const REUSE_SEC = 120;

/**
 * Connection → the processes at its two ends (either end may come first, or only one: the other is
 * on another host), for naming why a TLS connection was not decrypted. Bounded: the oldest
 * connection is forgotten first. Fed by OwnerEvents (native/conn.bpf.c) or by hand (tests).
 */
export class ConnectionOwners {
  /** Compact on purpose (bench/owners.mjs measures it): each end a shared Proc and a time. */
  private readonly conns = new Map<string, Entry>();
  private readonly procs = new Map<number, { tls: ProcessTls; at: number; proc?: Proc }>();
  private readonly max: number;
  private readonly maxProcs: number;
  private readonly classify: (pid: number) => ProcessTls;
  private readonly lookAfterExecMs: number;
  private execLooks = 0;
  /** Processes' TLS libraries are looked at (OwnerOptions.classifyTls). */
  private readonly looks: boolean;
  readonly counters: OwnerCounters = { events: 0, connects: 0, accepts: 0, execs: 0, connections: 0, evicted: 0, classified: 0, processes: 0, execLooksSkipped: 0 };

  constructor(o: OwnerOptions = {}) {
    this.max = o.maxConnections ?? 131_072;
    this.maxProcs = o.maxProcesses ?? 16_384;
    const tls = (this.looks = o.classifyTls ?? true);
    this.classify = tls ? o.classify ?? ((pid) => classifyProcess(pid)) : () => NOT_LOOKED_AT;
    this.lookAfterExecMs = tls ? o.lookAfterExecMs ?? 0 : 0;
  }

  /** One kernel event; `time` is its epoch seconds. */
  add(e: OwnerEvent, time: number): void {
    this.counters.events++;
    if (e.kind === 'exec') {
      this.counters.execs++;
      this.procs.delete(e.pid);
      // Looked at soon after the loader has mapped its libraries, while a short-lived client still
      // runs: its connect may reach us only after it exited.
      // At most MAX_EXEC_LOOKS wait at once: an exec storm (a build) must not queue a /proc read each.
      if (this.lookAfterExecMs > 0) {
        if (this.execLooks >= MAX_EXEC_LOOKS) this.counters.execLooksSkipped++;
        else {
          this.execLooks++;
          setTimeout(() => {
            this.execLooks--;
            if (!this.procs.has(e.pid)) this.tlsOf(e.pid, time);
          }, this.lookAfterExecMs).unref();
        }
      }
      return;
    }
    if (!e.local || !e.remote) return;
    const proc = this.procOf(e.pid, e.comm, Number(e.cgroupId), time);
    const key = connectionKey(e.local, e.remote);
    const had = this.conns.get(key);
    const entry: Entry = { c: undefined, ct: 0, s: undefined, st: 0 };
    if (had) {
      this.conns.delete(key);
      // The other end's owner stays unless it is from an earlier connection on the same 4-tuple.
      const [other, at] = e.kind === 'connect' ? [had.s, had.st] : [had.c, had.ct];
      if (other && Math.abs(at - time) < REUSE_SEC && !(e.kind === 'connect' && at < time - 1)) {
        if (e.kind === 'connect') { entry.s = other; entry.st = at; } else { entry.c = other; entry.ct = at; }
      }
    }
    if (e.kind === 'connect') {
      this.counters.connects++;
      entry.c = proc;
      entry.ct = time;
    } else {
      this.counters.accepts++;
      entry.s = proc;
      entry.st = time;
    }
    this.conns.set(key, entry);
    while (this.conns.size > this.max) {
      this.conns.delete(this.conns.keys().next().value!);
      this.counters.evicted++;
    }
    this.counters.connections = this.conns.size;
  }

  /**
   * The owners of the connection between `a` and `b` (either order), as long as they were seen by
   * `before` (epoch seconds; a later owner is a newer connection on the same 4-tuple).
   */
  ends(a: Endpoint, b: Endpoint, before = Infinity): ConnectionEnds | undefined {
    const e = this.conns.get(connectionKey(a, b));
    if (!e) return undefined;
    // Object literals of one shape, not spreads: this runs for every record (a spread of a Proc took
    // V8's generic clone path, 7 µs a record in bench/agent-profile.mjs).
    const client = e.c && e.ct <= before + 1 ? ownerAt(e.c, e.ct) : undefined;
    const server = e.s && e.st <= before + 1 ? ownerAt(e.s, e.st) : undefined;
    if (!client && !server) return undefined;
    const out: ConnectionEnds = {};
    if (client) out.client = client;
    if (server) out.server = server;
    return out;
  }

  /** Forgets everything (tests, benches). */
  clear(): void {
    this.conns.clear();
    this.procs.clear();
    this.counters.connections = this.counters.processes = 0;
  }

  /** The process as connections hold it: one object per pid, comm, cgroup and library, shared. */
  private procOf(pid: number, comm: string, cgroupId: number, now: number): Proc {
    const tls = this.tlsOf(pid, now);
    const held = this.procs.get(pid);
    const p = held?.proc;
    if (p && p.comm === comm && p.cgroupId === cgroupId && p.tls === tls) return p;
    const fresh: Proc = { pid, comm, cgroupId, tls };
    if (held) held.proc = fresh;
    return fresh;
  }

  private tlsOf(pid: number, now: number): ProcessTls {
    const p = this.procs.get(pid);
    if (p && (p.tls.library !== 'unknown' || now - p.at < RECHECK_UNKNOWN_SEC)) return p.tls;
    let tls: ProcessTls;
    try {
      tls = this.classify(pid);
    } catch (e) {
      // A file that breaks the ELF reader must not drop the rest of the batch.
      tls = { library: 'unknown', probed: false, reason: 'not-probed', detail: `its files could not be read (${(e as Error).message})` };
    }
    if (this.looks) this.counters.classified++;
    this.procs.delete(pid);
    this.procs.set(pid, { tls, at: now });
    if (this.procs.size > this.maxProcs) this.procs.delete(this.procs.keys().next().value!);
    this.counters.processes = this.procs.size;
    return tls;
  }
}

/** Why connection owners cannot be watched here (empty when they can be tried). */
export function ownersUnavailable(): string[] {
  return tlsProbesUnavailable();
}

/**
 * ConnectionOwners fed by native/conn.bpf.c through the addon: every TCP connect and accept on the
 * host. Throws with the kernel's or libbpf's words when the object cannot be loaded or a tracepoint
 * refuses to attach (the caller says so and goes on without owners).
 */
export class OwnerWatch {
  readonly owners: ConnectionOwners;
  private handle: BpfHandle | undefined;
  private readonly offsetSec: number;

  constructor(opts: OwnerOptions & { ringBytes?: number } = {}) {
    const why = ownersUnavailable();
    if (!existsSync(CONN_OBJECT_PATH)) why.push(`no ${CONN_OBJECT_PATH}: rebuild the addon with npm run build:native`);
    if (why.length) throw new Error(why.join('; '));
    const addon = loadAddon()!;
    this.owners = new ConnectionOwners({ lookAfterExecMs: 15, ...opts });
    const [rt, mono] = addon.clocks();
    // Kernel times are CLOCK_MONOTONIC: the offset to the wall clock read back to back at open.
    this.offsetSec = Number(rt - mono) / 1e9;
    this.handle = addon.open(CONN_OBJECT_PATH, opts.ringBytes ?? 4 << 20, (b) => this.onBatch(b));
  }

  private onBatch(b: Buffer): void {
    parseOwnerBatch(b, (e) => this.owners.add(e, Number(e.tsNs) / 1e9 + this.offsetSec));
  }

  /** The addon's counters for this object (events, batches, and `lost`: the ring was full). */
  kernelCounters(): { events: number; batches: number; lost: number } | undefined {
    if (!this.handle) return undefined;
    const c = loadAddon()!.counters(this.handle);
    return { events: c.events, batches: c.batches, lost: c.lost };
  }

  /** Its programs' kernel-side run time and runs (counted while kernel.bpf_stats_enabled is on); none after close(). */
  kernelCost(): ProgramCost[] {
    return this.handle ? loadAddon()!.kernelCost(this.handle) : [];
  }

  close(): void {
    if (!this.handle) return;
    loadAddon()!.close(this.handle);
    this.handle = undefined;
  }
}
