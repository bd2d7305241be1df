import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Whether a pid is running: neither gone nor a zombie waiting for whoever adopted it to reap it. */
export function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Waits (up to `ms`) until a killed pid has finished exiting. Its pipes close early in its exit,
 * so a command's end can be seen a moment before the kernel marks a killed child as exited.
 */
export async function gone(pid: number, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms;
  while (running(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Pids of running processes whose command line holds `marker` (pgrep -f; zombies have none). */
export function survivors(marker: string): number[] {
  const r = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

/**
 * A shell command whose group leader dies of SIGTERM at once while a member that ignores SIGTERM
 * holds the output pipes — `sleep <marker>` (a duration no other process uses, for survivors()).
 */
export function ignoresTerm(): { command: string; marker: string } {
  const marker = `sleep 41.${process.pid}${Math.floor(Math.random() * 1e6)}`;
  return { command: `(trap "" TERM; ${marker}; echo x) & exec sleep 42`, marker };
}
