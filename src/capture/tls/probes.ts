/**
 * openTlsProbes: OpenSSL and Go crypto/tls plaintext from uprobes as a stream of TlsChunks (issue 17).
 *
 * One chunk is one ring-buffer data event: the plaintext of one SSL_read/SSL_write call, or a
 * 16 KiB part of a longer one (`offset` says where it starts within the call, `length` is the
 * call's true byte count; past 128 KiB per call the bytes are not copied and `truncated` is set).
 * Chunks of one connection and direction arrive in call order; consumers concatenate `data`.
 *
 * Node's TLS runs on memory BIOs, so the fd of an SSL_write is only known when libuv writes the
 * ciphertext just after it returns: such a chunk (fd -1) is held until the bind event for its SSL*
 * arrives, or `holdMs` passes, and later chunks of the same SSL* wait behind it to keep order.
 *
 * Go programs (crypto/tls linked in, Go 1.17+, x86-64) get an entry probe on (*tls.Conn).Write and
 * Read, a probe on each of their RET instructions (no uretprobes: Go moves stacks), and one on
 * Close (the session's end); their chunks say library 'go' and `ssl` is the *tls.Conn.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import {
  ADDON_PATH, BPF_OBJECT_PATH, bpfStatsEnabled, loadAddon, tlsProbesUnavailable, type AddonCounters, type BpfAddon, type BpfHandle, type ProgramCost,
} from './addon.js';
import { ConnResolver, type ConnCounters, type TcpTuple } from './conn.js';
import { inspectElf } from './elf.js';
import { TlsEventKind, parseBatch, type FdSource, type RawTlsEvent, type TlsLibrary } from './events.js';
import type { GoTlsInfo } from './goelf.js';
import {
  describeTarget, fileIdentity, findTlsTargets, goTarget, goTls, processFiles, type TlsTarget, type UnprobeableTarget,
} from './targets.js';

export interface TlsChunk {
  pid: number;
  tid: number;
  /** The calling thread's name (task comm, 15 bytes at most). */
  comm: string;
  cgroupId: number;
  /** egress: the process wrote it (SSL_write); ingress: it read it (SSL_read). */
  direction: 'egress' | 'ingress';
  /** Epoch seconds, from the kernel's CLOCK_MONOTONIC stamp at the call's return. */
  time: number;
  /** The SSL* as hex: with pid, it names one TLS session. */
  ssl: string;
  /** The socket's fd in `pid`, -1 when unknown. */
  fd: number;
  fdSource: FdSource;
  /** The plaintext (this event's part of the call). */
  data: Buffer;
  /** The call's byte count: more than data.length when split or truncated. */
  length: number;
  /** Where `data` starts within the call's bytes. */
  offset: number;
  /** The call moved more than the per-call copy limit: bytes past it were not copied. */
  truncated: boolean;
  /**
   * The TCP connection, from the process's side: read in the kernel from the fd's socket, else
   * from /proc when the chunk reached JS; undefined when the fd is unknown or was closed by then.
   */
  connection?: TcpTuple;
  /** openssl: SSL_read/SSL_write (ssl is an SSL*); go: crypto/tls (ssl is a *tls.Conn). */
  library: TlsLibrary;
  /**
   * The process's side of the TCP connection: 'server' when its local port is one it listens on
   * (/proc/<pid>/net/tcp{,6}, looked at on the session's first chunk), else 'client'; undefined
   * when the connection is not known. Who writes first does not tell: Go's HTTP/2 server sends its
   * SETTINGS before the client's preface arrives.
   */
  side?: 'client' | 'server';
}

/**
 * A TLS session is over: the process called SSL_free on it (the library's own end, whatever BIO
 * carried the bytes), or Go's (*tls.Conn).Close. Its chunks have all been emitted before this.
 */
export interface TlsEnd {
  library: TlsLibrary;
  pid: number;
  /** The SSL* as hex, as in TlsChunk. */
  ssl: string;
  /** Epoch seconds of the SSL_free call. */
  time: number;
  comm: string;
  /** The fd the probes had tied to the SSL*, -1 if none. */
  fd: number;
  /** Its socket as read in the kernel when the fd became known, if it was. */
  connection?: TcpTuple;
}

