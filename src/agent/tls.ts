import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import {
  describeTarget, LIBRARY_NAMES, openTlsProbes, OwnerWatch, plaintextFilter, TLS_CHUNK_MAX, TLS_CHUNKS_PER_CALL, TlsProbesUnavailableError,
  type ConnectionOwner, type LateAttach, type OwnerCounters, type TlsChunk, type TlsEnd, type TlsProbeCounters, type TlsProbes, type UnprobeableTarget,
} from '../capture/index.js';
import type { FlowRecord, TlsEndProcess, TlsOrigin } from '../flows/index.js';
import { PlaintextStreams, type PlaintextChunk, type PlaintextCounters, type PlaintextOrigin, type ServerNames } from '../pipeline/index.js';
import type { ConnectionInfo, StreamHandler } from '../stream/index.js';

/** `tapwire agent --tls`: uprobes when they can run (auto, the default), always (uprobe), or never. */
export type TlsMode = 'auto' | 'uprobe' | 'off';

/** TLS uprobes cannot run and `--tls uprobe` insists: the message names each thing missing. */
export class TlsRequiredError extends Error {}

/** Makes the kernel count each BPF program's run_time_ns and run_cnt (host-wide). */
const BPF_STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** The probes' kernel-side cost as the agent reports it (TlsProbes.kernelCost()). */
export type TlsKernelCost = ReturnType<TlsProbes['kernelCost']>;

/** The most bytes one SSL call's events carry; past it the call's tail is a gap. */
const COPY_LIMIT = TLS_CHUNK_MAX * TLS_CHUNKS_PER_CALL;

/**
 * TLS plaintext for the live agent (issue 17): OpenSSL's reads and writes through eBPF uprobes
 * (capture/tls), host-wide, as byte streams into the agent's pipeline (PlaintextStreams), so HTTP,
 * HTTP/2, gRPC and PostgreSQL inside TLS are decoded as if the wire were clear.
 */
export class AgentTls {
  private constructor(
    private readonly probes: TlsProbes,
    private readonly streams: PlaintextStreams,
    /** The sysctl's value before the agent turned it on, put back at stop(); undefined if untouched. */
    private statsRestore: string | undefined,
    private readonly serverNames: ServerNames | undefined,
    /** Who holds each end of a connection (native/conn.bpf.c), to say why a wire TLS connection was not decrypted. */
    private readonly owners: OwnerWatch | undefined,
    /** The owner watch is the agent's (shared with process attribution): it closes it, not stop(). */
    private readonly ownersShared = false,
  ) {}

