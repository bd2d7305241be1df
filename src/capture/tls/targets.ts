/**
 * Which files to put the uprobes on: every libssl.so a running process maps (from
 * /proc/<pid>/maps), and every executable that defines SSL_write itself (OpenSSL linked in
 * statically: node). A process in another mount namespace (a container) is reached through
 * /proc/<pid>/root. Files are told apart by (device, inode), so one libssl.so.3 mapped by a
 * hundred processes is one target. Go programs that link crypto/tls in are targets too (kind 'go',
 * their functions and RETs found by goelf.ts). A file that cannot be probed says why in words.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { inspectElf } from './elf.js';
import { inspectGo, type GoTlsInfo } from './goelf.js';

export interface TlsTarget {
  /** The path the probes attach to (as this process sees it). */
  path: string;
  kind: 'libssl' | 'static' | 'go';
  /** The SSL_* functions the file defines; for Go, the crypto/tls functions found. */
  functions: string[];
  /** Processes seen using it (empty for a path given by hand). */
  pids: number[];
  /** A Go program: its version, and where its crypto/tls functions start and return. */
  go?: GoTlsInfo;
}

export interface UnprobeableTarget {
  path: string;
  pids: number[];
  reason: string;
}

export interface TargetScan {
  targets: TlsTarget[];
  unprobeable: UnprobeableTarget[];
}

const LIBSSL = /\/libssl\.so(\.[0-9.]+)?$/;

