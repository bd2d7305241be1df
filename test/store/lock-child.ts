/**
 * Run by lock.test.ts in a child process, as a second writer of a store:
 *   node lock-child.js <dir> hold          opens the store, prints "held", keeps it until stdin ends, closes it
 *   node lock-child.js <dir> hold-big      as hold, with 1 GiB of memory in use (slow to tear down when killed)
 *   node lock-child.js <dir> exit          opens it, prints "held" and exits without closing it
 *   node lock-child.js <dir> race <atMs>   waits until the wall clock reaches atMs (so racers open together),
 *                                          then as hold; prints "locked <message>" when another one holds it
 *   node lock-child.js <dir> hammer <atMs> <rounds>
 *                                          one open per round (rounds 40 ms apart from atMs), racing the others;
 *                                          a winner checks that it is alone (an O_EXCL marker), prints "won <i>",
 *                                          then leaves its lock stale as a reused pid would, for the next round;
 *                                          a loser prints "lost <i>"; two holders at once print "VIOLATION"
 */
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowStore, StoreLockedError } from '../../src/store/index.js';

const [dir, mode, at, rounds] = process.argv.slice(2) as [string, string, string | undefined, string | undefined];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const say = (line: string) => process.stdout.write(`${line}\n`);

async function open(): Promise<FlowStore | string> {
  try {
    return await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
  } catch (e) {
    if (!(e instanceof StoreLockedError)) throw e;
    return e.message;
  }
}

if (mode === 'hammer') {
  const inside = join(dir, 'inside');
  for (let i = 0; i < Number(rounds); i++) {
    await sleep(Number(at) + i * 40 - Date.now());
    const store = await open();
    if (typeof store === 'string') {
      say(`lost ${i}`);
      continue;
    }
    try {
      writeFileSync(inside, String(process.pid), { flag: 'wx' });
    } catch {
      say(`VIOLATION round ${i}: ${process.pid} holds the lock beside ${readFileSync(inside, 'utf8')}`);
      continue;
    }
    say(`won ${i}`);
    await sleep(20);
    unlinkSync(inside);
    // Stale for the next round's racers: this pid with another start time, as after a pid reuse.
    const lock = readdirSync(dir).find((f) => /^writer-\d+\.lock$/.test(f))!;
    writeFileSync(join(dir, lock), JSON.stringify({ ...JSON.parse(readFileSync(join(dir, lock), 'utf8')), start: '1' }));
  }
  process.exit(0);
}

// A process that takes a while to die once killed (its memory to unmap), like an agent with its capture ring.
const ballast = mode === 'hold-big' ? Buffer.alloc(1 << 30).fill(1) : undefined;
if (mode === 'race') {
  // Sleep to near the instant, then spin to it: a timer alone fires with a few ms of jitter.
  await sleep(Number(at) - Date.now() - 30);
  while (Date.now() < Number(at)) { /* spin */ }
}
const store = await open();
if (typeof store === 'string') {
  say(`locked ${store}`);
  process.exit(0);
}
say(`held${store.recovery.staleLock ? ` (${store.recovery.staleLock})` : ''}`);
if (mode === 'exit') process.exit(0);
if (ballast) say(`ballast ${ballast.length}`);
process.stdin.resume();
process.stdin.on('end', () => {
  void store.close().then(() => process.exit(0));
});