  /**
   * Starts the probes, or says why not: undefined plus the reason for `auto`, TlsRequiredError for
   * `uprobe`. `say` hears what could not be probed (a stripped binary, no SSL_write). `shared`: the
   * agent's own owner watch (undefined inside when it could not open one, said already), used
   * in place of opening another.
   */
  static start(
    mode: TlsMode, out: StreamHandler, say: (line: string) => void, filter?: string, serverNames?: ServerNames, shared?: { owners: OwnerWatch | undefined },
  ): AgentTls | undefined {
    if (mode === 'off') return undefined;
    let probes: TlsProbes;
    // The capture filter applies to plaintext as to packets; a filter libpcap refuses was refused
    // already by the capture, so a failure here is the addon's absence, said below.
    let keep: ((ends: NonNullable<PlaintextChunk['connection']>) => boolean) | undefined;
    try {
      // The agent stops the probes itself, after draining (its own SIGTERM handling).
      probes = openTlsProbes({ targets: 'auto', handleSignals: false });
    } catch (e) {
      if (!(e instanceof TlsProbesUnavailableError)) throw e;
      if (mode === 'uprobe') throw new TlsRequiredError(`--tls uprobe: ${e.reasons.join('; ')}`);
      say(`TLS plaintext off (--tls auto): ${e.reasons.join('; ')}`);
      return undefined;
    }
    attachSystemLibssl(probes);
    try {
      if (filter) keep = plaintextFilter(filter);
    } catch (e) {
      probes.close();
      throw e;
    }
    const statsRestore = enableBpfStats(say);
    const streams = new PlaintextStreams(out, undefined, keep);
    probes.on('chunk', (c: TlsChunk) => streams.chunk(plaintextOf(c)));
    // SSL_free: the session's stream closes now, its last exchange with it (not after the idle timeout).
    probes.on('end', (e: TlsEnd) => streams.endSession(e.pid, e.ssl, e.time));
    // A process gone (sched_process_exit): a SIGKILL or Go leaves no SSL_free, so its sessions end here.
    probes.on('exit', (e: { pid: number; time: number }) => streams.endProcess(e.pid, e.time));
    // Programs started later with OpenSSL inside (sched_process_exec): said when probed, or why not.
    probes.on('attach', (a: LateAttach) => say(`TLS plaintext through uprobes also on ${a.path} (run by pid ${a.trigger.pid}, ${a.trigger.comm})`));
    probes.on('unprobeable', (u: UnprobeableTarget) => say(`TLS not probed: ${u.path} (${u.reason})`));
    const files = probes.attached.filter((a) => a.attached.length > 0).map((a) => a.path);
    say(`TLS plaintext through uprobes on ${files.length ? files.join(', ') : 'no file yet'}`
      + (probes.unprobeable.length ? `; not probed: ${probes.unprobeable.map((u) => `${u.path} (${u.reason})`).join(', ')}` : ''));
    return shared
      ? new AgentTls(probes, streams, statsRestore, serverNames, shared.owners, true)
      : new AgentTls(probes, streams, statsRestore, serverNames, watchOwners(say));
  }

  /**
   * Marks a record decoded from plaintext (`tls`: library, process, and the server name of the
   * same connection's ClientHello when the packet capture saw it); leaves others as they are.
   */
  annotate(r: FlowRecord): void {
    const origin = this.streams.originOf(r.connectionId);
    if (!origin) {
      // A TLS handshake from the wire: its ends' processes and libraries say why it may not be decrypted.
      if (r.protocol === 'tls' && this.owners) {
        const ends = this.owners.owners.ends(r.src, r.dst, r.end);
        if (ends) r.processes = { ...(ends.client ? { client: endProcess(ends.client) } : {}), ...(ends.server ? { server: endProcess(ends.server) } : {}) };
      }
      return;
    }
    r.tls = this.origin(origin, r.src, r.dst);
  }

  /**
   * A plaintext connection's origin as its records are marked (library, process, and the server
   * name when the capture saw the handshake); undefined for a connection the probes did not give.
   */
  originOf(conn: ConnectionInfo): TlsOrigin | undefined {
    const origin = this.streams.originOf(conn.id);
    return origin && this.origin(origin, conn.client, conn.server);
  }

  private origin(origin: PlaintextOrigin, a: { ip: string; port: number }, b: { ip: string; port: number }): TlsOrigin {
    const sni = this.serverNames?.of(a, b);
    return sni === undefined ? { ...origin } : { ...origin, sni };
  }

  tick(now: number): void {
    this.streams.tick(now);
  }

  counters(): { probes: TlsProbeCounters; streams: PlaintextCounters; owners?: OwnerCounters & { lost: number } } {
    const o = this.owners;
    return {
      probes: this.probes.counters(), streams: { ...this.streams.counters },
      ...(o ? { owners: { ...o.owners.counters, lost: o.kernelCounters()?.lost ?? 0 } } : {}),
    };
  }

  /**
   * The programs' kernel-side cost: run_time_ns and run_cnt per program, counted only while
   * kernel.bpf_stats_enabled is on (statsEnabled says whether it is now). That time is spent in the
   * probed processes' context: it is in neither this process's CPU time nor its cgroup's.
   */
  kernelCost(): TlsKernelCost {
    const cost = this.probes.kernelCost();
    // The connection-owner tracepoints run on every TCP connect and accept of the host: theirs too.
    return { ...cost, programs: [...cost.programs, ...(this.owners?.kernelCost() ?? [])] };
  }

