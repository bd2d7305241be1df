import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readJson, type Snapshot } from '../store/index.js';

/**
 * The local backend's snapshots on disk: `<dataDir>/snapshots/<id>/` is a FlowStore holding one
 * snapshot's flows and packets, so a later process (the MCP server, another `tapwire run`) can
 * still read them and export them as pcap. While a process records into one it holds
 * `owner.json` (pid and process start time): others then neither read it (a reader's open would
 * cut the writer's unsealed tail) nor delete it.
 */

/** Local snapshot ids: the same shape as an agent's, and the directory's name. */
export const LOCAL_SNAPSHOT_ID = /^snap-[0-9a-f]{12}$/;

/**
 * Retention of local snapshot stores, applied each time one is opened: the newest 50 are kept,
 * and older ones go while all of them together are over 2 GiB. A store being recorded is never
 * deleted; one that alone is over 2 GiB stays until it is among the oldest.
 */
export const KEEP_SNAPSHOTS = 50;
export const KEEP_BYTES = 2 * 1024 ** 3;

/** `$TAPWIRE_DATA_DIR`, else `${XDG_DATA_HOME:-~/.local/share}/tapwire` (the agent's default too). */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TAPWIRE_DATA_DIR || join(env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share'), 'tapwire');
}

export function newSnapshotId(): string {
  return `snap-${randomBytes(6).toString('hex')}`;
}

export function snapshotsDir(dataDir: string): string {
  return join(dataDir, 'snapshots');
}

interface Owner { pid: number; start?: string }

/** Marks this process as the one recording into `dir`. */
export function claim(dir: string): void {
  writeFileSync(join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, start: processStart(process.pid) } satisfies Owner));
}

export function release(dir: string): void {
  rmSync(join(dir, 'owner.json'), { force: true });
}

/** The pid of a live process recording into `dir`, or undefined (none, or it died: a crash). */
export function liveOwner(dir: string): number | undefined {
  const o = readJson(join(dir, 'owner.json')) as Partial<Owner> | undefined;
  if (!o || typeof o.pid !== 'number') return undefined;
  // The start time tells a reused pid from the owner; without /proc, a live pid is trusted.
  if (o.start === undefined) return alive(o.pid) ? o.pid : undefined;
  return processStart(o.pid) === o.start ? o.pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process's start time (field 22 of /proc/<pid>/stat, clock ticks since boot); undefined when it is gone. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The snapshot a store directory holds, under the directory's id; undefined when unreadable. */
export function readSnapshot(dataDir: string, id: string): Snapshot | undefined {
  if (!LOCAL_SNAPSHOT_ID.test(id)) return undefined;
  const list = readJson(join(snapshotsDir(dataDir), id, 'snapshots.json'));
  const s = Array.isArray(list) ? (list[0] as Snapshot | undefined) : undefined;
  return s && typeof s.since === 'number' ? { ...s, id } : undefined;
}

/** Every local snapshot, oldest first. */
export function listSnapshots(dataDir: string): Snapshot[] {
  let names: string[];
  try {
    names = readdirSync(snapshotsDir(dataDir));
  } catch {
    return [];
  }
  return names.map((n) => readSnapshot(dataDir, n)).filter((s): s is Snapshot => s !== undefined).sort((a, b) => a.createdAt - b.createdAt);
}

/** Deletes the oldest snapshot stores beyond KEEP_SNAPSHOTS (making room for one more) and KEEP_BYTES. */
export function applyRetention(dataDir: string, keep = { snapshots: KEEP_SNAPSHOTS, bytes: KEEP_BYTES }): string[] {
  const root = snapshotsDir(dataDir);
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => LOCAL_SNAPSHOT_ID.test(n));
  } catch {
    return [];
  }
  const dirs = names.map((n) => ({ id: n, dir: join(root, n), bytes: dirBytes(join(root, n)), at: readSnapshot(dataDir, n)?.createdAt ?? mtime(join(root, n)) }))
    .sort((a, b) => a.at - b.at);
  let count = dirs.length, bytes = dirs.reduce((s, d) => s + d.bytes, 0);
  const removed: string[] = [];
  for (const d of dirs) {
    if (count < keep.snapshots && bytes <= keep.bytes) break;
    if (liveOwner(d.dir) !== undefined) continue;
    rmSync(d.dir, { recursive: true, force: true });
    removed.push(d.id);
    count--;
    bytes -= d.bytes;
  }
  return removed;
}

/** Bytes of the files in a store directory (it is flat), and when it last changed. */
function dirBytes(dir: string): number {
  let n = 0;
  for (const f of safeList(dir)) n += statOr(join(dir, f))?.size ?? 0;
  return n;
}

export function lastWrite(dir: string): number {
  let t = mtime(dir);
  for (const f of safeList(dir)) t = Math.max(t, (statOr(join(dir, f))?.mtimeMs ?? 0) / 1000);
  return t;
}

function mtime(p: string): number {
  return (statOr(p)?.mtimeMs ?? 0) / 1000;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function statOr(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}
