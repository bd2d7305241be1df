/**
 * The optional eBPF addon (native/build/tapwire_bpf.node, built by `npm run build:native`), and
 * why TLS uprobes cannot run in this process when they cannot. Like `cap`, it is never required:
 * nothing loads it until TLS probes are asked for, and offline use needs nothing native.
 */
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's face (native/addon.c). */
export interface BpfAddon {
  open(objectPath: string, ringBytes: number, onBatch: (batch: Buffer) => void): BpfHandle;
  attach(handle: BpfHandle, elfPath: string, pid: number): { attached: string[]; failed: [string, string][] };
  /** One uprobe per entry: a program of tls.bpf.c at a file offset. Labels are "program@0xoffset". */
  attachAt(handle: BpfHandle, elfPath: string, pid: number, probes: { program: string; offset: number }[]): { attached: string[]; failed: [string, string][] };
  counters(handle: BpfHandle): AddonCounters;
  close(handle: BpfHandle): void;
  /** Each loaded program's cumulative kernel time and runs (bpf_prog_info), by program name. */
  kernelCost(handle: BpfHandle): ProgramCost[];
  /** [CLOCK_REALTIME, CLOCK_MONOTONIC] in ns, read back to back. */
  clocks(): [bigint, bigint];
  /** libpcap's verdict for a tcpdump-syntax filter on raw IP packets; throws "filter: …" when it does not compile. */
  filterMatches(expr: string, packets: Buffer[]): boolean[];
  eventHeaderSize: number;
}

/** One BPF program's kernel-side cost since it was loaded (bpf_prog_info). */
export interface ProgramCost {
  /** The program's name in tls.bpf.c (ssl_read_leave, tp_write …). */
  name: string;
  /** Nanoseconds spent running it, summed over every CPU: counted only while bpf stats are on. */
  runTimeNs: number;
  /** Times it ran: counted only while bpf stats are on. */
  runCnt: number;
  /** Runs skipped because the program was already running on that CPU. */
  recursionMisses: number;
}

/** The sysctl that makes the kernel count each program's run_time_ns and run_cnt. */
export const BPF_STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/**
 * Whether kernel.bpf_stats_enabled is on, or why that is not known. A BPF_ENABLE_STATS fd held by
 * another process also makes the kernel count, without this sysctl showing it.
 */
