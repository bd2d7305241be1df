import { OwnerWatch, type ConnectionOwner, type OwnerCounters } from '../capture/index.js';
import { CgroupResolver, type CgroupResolverCounters } from '../enrich/index.js';
import type { FlowRecord, PeerProcess } from '../flows/index.js';

export interface ProcessAttributionCounters {
  /** Records given, and ends marked with a process (two per record when both are on this host). */
  records: number;
  ends: number;
  /** Records that waited for their owners (an end not known yet), waiting now, and released with an end still unknown. */
  waited: number;
  waiting: number;
  unknownEnd: number;
  owners: OwnerCounters & { lost: number };
  cgroups: CgroupResolverCounters;
}

interface Held { r: FlowRecord; release: (r: FlowRecord) => void; deadline: number }

/** How long a record waits for an end's owner (ms), how often waiting records are looked at again, and how many wait at most. */
const WAIT_MS = 100;
const RECHECK_MS = 10;
const MAX_HELD = 20_000;

/**
 * Process attribution for the live agent (issue 18): the process at each end of every record's
 * connection on this host (`src.process`, `dst.process`: pid, comm, and the container from its
 * cgroup), from the connect and accept tracepoints of native/conn.bpf.c (OwnerWatch). One watch
 * serves this and AgentTls's coverage (`processes` on wire tls records).
 */
export class AgentProcesses {
  private readonly resolver = new CgroupResolver();
  private readonly stats = { records: 0, ends: 0, waited: 0, unknownEnd: 0 };
  /** Records waiting for an end's owner, oldest first. */
  private held: Held[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastCheck = 0;

  private constructor(readonly watch: OwnerWatch) {}

  /**
   * Opens the owner watch, or says once why it cannot (not root, no addon, a tracepoint refused)
   * and returns undefined: records then go out without `process`. `tls` asks for each process's
   * TLS library too (AgentTls's coverage), a /proc read per process.
   */
  static open(tls: boolean, say: (line: string) => void): AgentProcesses | undefined {
    try {
      return new AgentProcesses(new OwnerWatch({ classifyTls: tls }));
    } catch (e) {
      say(`process attribution off (records carry no src.process or dst.process): ${(e as Error).message.split('\n')[0]}`);
      return undefined;
    }
  }

  /**
   * Marks the record's ends with the processes holding them on this host and hands it to
   * `release`: at once when both ends are known, else once they are, or after WAIT_MS with what
   * is known. The owners' events reach this thread by another path than the packets (their own
   * ring and poll thread), so on loopback a whole exchange can be decoded before its connect
   * event is read; an end on another host is never known and costs its record WAIT_MS.
   */
  push(r: FlowRecord, release: (r: FlowRecord) => void): void {
    this.stats.records++;
    if (this.mark(r)) {
      release(r);
      return;
    }
    this.stats.waited++;
    this.held.push({ r, release, deadline: performance.now() + WAIT_MS });
    if (this.held.length > MAX_HELD) this.out(this.held.shift()!);
    this.timer ??= setInterval(() => this.recheck(false), RECHECK_MS).unref();
  }

  /** Releases every waiting record with what is known of it now (a snapshot's drain, the agent's stop). */
  flush(): void {
    this.recheck(true);
  }

  counters(): ProcessAttributionCounters {
    return {
      ...this.stats, waiting: this.held.length, owners: { ...this.watch.owners.counters, lost: this.watch.kernelCounters()?.lost ?? 0 }, cgroups: { ...this.resolver.counters },
    };
  }

  close(): void {
    this.flush();
    this.watch.close();
  }

  /** Sets what the owners know of the record's ends; true when both are known. */
  private mark(r: FlowRecord): boolean {
    const ends = this.watch.owners.ends(r.src, r.dst, r.end);
    // src is the client (it connected), dst the server (it accepted): docs/flow-record.md.
    if (ends?.client && !r.src.process) {
      r.src.process = this.process(ends.client);
      this.stats.ends++;
    }
    if (ends?.server && !r.dst.process) {
      r.dst.process = this.process(ends.server);
      this.stats.ends++;
    }
    return r.src.process !== undefined && r.dst.process !== undefined;
  }

  private recheck(all: boolean): void {
    const now = performance.now();
    // A timer this late means the thread was busy (a large API answer): the owners' events of that
    // time may still wait behind this timer in the event loop, so nothing expires until the next round.
    const late = now - this.lastCheck > 3 * RECHECK_MS;
    this.lastCheck = now;
    const keep: Held[] = [];
    for (const h of this.held) {
      if (this.mark(h.r)) h.release(h.r);
      else if (all || (h.deadline <= now && !late)) this.out(h);
      else keep.push(h);
    }
    this.held = keep;
    if (keep.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private out(h: Held): void {
    this.stats.unknownEnd++;
    h.release(h.r);
  }

  private process(o: ConnectionOwner): PeerProcess {
    const p: PeerProcess = { pid: o.pid, comm: o.comm };
    if (!o.cgroupId) return p;
    const c = this.resolver.resolve(o.cgroupId, o.pid);
    if (c.containerId) p.containerId = c.containerId;
    if (c.podUid) p.podUid = c.podUid;
    return p;
  }
}
