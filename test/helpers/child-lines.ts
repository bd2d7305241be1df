import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The first line a child prints on stdout; rejects if it exits before printing one. */
export function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => { rl.close(); resolve(l.trim()); });
    child.once('exit', (code) => reject(new Error(`child exited ${code} before printing a line`)));
  });
}
