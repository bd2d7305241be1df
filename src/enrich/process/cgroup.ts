/**
 * cgroup id → the container it is, for the processes at a connection's ends. The kernel's cgroup
 * id (bpf_get_current_cgroup_id(), the cgroup v2 hierarchy) is the inode number of the cgroup's
 * directory in the cgroup2 mount (kernfs node id: Documentation/admin-guide/cgroup-v2.rst, and
 * cgroup_id() in include/linux/cgroup.h), so a cgroup is found by its inode: first through the
 * process's own /proc/<pid>/cgroup ("0::<path>"), checked by stat, else by a walk of the mount
 * (a process that exited, or moved), at most once a second. Answers are kept per cgroup id.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { containerOfPath, type ContainerRef } from './container.js';

export interface CgroupResolverOptions {
  /** The cgroup2 mount (default: read from /proc/self/mountinfo; none: only /proc/<pid>/cgroup paths, unchecked). */
  root?: string;
  procRoot?: string;
  /** Cgroups remembered, at most (default 8192). */
  maxEntries?: number;
  /** The least time between two walks of the mount (default 1000 ms). */
  rescanMs?: number;
  /** The most directories one walk looks at (default 100 000). */
  maxWalk?: number;
}

export interface CgroupResolverCounters { lookups: number; hits: number; procReads: number; walks: number; unresolved: number }

/** The cgroup2 mount point, from a mountinfo text (its fifth field, for filesystem type cgroup2). */
export function cgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post || post.split(' ')[0] !== 'cgroup2') continue;
    return pre.split(' ')[4]?.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** The cgroup v2 path of a /proc/<pid>/cgroup text ("0::/path"). */
export function unifiedPath(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('0::')) return line.slice(3);
  return undefined;
}

export class CgroupResolver {
  readonly root: string | undefined;
  readonly counters: CgroupResolverCounters = { lookups: 0, hits: 0, procReads: 0, walks: 0, unresolved: 0 };
  private readonly procRoot: string;
  private readonly max: number;
  private readonly rescanMs: number;
  private readonly maxWalk: number;
  private readonly known = new Map<number, ContainerRef>();
  private byInode: Map<number, string> | undefined;
  private walkedAt = -Infinity;
  /** The largest cgroup id the last walk met. */
  private walkedMax = -Infinity;

  constructor(o: CgroupResolverOptions = {}) {
    this.procRoot = o.procRoot ?? '/proc';
    this.root = 'root' in o ? o.root : mountOf(this.procRoot);
    this.max = o.maxEntries ?? 8192;
    this.rescanMs = o.rescanMs ?? 1000;
    this.maxWalk = o.maxWalk ?? 100_000;
  }

  /** The container of cgroup `cgroupId`, with `pid` a process seen in it; {} when it is none (the host's). */
  resolve(cgroupId: number, pid?: number): ContainerRef {
    this.counters.lookups++;
    const had = this.known.get(cgroupId);
    if (had) {
      this.counters.hits++;
      return had;
    }
    const path = (pid !== undefined ? this.fromProc(cgroupId, pid) : undefined) ?? this.fromWalk(cgroupId);
    if (path === undefined) {
      this.counters.unresolved++;
      return {};
    }
    const ref = containerOfPath(path);
    this.known.set(cgroupId, ref);
    if (this.known.size > this.max) this.known.delete(this.known.keys().next().value!);
    return ref;
  }

  private fromProc(cgroupId: number, pid: number): string | undefined {
    let path: string | undefined;
    try {
      this.counters.procReads++;
      path = unifiedPath(readFileSync(`${this.procRoot}/${pid}/cgroup`, 'utf8'));
    } catch {
      return undefined; // exited: the walk finds its cgroup if the cgroup is still there
    }
    if (path === undefined) return undefined;
    if (this.root === undefined) return path;
    try {
      return statSync(join(this.root, path)).ino === cgroupId ? path : undefined;
    } catch {
      return undefined;
    }
  }

  private fromWalk(cgroupId: number): string | undefined {
    if (this.root === undefined) return undefined;
    const now = performance.now();
    // A cgroup id above every one the last walk met belongs to a cgroup made since (kernfs gives
    // ids in increasing order): walk again at once, or a container started within rescanMs of the
    // last walk, whose process has already exited, would stay unnamed.
    if (!this.byInode?.has(cgroupId) && (now - this.walkedAt >= this.rescanMs || cgroupId > this.walkedMax)) {
      this.walkedAt = now;
      this.counters.walks++;
      this.byInode = walk(this.root, this.maxWalk);
      this.walkedMax = Math.max(cgroupId, ...this.byInode.keys());
    }
    return this.byInode?.get(cgroupId);
  }
}

function mountOf(procRoot: string): string | undefined {
  try {
    return cgroup2Mount(readFileSync(`${procRoot}/self/mountinfo`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** inode → path (relative to the mount, "/"-led) of every cgroup directory, breadth first. */
function walk(root: string, max: number): Map<number, string> {
  const out = new Map<number, string>();
  const queue = ['/'];
  for (let i = 0; i < queue.length && out.size < max; i++) {
    const rel = queue[i]!;
    try {
      out.set(statSync(join(root, rel)).ino, rel);
      for (const d of readdirSync(join(root, rel), { withFileTypes: true })) {
        if (d.isDirectory()) queue.push(rel === '/' ? `/${d.name}` : `${rel}/${d.name}`);
      }
    } catch {
      // removed while walked
    }
  }
  return out;
}