/**
 * A process that made probed TLS calls is gone (its thread-group leader exited, SIGKILL included):
 * every session of `pid` is over, including those never ended by SSL_free or Close. Chunks of the
 * process have all been emitted before this.
 */
export interface TlsExit {
  pid: number;
  /** Epoch seconds of the exit. */
  time: number;
  comm: string;
}

/** A file attached after the first scan, because a process ran a program that uses it. */
export interface LateAttach extends AttachResult {
  /** The process whose exec (or mappings after it) showed the file. */
  trigger: { pid: number; comm: string };
}

export type TlsTargetSpec = string | { path: string; pid?: number };

export interface TlsProbeOptions {
  /** 'auto' (default): every libssl.so mapped now and every binary with OpenSSL inside. */
  targets?: 'auto' | TlsTargetSpec[];
  /** Probe one process only (default: every process using the files). */
  pid?: number;
  /** Ring-buffer size in bytes, a power of two (default 16 MiB). */
  ringBytes?: number;
  /** How long a chunk waits for its fd (Node's SSL_write), ms. Default 50. */
  holdMs?: number;
  /** Close on SIGTERM/SIGINT (default true); the signal is raised again when nothing else listens. */
  handleSignals?: boolean;
  /** Resolve 4-tuples from /proc (default true). */
  resolveConnections?: boolean;
  /**
   * Watch sched_process_exec and attach to new files with OpenSSL inside (a new binary, a libssl
   * of a container started later). Default: on with targets 'auto', off with a list.
   */
  watchExec?: boolean;
}

export interface AttachResult {
  path: string;
  pid: number;
  attached: string[];
  failed: { function: string; message: string }[];
}

export interface TlsProbeCounters extends AddonCounters {
  chunks: number;
  /** Chunks whose 4-tuple the kernel read from the socket when the fd became known. */
  kernelTuples: number;
  /** The /proc fallback for the others (fd known, socket not read in the kernel). */
  connections: ConnCounters;
  /** Chunks emitted with fd -1 after waiting holdMs. */
  heldTimeouts: number;
  /** Session ends (SSL_free, Go's Close) emitted. */
  ends: number;
  /** Exits of processes with probed TLS calls emitted. */
  exits: number;
  /** Execs seen (sched_process_exec), and files attached because of one. */
  execs: number;
  lateAttached: number;
  /** Mapping re-checks after an exec not made because too many were pending. */
  execChecksSkipped: number;
}

/** After an exec, a process's mappings are looked at again then (ms): the loader maps libssl after exec, dlopen later. */
const EXEC_RECHECK_MS = [100, 1000];
const MAX_PENDING_CHECKS = 512;

/** TLS uprobes cannot run here; `reasons` says each thing missing. */
export class TlsProbesUnavailableError extends Error {
  constructor(readonly reasons: string[]) {
    super(`TLS uprobes unavailable: ${reasons.join('; ')}`);
    this.name = 'TlsProbesUnavailableError';
  }
}

/**
 * Emits 'chunk' (TlsChunk), 'end' (TlsEnd), 'exit' (TlsExit), 'attach' (LateAttach: a file probed after an exec),
 * 'unprobeable' (UnprobeableTarget found after an exec) and 'close', and is async-iterable over
 * its chunks.
 */