function listPids(procRoot: string): number[] {
  try {
    return readdirSync(procRoot).filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

/** A path inside a process's mount namespace, as this process can open it. */
function visiblePath(procRoot: string, pid: number, path: string): string {
  try {
    if (readlinkSync(`${procRoot}/${pid}/root`) === '/') return path;
  } catch {
    // fall through
  }
  return `${procRoot}/${pid}/root${path}`;
}

function fileKey(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/**
 * Every file worth probing on this host now. `selfPid` (default this process) is left out of
 * the static-binary scan unless `includeSelf`: probing the agent's own node would capture its
 * own TLS calls.
 */
export function findTlsTargets(opts: { procRoot?: string; includeSelf?: boolean } = {}): TargetScan {
  const procRoot = opts.procRoot ?? '/proc';
  const seen = new Map<string, { path: string; kind: 'libssl' | 'static' | 'go'; pids: number[] }>();
  const checkedExe = new Map<string, boolean>();
  const goExe = new Map<string, { info: GoTlsInfo; pids: number[] }>();
  for (const pid of listPids(procRoot)) {
    if (!opts.includeSelf && pid === process.pid) continue;
    let maps: string;
    try {
      maps = readFileSync(`${procRoot}/${pid}/maps`, 'utf8');
    } catch {
      continue; // gone, or a kernel thread
    }
    const files = new Set<string>();
    for (const line of maps.split('\n')) {
      const i = line.indexOf('/');
      if (i < 0) continue;
      const p = line.slice(i).replace(/ \(deleted\)$/, '');
      if (LIBSSL.test(p)) files.add(p);
    }
    for (const p of files) {
      const vp = visiblePath(procRoot, pid, p);
      const key = fileKey(vp) ?? vp;
      const t = seen.get(key) ?? { path: vp, kind: 'libssl' as const, pids: [] };
      t.pids.push(pid);
      seen.set(key, t);
    }
    let exe: string;
    try {
      exe = readlinkSync(`${procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, '');
    } catch {
      continue;
    }
    const vexe = visiblePath(procRoot, pid, exe);
    const key = fileKey(vexe) ?? vexe;
    let isStatic = checkedExe.get(key);
    if (isStatic === undefined) {
      const info = inspectElf(vexe);
      isStatic = info.functions.includes('SSL_write') || info.functions.includes('SSL_write_ex');
      checkedExe.set(key, isStatic);
      const go = isStatic ? undefined : goTls(vexe);
      if (go) goExe.set(key, { info: go, pids: [] });
    }
    goExe.get(key)?.pids.push(pid);
    if (isStatic) {
      const t = seen.get(key) ?? { path: vexe, kind: 'static' as const, pids: [] };
      t.pids.push(pid);
      seen.set(key, t);
    }
  }
  const targets: TlsTarget[] = [];
  const unprobeable: UnprobeableTarget[] = [];
  for (const t of seen.values()) {
    const info = inspectElf(t.path);
    if (info.reason) unprobeable.push({ path: t.path, pids: t.pids, reason: info.reason });
    else targets.push({ path: t.path, kind: t.kind, functions: info.functions, pids: t.pids });
  }
  for (const { info, pids } of goExe.values()) {
    const d = goTarget(info, pids);
    if ('reason' in d) unprobeable.push(d);
    else targets.push(d);
  }
  return { targets, unprobeable };
}

/**
 * A Go program that links crypto/tls in (probeable or not), or undefined: not Go, or Go without
 * crypto/tls (nothing of it to lose, so not listed as unprobeable).
 */
export function goTls(path: string): GoTlsInfo | undefined {
  const info = inspectGo(path);
  return info && info.reason !== 'no crypto/tls linked in' ? info : undefined;
}

/** A Go program as a target, or why it is not one. */
export function goTarget(info: GoTlsInfo, pids: number[]): TlsTarget | UnprobeableTarget {
  if (info.reason) return { path: info.path, pids, reason: `Go program${info.goVersion ? ` (${info.goVersion})` : ''}: ${info.reason}` };
  return { path: info.path, kind: 'go', functions: info.functions.map((f) => f.name), pids, go: info };
}

/** A file one process uses that may hold OpenSSL, as this process can open it. */
export interface ProcessFile {
  path: string;
  /** `${dev}:${ino}`: the file's identity (a uprobe belongs to the inode). */
  key: string;
  kind: 'libssl' | 'exe';
}

/**
 * The files of one process worth a look: its executable (OpenSSL may be linked in) and every
 * libssl.so it maps. Empty when the process is gone or cannot be read. Used on an exec: the
 * executable is there at once, a libssl only once the loader (or dlopen) has mapped it.
 */
export function processFiles(pid: number, opts: { procRoot?: string; libsslOnly?: boolean } = {}): ProcessFile[] {
  const procRoot = opts.procRoot ?? '/proc';
  const out: ProcessFile[] = [];
  const add = (p: string, kind: ProcessFile['kind']) => {
    const vp = visiblePath(procRoot, pid, p);
    const key = fileKey(vp);
    if (key && !out.some((f) => f.key === key)) out.push({ path: vp, key, kind });
  };
  if (!opts.libsslOnly) {
    try {
      add(readlinkSync(`${procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, ''), 'exe');
    } catch {
      // gone, or a kernel thread
    }
  }
  let maps = '';
  try {
    maps = readFileSync(`${procRoot}/${pid}/maps`, 'utf8');
  } catch {
    return out;
  }
  for (const line of maps.split('\n')) {
    const i = line.indexOf('/');
    if (i < 0) continue;
    const p = line.slice(i).replace(/ \(deleted\)$/, '');
    if (LIBSSL.test(p)) add(p, 'libssl');
  }
  return out;
}

/** A file's identity, `${dev}:${ino}`, or undefined when it cannot be stat'ed. */
export function fileIdentity(path: string): string | undefined {
  return fileKey(path);
}

/** A path given by hand: a target, or why it is not one. */
export function describeTarget(path: string, pids: number[] = []): TlsTarget | UnprobeableTarget {
  const info = inspectElf(path);
  if (info.reason) {
    const go = inspectGo(path);
    return go ? goTarget(go, pids) : { path, pids, reason: info.reason };
  }
  return { path, kind: LIBSSL.test(path) ? 'libssl' : 'static', functions: info.functions, pids };
}
