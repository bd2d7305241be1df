import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/*
 * One writer per store directory. Two agents on one data dir would both append to the same
 * segment numbers, and each one's retention would delete files the other is writing.
 *
 * Why a lock file and not an npm package or flock(2): Node has no flock, and the packages that add
 * it are native addons (a build step this project keeps optional). proper-lockfile, the well-kept
 * pure-JS one, judges staleness by mtime, which needs a refresh timer and takes over a live
 * writer that stalls (a long fsync, a stopped process); a reused pid fools a pid-only check. Here
 * the lock names its holder by what tells a process apart for good: the boot id, the pid and the
 * process start time (field 22 of /proc/<pid>/stat). A lock is stale when its boot id is not this
 * boot's, its pid is gone, or its pid now belongs to a process that started at another time.
 *
 * Taking over a stale lock must not let two racing openers both win, and Linux has no atomic
 * "replace this file only if it is still the stale one". So the lock is a generation:
 * `writer-<n>.lock`, the highest n holding. A lock is created under the next number with link(2)
 * from a fully written, fsynced temporary — atomic and exclusive, and never seen half written —
 * so of two openers that judged generation n stale only one creates n+1. A very slow opener may
 * create an old number after newer ones were made and their predecessors removed; it then finds a
 * higher generation and backs off. The winner removes the older generations.
 */

export interface LockHolder {
  pid: number;
  /** Start time of the process, clock ticks since boot (field 22 of /proc/<pid>/stat); absent without /proc. */
  start?: string;
  /** /proc/sys/kernel/random/boot_id; absent without it. */
  boot?: string;
  /** When the lock was taken, epoch seconds. */
  since: number;
  /** Tells this lock from any other, so a release removes only its own. */
  nonce: string;
}

/** The data dir is held by a live writer. Names the dir and the holder. */
export class StoreLockedError extends Error {
  readonly code = 'ESTORELOCKED';

  constructor(readonly dir: string, readonly holder: LockHolder, readonly file: string) {
    const who = holder.pid === process.pid && holder.start === processStart(process.pid) ? ' (this process)' : '';
    super(`data dir ${dir} is in use by another writer: process ${holder.pid}${who}, since ${iso(holder.since)} (${file}); one writer per data dir: stop that one or choose another data dir`);
    this.name = 'StoreLockedError';
  }
}

const LOCK = /^writer-(\d{10})\.lock$/;
const TEMP = /^writer-(\d+)-[0-9a-f]+\.tmp$/;
/** Openers that keep losing races give up after this many tries; each try is a few syscalls. */
const TRIES = 50;

interface Found {
  gen: number;
  file: string;
  /** Undefined when the file is unreadable (or gone: released meanwhile). */
  holder?: LockHolder;
  gone?: boolean;
}

/** Locks held by this process, released on exit (a crash leaves them stale, which is handled). */
const held = new Set<StoreLock>();
let exitHook = false;

export class StoreLock {
  private released = false;

  private constructor(readonly dir: string, readonly file: string, readonly holder: LockHolder, readonly tookOver?: string) {}

  /**
   * Takes the writer lock of `dir`, taking over a stale one (`tookOver` then says whose and why).
   * Throws StoreLockedError while a live process holds it — this process too.
   */
  static acquire(dir: string): StoreLock {
    const boot = bootId();
    const holder: LockHolder = { pid: process.pid, start: processStart(process.pid), boot, since: Date.now() / 1000, nonce: randomBytes(8).toString('hex') };
    const tmp = join(dir, `writer-${process.pid}-${holder.nonce}.tmp`);
    try {
      const fd = openSync(tmp, 'wx');
      try {
        writeSync(fd, JSON.stringify(holder));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      // Without its code: a front door must not read this EACCES as one of its own (a port).
      unlinkQuiet(tmp);
      throw new Error(`data dir ${dir}: cannot take the writer lock: ${(e as Error).message}`);
    }
    try {
      for (let i = 0; i < TRIES; i++) {
        const top = newest(dir);
        if (top?.gone) continue; // released while we looked: look again
        let tookOver: string | undefined;
        if (top) {
          const why = staleness(top, boot);
          if (why === undefined) throw new StoreLockedError(dir, top.holder!, top.file);
          tookOver = `took over the writer lock ${top.file}${top.holder ? ` of process ${top.holder.pid} (since ${iso(top.holder.since)})` : ''}: ${why}`;
        }
        const file = lockName((top?.gen ?? 0) + 1);
        try {
          linkSync(tmp, join(dir, file));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue; // another opener got this number: judge it
          throw new Error(`data dir ${dir}: cannot take the writer lock (${file}): ${(e as Error).message}`);
        }
        if (newest(dir)?.file !== file) {
          // A higher generation exists: this number was one that had already been superseded.
          unlinkQuiet(join(dir, file));
          continue;
        }
        removeOlder(dir, file);
        const lock = new StoreLock(dir, file, holder, tookOver);
        held.add(lock);
        if (!exitHook) {
          exitHook = true;
          process.on('exit', () => {
            for (const l of held) l.release();
          });
        }
        return lock;
      }
      throw new Error(`data dir ${dir}: cannot take the writer lock: it changed hands ${TRIES} times while trying`);
    } finally {
      unlinkQuiet(tmp);
    }
  }

  /**
   * Whether a live process holds `dir`'s writer lock (its holder), without taking it: a reader
   * uses it to tell a segment being written from one a crash cut.
   */
  static holder(dir: string): LockHolder | undefined {
    const top = newest(dir);
    return top && !top.gone && staleness(top, bootId()) === undefined ? top.holder : undefined;
  }

  /** Removes the lock file if it is still this lock's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    const path = join(this.dir, this.file);
    try {
      if (parse(readOr(path))?.nonce === this.holder.nonce) unlinkQuiet(path);
    } catch { /* the directory is gone or unreadable: nothing of ours to remove (this also runs at exit) */ }
  }
}