export class TlsProbes extends EventEmitter {
  readonly attached: AttachResult[] = [];
  readonly unprobeable: UnprobeableTarget[] = [];
  private closed = false;
  private chunks = 0;
  private heldTimeouts = 0;
  private kernelTuples = 0;
  private ends = 0;
  private exits = 0;
  private execs = 0;
  private lateAttached = 0;
  private execChecksSkipped = 0;
  private pendingChecks = 0;
  /** `${dev}:${ino}@${pid}` → the attach made for that file (a uprobe belongs to the inode: never twice). */
  private readonly files = new Map<string, AttachResult>();
  /** Files looked at after an exec that hold no OpenSSL (dev:ino), so they are not parsed again. */
  private readonly notOpenssl = new Set<string>();
  private readonly watchExec: boolean;
  private readonly conns = new ConnResolver();
  /** `${pid}:${ssl}` → chunks waiting for their fd. */
  private readonly held = new Map<string, { since: number; chunks: TlsChunk[] }>();
  /** `${pid}:${ssl}` → the process's side of the session's connection. */
  private readonly sides = new Map<string, 'client' | 'server'>();
  private holdTimer: NodeJS.Timeout | undefined;
  private readonly epochOffsetNs: bigint;
  private readonly signalHandlers: [NodeJS.Signals, () => void][] = [];
  private readonly onExit = () => this.close();
  private readonly handle: BpfHandle;

