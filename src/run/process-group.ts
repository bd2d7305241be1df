import { readdirSync, readFileSync } from 'node:fs';

/**
 * Whether any process of a process group still runs. kill(-pgid, 0) alone is not enough: it also
 * succeeds while the group holds only zombies, and orphans killed in a container whose init does
 * not reap them stay zombies for good — they run nothing, so on Linux /proc is asked whether a
 * member is anything else. Elsewhere the answer is kill's.
 */
export function groupRunning(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    // EPERM: a member this process may not signal — it still runs.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return true;
  }
  return pids.some((pid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return false; // exited while we looked
    }
    // After "pid (comm) ": state, ppid, pgrp. comm may hold spaces and parentheses: cut at the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(pgrp) === pgid && state !== 'Z';
  });
}