  /** Detaches the probes, then ends every session (their last records come out). */
  stop(now: number): void {
    this.probes.close();
    if (!this.ownersShared) this.owners?.close();
    if (this.statsRestore !== undefined) {
      try {
        writeFileSync(BPF_STATS_SYSCTL, this.statsRestore);
      } catch {
        // not writable any more (a remount): it stays on; nothing else to do at stop
      }
      this.statsRestore = undefined;
    }
    this.streams.finish(now);
  }
}

/**
 * The connection owners (tracepoints on connect and accept), or undefined with the reason said:
 * without them coverage falls back to codes from records alone (not-probed).
 */
function watchOwners(say: (line: string) => void): OwnerWatch | undefined {
  try {
    return new OwnerWatch();
  } catch (e) {
    say(`TLS coverage will not name the processes of connections it could not decrypt: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

/** One end's process as a wire tls record carries it. */
function endProcess(o: ConnectionOwner): TlsEndProcess {
  const t = o.tls;
  return {
    pid: o.pid, ...(o.comm ? { comm: o.comm } : {}), library: t.library, probed: t.probed,
    ...(t.reason ? { reason: t.reason } : {}),
    detail: t.library === 'unknown' || t.detail.includes(LIBRARY_NAMES[t.library]) ? t.detail : `${LIBRARY_NAMES[t.library]}: ${t.detail}`,
    ...(o.cgroupId ? { cgroupId: o.cgroupId } : {}),
  };
}

/**
 * Turns kernel.bpf_stats_enabled on if it is off and this process may, so that the programs'
 * run_time_ns and run_cnt count (tapwire_ebpf_run_seconds_total): says so, or says why it cannot.
 * Returns the old value to put back at stop, or undefined when the agent changed nothing. It is a
 * host-wide switch (each BPF program run on the host then reads the clock twice more); a SIGKILLed
 * agent leaves it on.
 */
function enableBpfStats(say: (line: string) => void): string | undefined {
  let old: string;
  try {
    old = readFileSync(BPF_STATS_SYSCTL, 'utf8').trim();
  } catch (e) {
    say(`TLS probes' kernel cost not counted: cannot read ${BPF_STATS_SYSCTL} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); tapwire_ebpf_stats_enabled is 0`);
    return undefined;
  }
  if (old !== '0') return undefined;
  try {
    writeFileSync(BPF_STATS_SYSCTL, '1');
  } catch (e) {
    say(`TLS probes' kernel cost not counted: kernel.bpf_stats_enabled is 0 and this agent cannot set it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); tapwire_ebpf_stats_enabled is 0`);
    return undefined;
  }
  say('TLS probes\' kernel cost counted: kernel.bpf_stats_enabled turned on (back to 0 when the agent stops)');
  return old;
}

/**
 * The system's libssl files, whether or not a process maps them now: a uprobe belongs to the file
 * (its inode), so a process started later (curl run by a test) is probed from its first call. The
 * running processes' own copies (containers' libssl under /proc/<pid>/root) were found by the scan.
 */
function attachSystemLibssl(probes: TlsProbes): void {
  const r = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' });
  const paths = new Set([...(r.stdout ?? '').matchAll(/=> (\S*\/libssl\.so[.0-9]*)$/gm)].map((m) => realpathOr(m[1]!)));
  const done = new Set(probes.attached.map((a) => realpathOr(a.path)));
  for (const path of paths) {
    if (done.has(path)) continue;
    const d = describeTarget(path);
    if ('reason' in d) continue;
    probes.attach(path);
    done.add(path);
  }
}

function realpathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** A probe's chunk as the pipeline takes it: the call's uncopied tail named on its last copied piece. */
export function plaintextOf(c: TlsChunk): PlaintextChunk {
  const end = c.offset + c.data.length;
  const uncopied = c.length > end && end >= Math.min(c.length, COPY_LIMIT) ? c.length - end : 0;
  return {
    pid: c.pid, comm: c.comm, session: c.ssl, direction: c.direction, time: c.time, data: c.data, uncopied,
    connection: c.connection, library: c.library, ...(c.side ? { side: c.side } : {}),
  };
}