  /** Use openTlsProbes(). */
  constructor(private readonly addon: BpfAddon, private readonly opts: TlsProbeOptions) {
    super();
    const [rt, mono] = addon.clocks();
    this.epochOffsetNs = rt - mono;
    this.watchExec = opts.watchExec ?? (!opts.targets || opts.targets === 'auto');
    this.handle = addon.open(BPF_OBJECT_PATH, opts.ringBytes ?? 16 << 20, (b) => this.onBatch(b));
    process.once('exit', this.onExit);
    if (opts.handleSignals !== false) {
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        const h = () => {
          this.close();
          if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
        };
        process.once(sig, h);
        this.signalHandlers.push([sig, h]);
      }
    }
  }

  /**
   * Put the probes on one more file (a libssl.so, a binary with OpenSSL inside, or a Go program
   * with crypto/tls: `go` when already inspected, else the file is looked at). A file already
   * attached for the same pid (the same device and inode, by whatever path) is not attached again:
   * its first result is returned.
   */
  attach(path: string, pid = this.opts.pid ?? -1, go?: GoTlsInfo): AttachResult {
    if (this.closed) throw new Error('the TLS probes are closed');
    const id = `${fileIdentity(path) ?? path}@${pid}`;
    const done = this.files.get(id);
    if (done) return done;
    const goInfo = go ?? goTls(path);
    const res: AttachResult = goInfo && !goInfo.reason ? this.attachGo(path, pid, goInfo) : this.attachOpenssl(path, pid);
    this.attached.push(res);
    this.files.set(id, res);
    return res;
  }

  private attachOpenssl(path: string, pid: number): AttachResult {
    const r = this.addon.attach(this.handle, path, pid);
    return { path, pid, attached: r.attached, failed: r.failed.map(([f, m]) => ({ function: f, message: m })) };
  }

  /**
   * Go: every RET of Read (and of Write, without writeRecordLocked) before its entry (a call
   * entered before its RETs are probed would leave a stale entry behind, harmless but useless),
   * Close's entry, and writeRecordLocked's body. A function counts as attached when all of its
   * probes are.
   */
  private attachGo(path: string, pid: number, go: GoTlsInfo): AttachResult {
    const entry: Record<string, string> = {
      'crypto/tls.(*Conn).Write': 'go_write_enter', 'crypto/tls.(*Conn).Read': 'go_read_enter', 'crypto/tls.(*Conn).Close': 'go_close_enter',
    };
    const res: AttachResult = { path, pid, attached: [], failed: [] };
    // What is written is taken from writeRecordLocked when the build has it (wire order, one probe
    // per record); Write's entry and RETs only when it does not (goelf.ts says why).
    const byRecord = go.functions.some((f) => f.name === 'crypto/tls.(*Conn).writeRecordLocked');
    for (const f of go.functions) {
      if (byRecord && f.name === 'crypto/tls.(*Conn).Write') continue;
      const specs = f.name === 'crypto/tls.(*Conn).writeRecordLocked' ? [{ program: 'go_write_record', offset: f.body }]
        : [...(f.name === 'crypto/tls.(*Conn).Close' ? [] : f.rets.map((offset) => ({ program: 'go_tls_ret', offset }))), { program: entry[f.name]!, offset: f.probe }];
      const r = this.addon.attachAt(this.handle, path, pid, specs);
      if (!r.failed.length) res.attached.push(f.name);
      for (const [label, message] of r.failed) res.failed.push({ function: `${f.name} ${label}`, message });
    }
    return res;
  }

  /** Whether a file (by device and inode) has been attached for this pid. */
  isAttached(path: string, pid = this.opts.pid ?? -1): boolean {
    return this.files.has(`${fileIdentity(path) ?? path}@${pid}`);
  }

  counters(): TlsProbeCounters {
    const base = this.closed ? this.last : this.addon.counters(this.handle);
    return {
      ...base, chunks: this.chunks, kernelTuples: this.kernelTuples, connections: { ...this.conns.counters }, heldTimeouts: this.heldTimeouts,
      ends: this.ends, exits: this.exits, execs: this.execs, lateAttached: this.lateAttached, execChecksSkipped: this.execChecksSkipped,
    };
  }

  /**
   * The programs' kernel-side cost so far: run_time_ns and run_cnt of each (by name), counted by
   * the kernel only while kernel.bpf_stats_enabled is on. `statsEnabled` false (with `reason`)
   * says the figures stopped moving, not that the programs ran for free. This time is not charged
   * to this process's CPU time (process.cpuUsage) nor to its cgroup: it runs in the probed
   * processes' context. After close(), no programs.
   */
  kernelCost(): { statsEnabled: boolean; reason?: string; programs: ProgramCost[] } {
    const stats = bpfStatsEnabled();
    return { statsEnabled: stats.enabled, ...(stats.reason ? { reason: stats.reason } : {}), programs: this.closed ? [] : this.addon.kernelCost(this.handle) };
  }

  private last: AddonCounters = { events: 0, bytes: 0, batches: 0, droppedAtClose: 0, lost: 0, calls: 0, truncated: 0, readFail: 0, links: 0 };

  /** Detach everything (idempotent). Chunks still held are emitted first. */
  close(): void {
    if (this.closed) return;
    this.last = this.addon.counters(this.handle);
    this.closed = true;
    this.addon.close(this.handle);
    this.last.links = 0;
    this.flushHeld(true);
    if (this.holdTimer) clearInterval(this.holdTimer);
    process.removeListener('exit', this.onExit);
    for (const [sig, h] of this.signalHandlers) process.removeListener(sig, h);
    this.emit('close');
  }

  /** Chunks as an async iterator, ending at close(). */
  async *[Symbol.asyncIterator](): AsyncGenerator<TlsChunk> {
    const queue: TlsChunk[] = [];
    let wake: (() => void) | undefined;
    const onChunk = (c: TlsChunk) => {
      queue.push(c);
      wake?.();
    };
    const onClose = () => wake?.();
    this.on('chunk', onChunk);
    this.on('close', onClose);
    try {
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (this.closed) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('chunk', onChunk);
      this.off('close', onClose);
    }
  }

  private onBatch(batch: Buffer): void {
    parseBatch(batch, (e) => this.onEvent(e));
  }

  private onEvent(e: RawTlsEvent): void {
    if (e.kind === TlsEventKind.exec) {
      this.onExec(e.pid, e.comm);
      return;
    }
    if (e.kind === TlsEventKind.exit) {
      // What of the process still waits for its fd goes first: the exit comes after all of it.
      for (const [key, h] of this.held) {
        if (!key.startsWith(`${e.pid}:`)) continue;
        this.held.delete(key);
        for (const c of h.chunks) this.deliver(c);
      }
      for (const key of this.sides.keys()) if (key.startsWith(`${e.pid}:`)) this.sides.delete(key);
      this.exits++;
      const exit: TlsExit = { pid: e.pid, time: Number(e.tsNs + this.epochOffsetNs) / 1e9, comm: e.comm };
      this.emit('exit', exit);
      return;
    }
    const ssl = `0x${e.ssl.toString(16)}`;
    const key = `${e.pid}:${ssl}`;
    if (e.kind === TlsEventKind.end) {
      // Whatever of this session still waits for its fd goes first: the end comes after all of it.
      const h = this.held.get(key);
      if (h) {
        this.held.delete(key);
        for (const c of h.chunks) this.deliver(c);
      }
      this.sides.delete(key);
      this.ends++;
      const end: TlsEnd = { library: e.library, pid: e.pid, ssl, time: Number(e.tsNs + this.epochOffsetNs) / 1e9, comm: e.comm, fd: e.fd };
      if (e.connection) end.connection = e.connection;
      this.emit('end', end);
      return;
    }
    if (e.kind === TlsEventKind.bind) {
      const h = this.held.get(key);
      if (h) {
        this.held.delete(key);
        for (const c of h.chunks) {
          if (c.fd < 0) {
            c.fd = e.fd;
            c.fdSource = 'after-write';
            if (e.connection && !c.connection) c.connection = e.connection;
          }
          this.deliver(c);
        }
      }
      return;
    }
    if (e.kind !== TlsEventKind.data) return;
    const chunk: TlsChunk = {
      pid: e.pid, tid: e.tid, comm: e.comm, cgroupId: Number(e.cgroupId), direction: e.direction,
      time: Number(e.tsNs + this.epochOffsetNs) / 1e9, ssl, fd: e.fd, fdSource: e.fdSource, data: e.data,
      length: e.total, offset: e.offset, truncated: e.truncated, library: e.library,
    };
    if (e.connection) chunk.connection = e.connection;
    const waiting = this.held.get(key);
    if (waiting) {
      waiting.chunks.push(chunk);
      return;
    }
    // Only OpenSSL's memory BIOs (Node) bind an fd after the data: Go's chunks have no bind event to wait for.
    if (chunk.fd < 0 && chunk.direction === 'egress' && chunk.library === 'openssl' && !this.closed) {
      this.held.set(key, { since: Date.now(), chunks: [chunk] });
      this.holdTimer ??= setInterval(() => this.flushHeld(false), Math.max(5, (this.opts.holdMs ?? 50) / 2)).unref();
      return;
    }
    this.deliver(chunk);
  }

  /**
   * A process ran a new program: its executable may link OpenSSL in (a node at another path, a
   * static server), and the loader or dlopen may map a libssl not probed yet (a container's). The
   * executable is looked at now, the mappings again after EXEC_RECHECK_MS. New files are attached
   * for every process (pid -1), so later runs of the same file are covered without looking.
   */
  private onExec(pid: number, comm: string): void {
    this.execs++;
    if (!this.watchExec || this.closed || pid === process.pid) return;
    this.lookAt(pid, comm, false);
    for (const ms of EXEC_RECHECK_MS) {
      if (this.pendingChecks >= MAX_PENDING_CHECKS) {
        this.execChecksSkipped++;
        continue;
      }
      this.pendingChecks++;
      setTimeout(() => {
        this.pendingChecks--;
        if (!this.closed) this.lookAt(pid, comm, true);
      }, ms).unref();
    }
  }

  private lookAt(pid: number, comm: string, libsslOnly: boolean): void {
    const forPid = this.opts.pid ?? -1;
    if (this.notOpenssl.size > 10_000) this.notOpenssl.clear();
    for (const f of processFiles(pid, { libsslOnly })) {
      if (this.files.has(`${f.key}@${forPid}`) || this.notOpenssl.has(f.key)) continue;
      let go: GoTlsInfo | undefined;
      if (f.kind === 'exe') {
        const info = inspectElf(f.path);
        if (info.reason || !(info.functions.includes('SSL_write') || info.functions.includes('SSL_write_ex'))) {
          go = goTls(f.path);
          const d = go && goTarget(go, [pid]);
          if (!d || 'reason' in d) {
            this.notOpenssl.add(f.key);
            if (d) {
              this.unprobeable.push(d);
              this.emit('unprobeable', d);
            }
            continue;
          }
        }
      } else {
        const d = describeTarget(f.path, [pid]);
        if ('reason' in d) {
          this.notOpenssl.add(f.key);
          this.unprobeable.push(d);
          this.emit('unprobeable', d);
          continue;
        }
      }
      let r: AttachResult;
      try {
        r = this.attach(f.path, forPid, go);
      } catch (e) {
        r = { path: f.path, pid: forPid, attached: [], failed: [{ function: '*', message: (e as Error).message }] };
      }
      if (!r.attached.length) {
        const u = { path: f.path, pids: [pid], reason: `no uprobe attached: ${r.failed.map((x) => `${x.function}: ${x.message}`).join('; ')}` };
        this.unprobeable.push(u);
        this.emit('unprobeable', u);
        continue;
      }
      this.lateAttached++;
      const late: LateAttach = { ...r, trigger: { pid, comm } };
      this.emit('attach', late);
    }
  }

  private flushHeld(all: boolean): void {
    const limit = Date.now() - (this.opts.holdMs ?? 50);
    for (const [key, h] of this.held) {
      if (!all && h.since > limit) continue;
      this.held.delete(key);
      this.heldTimeouts++;
      for (const c of h.chunks) this.deliver(c);
    }
  }

  private deliver(c: TlsChunk): void {
    if (c.connection) this.kernelTuples++;
    else if (this.opts.resolveConnections !== false) {
      const t = this.conns.resolve(c.pid, c.fd, c.ssl);
      if (t) c.connection = t;
    }
    if (c.connection && this.opts.resolveConnections !== false) {
      const key = `${c.pid}:${c.ssl}`;
      let side = this.sides.get(key);
      if (!side) {
        side = listensOn(c.pid, c.connection.local.port) ? 'server' : 'client';
        if (this.sides.size > 100_000) this.sides.clear();
        this.sides.set(key, side);
      }
      c.side = side;
    }
    this.chunks++;
    this.emit('chunk', c);
  }
}

