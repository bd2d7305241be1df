/**
 * Run by lock.test.ts in a child process, as a second writer of a store:
 *   node lock-child.js <dir> hold          opens the store, prints "held", keeps it until stdin ends, closes it
 *   node lock-child.js <dir> exit          opens it, prints "held" and exits without closing it
 *   node lock-child.js <dir> race <atMs>   waits until the wall clock reaches atMs (so racers open together),
 *                                          then as hold; prints "locked <message>" when another one holds it
 */
import { FlowStore, StoreLockedError } from '../../src/store/index.js';

const [dir, mode, at] = process.argv.slice(2) as [string, string, string | undefined];
if (mode === 'race') {
  // Sleep to near the instant, then spin to it: a timer alone fires with a few ms of jitter.
  await new Promise((r) => setTimeout(r, Math.max(0, Number(at) - Date.now() - 30)));
  while (Date.now() < Number(at)) { /* spin */ }
}
let store: FlowStore;
try {
  store = await FlowStore.open({ dir, maxBytes: 1 << 30, maxAgeSec: 1e9 });
} catch (e) {
  if (!(e instanceof StoreLockedError)) throw e;
  process.stdout.write(`locked ${e.message}\n`);
  process.exit(0);
}
process.stdout.write(`held${store.recovery.staleLock ? ` (${store.recovery.staleLock})` : ''}\n`);
if (mode === 'exit') process.exit(0);
process.stdin.resume();
process.stdin.on('end', () => {
  void store.close().then(() => process.exit(0));
});
