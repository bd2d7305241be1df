// node bench/k8s/events.mjs [--events 50000]
//
// Cluster events in the flow store (src/store/events.ts): bytes on disk per event, adds per second,
// a one-minute window read, a full scan by pod, and reopening, for --events realistic events (the
// kinds and shapes pod status and Kubernetes Events give) spread over a day.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlowStore } from '../../dist/store/index.js';

const args = process.argv.slice(2);
const n = Number(args.includes('--events') ? args[args.indexOf('--events') + 1] : 50_000);
const t0 = Math.floor(Date.now() / 1000) - 86_400;
const kinds = ['restart', 'oom-killed', 'probe-failed', 'image-pull', 'rollout', 'pod-started', 'pod-deleted', 'other'];
const event = (i) => {
  const kind = kinds[i % kinds.length];
  const pod = `payment-${(i % 300).toString(36)}-x7k2p`;
  return {
    id: `pod/${(i * 2654435761 >>> 0).toString(16)}-uid/app/${kind}/${i}`, time: t0 + (i * 86_400) / n, kind, namespace: `ns-${i % 12}`, pod,
    workload: pod.split('-')[0], node: `node-${i % 10}`, container: 'app', reason: kind === 'oom-killed' ? 'OOMKilled' : 'Error',
    message: 'Readiness probe failed: HTTP probe failed with statuscode: 503', ...(kind === 'restart' || kind === 'oom-killed' ? { exitCode: 137 } : {}),
    source: i % 3 === 0 ? 'event' : 'pod-status',
  };
};

const dir = mkdtempSync(join(tmpdir(), 'tapwire-events-bench-'));
try {
  const open = () => FlowStore.open({ dir, maxBytes: 4 * 2 ** 30, maxAgeSec: 2 * 86_400 });
  let store = await open();
  const events = Array.from({ length: n }, (_, i) => event(i));
  let t = performance.now();
  for (const e of events) store.addEvent(e);
  await store.sync();
  const addS = (performance.now() - t) / 1000;
  const bytes = readdirSync(dir).filter((f) => f.startsWith('events-')).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
  const mid = t0 + 43_200;
  const time = (f, runs = 20) => { const s = performance.now(); let r; for (let i = 0; i < runs; i++) r = f(); return [(performance.now() - s) / runs, r]; };
  const [windowMs, w] = time(() => store.events({ since: mid, until: mid + 60 }));
  const [podMs, p] = time(() => store.events({ pod: 'payment-1-x7k2p' }), 5);
  await store.close();
  t = performance.now();
  store = await open();
  const reopenMs = performance.now() - t;
  const back = store.events({}).events.length;
  await store.close();
  console.log(`events bench: ${n} events over a day; node ${process.version}; ${new Date().toISOString()}`);
  console.log(`  on disk           ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / n)} B an event)`);
  console.log(`  adds              ${Math.round(n / addS)} a second (${addS.toFixed(2)} s with the sync)`);
  console.log(`  one-minute window ${windowMs.toFixed(1)} ms (${w.events.length} events)`);
  console.log(`  by pod, all day   ${podMs.toFixed(1)} ms (${p.events.length} events)`);
  console.log(`  reopen            ${reopenMs.toFixed(0)} ms, ${back} events back`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