/**
 * Whether `pid` has a TCP socket listening on `port` (in its own network namespace). By port only:
 * a client whose ephemeral port equals one the same process listens on elsewhere is misread.
 */
function listensOn(pid: number, port: number): boolean {
  const want = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const f of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${f}`, 'latin1');
    } catch {
      continue;
    }
    // "  sl  local_address rem_address   st …": st 0A is TCP_LISTEN.
    for (const line of text.split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && cols[1]?.endsWith(want)) return true;
    }
  }
  return false;
}

/**
 * Load and attach the TLS probes. Throws TlsProbesUnavailableError naming everything missing (no
 * addon built, no BTF, tracefs or bpffs not mounted, not root / no CAP_BPF+CAP_PERFMON). Files that
 * cannot be probed are listed in `unprobeable` with the reason, not thrown.
 */
export function openTlsProbes(opts: TlsProbeOptions = {}): TlsProbes {
  const reasons = tlsProbesUnavailable();
  const addon = loadAddon();
  if (reasons.length || !addon) throw new TlsProbesUnavailableError(reasons.length ? reasons : [`the eBPF addon did not load (${ADDON_PATH})`]);
  const probes = new TlsProbes(addon, opts);
  try {
    const wanted: { path: string; pid: number; go?: GoTlsInfo }[] = [];
    if (!opts.targets || opts.targets === 'auto') {
      const scan = findTlsTargets();
      probes.unprobeable.push(...scan.unprobeable);
      for (const t of scan.targets) wanted.push({ path: t.path, pid: opts.pid ?? -1, ...(t.go ? { go: t.go } : {}) });
    } else {
      for (const spec of opts.targets) {
        const path = typeof spec === 'string' ? spec : spec.path;
        const pid = typeof spec === 'string' ? opts.pid ?? -1 : spec.pid ?? opts.pid ?? -1;
        const d = describeTarget(path);
        if ('reason' in d) probes.unprobeable.push(d);
        else wanted.push({ path: (d as TlsTarget).path, pid, ...((d as TlsTarget).go ? { go: (d as TlsTarget).go } : {}) });
      }
    }
    for (const w of wanted) {
      const r = probes.attach(w.path, w.pid, w.go);
      if (!r.attached.length) probes.unprobeable.push({ path: w.path, pids: [], reason: `no uprobe attached: ${r.failed.map((f) => `${f.function}: ${f.message}`).join('; ')}` });
    }
  } catch (e) {
    probes.close();
    throw e;
  }
  return probes;
}