export function bpfStatsEnabled(): { enabled: boolean; reason?: string } {
  try {
    const v = readFileSync(BPF_STATS_SYSCTL, 'utf8').trim();
    return v === '0' ? { enabled: false, reason: 'kernel.bpf_stats_enabled is 0: run_time_ns and run_cnt are not counted (sysctl -w kernel.bpf_stats_enabled=1)' } : { enabled: true };
  } catch (e) {
    return { enabled: false, reason: `cannot read ${BPF_STATS_SYSCTL} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
}

/** An opaque handle to one loaded object and its links. */
export type BpfHandle = { readonly __brand: 'BpfHandle' };

export interface AddonCounters {
  /** Ring-buffer records handed to JS (data and bind events). */
  events: number;
  /** Plaintext bytes in them. */
  bytes: number;
  /** Batches (calls into JS). */
  batches: number;
  /** Batches dropped because JS had not taken the previous ones when the probes closed. */
  droppedAtClose: number;
  /** Events the kernel could not put in the ring buffer (full): the loss counter. */
  lost: number;
  /** SSL calls that moved ≥ 1 byte. */
  calls: number;
  /** Calls longer than the per-call copy limit (8 × 16 KiB): their tail was not copied. */
  truncated: number;
  /** Plaintext the kernel could not read from the process (page not present). */
  readFail: number;
  /** BPF links held (tracepoints + uprobes). */
  links: number;
}

/** The repository root, from src/capture/tls or dist/capture/tls alike. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const NATIVE_BUILD_DIR = join(root, 'native', 'build');
export const ADDON_PATH = join(NATIVE_BUILD_DIR, 'tapwire_bpf.node');
export const BPF_OBJECT_PATH = join(NATIVE_BUILD_DIR, 'tls.bpf.o');
export const BUILD_HINT = 'apt-get install clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config libpcap-dev, then npm run build:native';

let addon: BpfAddon | undefined;
let addonError: string | undefined;

/** The addon, or undefined (see addonLoadError()). */
export function loadAddon(): BpfAddon | undefined {
  if (!addon && addonError === undefined) {
    if (!existsSync(ADDON_PATH) || !existsSync(BPF_OBJECT_PATH)) {
      addonError = `the eBPF addon is not built (no ${existsSync(ADDON_PATH) ? BPF_OBJECT_PATH : ADDON_PATH}): ${BUILD_HINT}`;
    } else {
      try {
        addon = createRequire(import.meta.url)(ADDON_PATH) as BpfAddon;
      } catch (e) {
        addonError = `the eBPF addon does not load (${(e as Error).message.split('\n')[0]}): rebuild it with npm run build:native`;
      }
    }
  }
  return addon;
}

export function addonLoadError(): string | undefined {
  loadAddon();
  return addonError;
}

export const CAP_NET_ADMIN = 12n;
export const CAP_SYS_ADMIN = 21n;
export const CAP_PERFMON = 38n;
export const CAP_BPF = 39n;

/** The effective capability set of this process (from /proc/self/status). */
export function effectiveCaps(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

function mountedTypes(): Set<string> {
  try {
    return new Set(readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[2] ?? ''));
  } catch {
    return new Set();
  }
}

/**
 * Every reason TLS uprobes cannot run here (empty when they can be tried), each naming what is
 * missing and how to get it: the addon, BTF, tracefs (libbpf finds the syscall tracepoints' ids
 * there), and the privileges (root, or CAP_BPF + CAP_PERFMON). bpffs is not among them: nothing
 * is pinned.
 */
export function tlsProbesUnavailable(): string[] {
  const reasons: string[] = [];
  if (process.platform !== 'linux') return [`eBPF needs Linux (this is ${process.platform})`];
  const err = addonLoadError();
  if (err) reasons.push(err);
  if (!existsSync('/sys/kernel/btf/vmlinux')) reasons.push('no kernel BTF (/sys/kernel/btf/vmlinux): the kernel needs CONFIG_DEBUG_INFO_BTF=y');
  const types = mountedTypes();
  if (!types.has('tracefs') && !existsSync('/sys/kernel/tracing/events/syscalls')) {
    reasons.push('tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing');
  }
  // bpffs is not needed: nothing is pinned (checked here by loading and attaching in a mount
  // namespace without it). tracefs is: libbpf reads the syscall tracepoints' ids from it.
  const caps = effectiveCaps();
  const has = (c: bigint) => ((caps >> c) & 1n) === 1n;
  const who = `uid ${process.getuid?.() ?? '?'}, CapEff ${caps.toString(16)}`;
  if (!has(CAP_SYS_ADMIN) && !(has(CAP_BPF) && has(CAP_PERFMON))) {
    reasons.push(`not privileged: run as root or with CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON (${who})`);
  } else if (!has(CAP_SYS_ADMIN)) {
    // Measured on 6.18 (test/agent/tls-caps.test.ts): every uprobe attach fails with EACCES
    // without it, whatever else the process holds.
    reasons.push(`creating a uprobe needs CAP_SYS_ADMIN: kernels since 2025 no longer accept CAP_PERFMON for it ("perf: Require CAP_SYS_ADMIN for uprobes") (${who})`);
  }
  const tracefsDenied = tracepointIdDenied();
  if (tracefsDenied) reasons.push(`cannot read tracepoint ids in tracefs (${tracefsDenied}): it is root-only; run as root or with CAP_DAC_READ_SEARCH`);
  return reasons;
}

/** tracefs keeps its event ids root-only (mode 0700); libbpf must read them to attach a tracepoint. */
function tracepointIdDenied(): string | undefined {
  // open(), not access(): access() checks the real uid without the file capabilities a pod's node has.
  try {
    closeSync(openSync('/sys/kernel/tracing/events/sched/sched_process_exec/id', 'r'));
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? code : undefined;
  }
}

/** Whether a file can be opened for reading (uprobes are attached by path). */
export function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
