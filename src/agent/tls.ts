import { spawnSync } from 'node:child_process';
import { realpathSync } from 'node:fs';
import {
  describeTarget, openTlsProbes, TLS_CHUNK_MAX, TLS_CHUNKS_PER_CALL, TlsProbesUnavailableError,
  type LateAttach, type TlsChunk, type TlsEnd, type TlsProbeCounters, type TlsProbes, type UnprobeableTarget,
} from '../capture/index.js';
import { PlaintextStreams, type PlaintextChunk, type PlaintextCounters, type PlaintextOrigin } from '../pipeline/index.js';
import type { StreamHandler } from '../stream/index.js';

/** `tapwire agent --tls`: uprobes when they can run (auto, the default), always (uprobe), or never. */
export type TlsMode = 'auto' | 'uprobe' | 'off';

/** TLS uprobes cannot run and `--tls uprobe` insists: the message names each thing missing. */
export class TlsRequiredError extends Error {}

/** The most bytes one SSL call's events carry; past it the call's tail is a gap. */
const COPY_LIMIT = TLS_CHUNK_MAX * TLS_CHUNKS_PER_CALL;

/**
 * TLS plaintext for the live agent (issue 17): OpenSSL's reads and writes through eBPF uprobes
 * (capture/tls), host-wide, as byte streams into the agent's pipeline (PlaintextStreams), so HTTP,
 * HTTP/2, gRPC and PostgreSQL inside TLS are decoded as if the wire were clear.
 */
export class AgentTls {
  private constructor(private readonly probes: TlsProbes, private readonly streams: PlaintextStreams) {}

  /**
   * Starts the probes, or says why not: undefined plus the reason for `auto`, TlsRequiredError for
   * `uprobe`. `say` hears what could not be probed (a stripped binary, no SSL_write).
   */
  static start(mode: TlsMode, out: StreamHandler, say: (line: string) => void): AgentTls | undefined {
    if (mode === 'off') return undefined;
    let probes: TlsProbes;
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
    const streams = new PlaintextStreams(out);
    probes.on('chunk', (c: TlsChunk) => streams.chunk(plaintextOf(c)));
    // SSL_free: the session's stream closes now, its last exchange with it (not after the idle timeout).
    probes.on('end', (e: TlsEnd) => streams.endSession(e.pid, e.ssl, e.time));
    // Programs started later with OpenSSL inside (sched_process_exec): said when probed, or why not.
    probes.on('attach', (a: LateAttach) => say(`TLS plaintext through uprobes also on ${a.path} (run by pid ${a.trigger.pid}, ${a.trigger.comm})`));
    probes.on('unprobeable', (u: UnprobeableTarget) => say(`TLS not probed: ${u.path} (${u.reason})`));
    const files = probes.attached.filter((a) => a.attached.length > 0).map((a) => a.path);
    say(`TLS plaintext through uprobes on ${files.length ? files.join(', ') : 'no file yet'}`
      + (probes.unprobeable.length ? `; not probed: ${probes.unprobeable.map((u) => `${u.path} (${u.reason})`).join(', ')}` : ''));
    return new AgentTls(probes, streams);
  }

  /** Where a record's connection came from, when it was decoded from plaintext. */
  originOf(connectionId: string): PlaintextOrigin | undefined {
    return this.streams.originOf(connectionId);
  }

  tick(now: number): void {
    this.streams.tick(now);
  }

  counters(): { probes: TlsProbeCounters; streams: PlaintextCounters } {
    return { probes: this.probes.counters(), streams: { ...this.streams.counters } };
  }

  /** Detaches the probes, then ends every session (their last records come out). */
  stop(now: number): void {
    this.probes.close();
    this.streams.finish(now);
  }
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
    connection: c.connection, library: c.library,
  };
}