function lockName(gen: number): string {
  return `writer-${String(gen).padStart(10, '0')}.lock`;
}

/** The highest generation in `dir`, with its holder (undefined when unreadable). */
function newest(dir: string): Found | undefined {
  let top: Found | undefined;
  for (const f of readdirSync(dir)) {
    const m = LOCK.exec(f);
    if (m && (!top || Number(m[1]) > top.gen)) top = { gen: Number(m[1]), file: f };
  }
  if (top) {
    const text = readOr(join(dir, top.file));
    if (text === undefined) top.gone = true;
    else top.holder = parse(text);
  }
  return top;
}

/** Older generations, and temporaries of processes that are gone (a crash between write and link). */
function removeOlder(dir: string, mine: string): void {
  for (const f of readdirSync(dir)) {
    const t = TEMP.exec(f);
    if ((LOCK.test(f) && f < mine) || (t && !alive(Number(t[1])))) unlinkQuiet(join(dir, f));
  }
}

/** Why a lock no longer holds, or undefined when its holder is alive. */
function staleness(f: Found, boot: string | undefined): string | undefined {
  const h = f.holder;
  // Locks are written whole before they get their name: unreadable content was not written by a writer.
  if (!h) return 'the lock file is unreadable';
  if (h.boot !== undefined && boot !== undefined && h.boot !== boot) return 'it was taken before the last reboot';
  if (!alive(h.pid)) return `process ${h.pid} is gone`;
  const start = processStart(h.pid);
  if (h.start !== undefined && start !== undefined && start !== h.start) return `pid ${h.pid} now belongs to another process (it started at another time)`;
  return undefined;
}

function parse(text: string | undefined): LockHolder | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (!Number.isInteger(v.pid) || typeof v.since !== 'number' || typeof v.nonce !== 'string') return undefined;
    for (const k of ['start', 'boot'] as const) if (v[k] !== undefined && typeof v[k] !== 'string') return undefined;
    return v as LockHolder;
  } catch {
    return undefined;
  }
}

/** The file's text; undefined when it is gone. Any other failure (permissions) is thrown, naming it. */
function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path}: cannot read the writer lock: ${(e as Error).message}`);
  }
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch { /* already gone: another opener cleaned it */ }
}

/**
 * Whether the process runs on. One that is exiting does not: a zombie (exited, waiting for its
 * parent to reap it), one tearing itself down (PF_EXITING), or one with SIGKILL pending (killed,
 * not yet scheduled to die: a 256 MiB capture ring takes a while to unmap). kill(pid, 0) succeeds
 * on all three, and a supervisor that kills an agent and starts the next at once must not be told
 * that the dying one still holds the data dir.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists, as another user's process.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const f = statFields(pid);
  if (!f) return true; // no /proc: the signal check is all there is
  if (f[0] === 'Z' || f[0] === 'X' || (Number(f[6]) & PF_EXITING) !== 0) return false;
  return !killPending(pid);
}

/** include/linux/sched.h: set on a task at the start of do_exit. */
const PF_EXITING = 0x4;
const SIGKILL_BIT = 1n << 8n;

/** SIGKILL pending for the process (private or shared), from /proc/<pid>/status. */
function killPending(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return [...status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)].some((m) => (BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n);
  } catch {
    return false;
  }
}

/** Fields 3 onwards of /proc/<pid>/stat; undefined when gone or without /proc. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined when gone or without /proc. */
export function processStart(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function iso(t: number): string {
  return new Date(t * 1000).toISOString();
}
