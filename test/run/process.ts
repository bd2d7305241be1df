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
