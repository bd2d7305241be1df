// Connection owners' figures (issue 17, "Coverage"): owner events per second the JS side carries
// with no loss, and the memory of the owner map at 100 000 connections.
//
//   node --expose-gc bench/owners.mjs                       all three parts
//   node --expose-gc bench/owners.mjs --rate 2000,5000,0 --seconds 5 --connections 100000 --json
//
// Live: native/build/conn.bpf.o through the addon (OwnerWatch, as the agent opens it); a child
// node process makes loopback TCP connections to its own server at `--rate` per second (0: as
// fast as it can) for `--seconds`, each one connect and one accept event, so 2 events a
// connection. Reported: connections made, events received in JS that belong to the child, the
// kernel's loss counter, and this process's CPU time (user + system) per event. Each process is
// classified once (its /proc), as in the agent.
// Drain: synthetic batches in the kernel's record format parsed and added with no kernel in the
// way (`--drain` events, 64 processes): the JS side's own ceiling.
// Memory: `--connections` connections with both ends held (the default bound is 131 072), heap
// after gc minus heap before, per connection.
// Needs root and `npm run build && npm run build:native` for the live part; the others run anywhere.
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const rates = opt('--rate', '1000,5000,0').split(',').map(Number);
const seconds = Number(opt('--seconds', 5));
const drainEvents = Number(opt('--drain', 1_000_000));
const connections = Number(opt('--connections', 100_000));
const json = args.includes('--json');
const dist = resolve(opt('--dist', join(root, 'dist')));
const { OwnerWatch, ConnectionOwners, parseOwnerBatch, OWNER_EVENT_SIZE, ownersUnavailable } = await import(pathToFileURL(join(dist, 'capture', 'index.js')).href);
const out = {};

/** The child: a server and a client in one process, `rate` connections a second (0: back to back). */
const CHILD = `
const net = require('node:net');
const [rate, seconds] = process.argv.slice(1).map(Number);
const srv = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1', () => {
  const port = srv.address().port;
  let made = 0, inFlight = 0;
  const end = Date.now() + seconds * 1000, t0 = Date.now();
  const one = () => { inFlight++; const c = net.connect(port, '127.0.0.1', () => { made++; c.destroy(); }); c.on('error', () => {}); c.on('close', () => { inFlight--; if (!rate) next(); }); };
  const next = () => { if (Date.now() < end) one(); else if (inFlight === 0) done(); };
  const done = () => { srv.close(); console.log(JSON.stringify({ made, ms: Date.now() - t0 })); };
  if (rate) {
    const iv = setInterval(() => {
      const due = Math.floor(((Date.now() - t0) / 1000) * rate) - made - inFlight;
      for (let i = 0; i < due && Date.now() < end; i++) one();
      if (Date.now() >= end) { clearInterval(iv); const w = setInterval(() => { if (inFlight === 0) { clearInterval(w); done(); } }, 5); }
    }, 1);
  } else for (let i = 0; i < 32; i++) one();
});`;

async function live(rate) {
  const w = new OwnerWatch();
  const child = spawn(process.execPath, ['-e', CHILD, String(rate), String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let mine = 0;
  const add = w.owners.add.bind(w.owners);
  w.owners.add = (e, t) => { if (e.pid === child.pid) mine++; add(e, t); };
  const cpu0 = process.cpuUsage();
  let text = '';
  child.stdout.on('data', (d) => (text += d));
  await new Promise((r) => child.once('exit', r));
  await new Promise((r) => setTimeout(r, 200)); // the last poll
  const cpu = process.cpuUsage(cpu0);
  const k = w.kernelCounters();
  w.close();
  const { made, ms } = JSON.parse(text);
  const r = { rate: rate || 'max', connections: made, connPerSec: Math.round(made / (ms / 1000)), expectedEvents: made * 2, events: mine, eventsPerSec: Math.round(mine / (ms / 1000)), lost: k.lost, batches: k.batches, cpuUsPerEvent: +((cpu.user + cpu.system) / Math.max(1, k.events)).toFixed(2) };
  if (!json) console.log(`live: ${r.connections} loopback connections in ${(ms / 1000).toFixed(2)} s (${r.connPerSec}/s, asked ${r.rate}): ${r.events}/${r.expectedEvents} owner events into JS = ${r.eventsPerSec} events/s, lost ${r.lost}, ${r.batches} batches, ${r.cpuUsPerEvent} µs CPU of this process per event`);
  return r;
}

/** `n` synthetic conn_events (connect, accept alternately) in batches of 4096. */
function batches(n) {
  const per = 4096, list = [];
  for (let done = 0; done < n; done += per) {
    const k = Math.min(per, n - done);
    const b = Buffer.alloc(8 + k * OWNER_EVENT_SIZE);
    b.writeBigUInt64LE(BigInt(b.length), 0);
    for (let i = 0; i < k; i++) {
      const o = 8 + i * OWNER_EVENT_SIZE, conn = (done + i) >> 1, accept = (done + i) & 1;
      b.writeBigUInt64LE(BigInt(1e9 + (done + i) * 1000), o);
      b.writeUInt32LE(1000 + (conn % 64), o + 16);
      b[o + 24] = accept ? 2 : 1;
      b.writeUInt16LE(2, o + 26);
      const cport = 1024 + (conn % 60000), sport = 443;
      b.writeUInt16LE(accept ? sport : cport, o + 28);
      b.writeUInt16LE(accept ? cport : sport, o + 30);
      const cip = [10, (conn >> 16) & 255, (conn >> 8) & 255, 1 + (conn & 127)], sip = [10, 0, 0, 200];
      Buffer.from(accept ? sip : cip).copy(b, o + 32);
      Buffer.from(accept ? cip : sip).copy(b, o + 48);
      b.write(accept ? 'server' : 'client', o + 64);
    }
    list.push(b);
  }
  return list;
}

const stub = () => ({ library: 'java', probed: false, reason: 'unsupported-library', detail: 'stub' });

function drain() {
  const bs = batches(drainEvents);
  const o = new ConnectionOwners({ classify: stub });
  const t0 = performance.now();
  let n = 0;
  for (const b of bs) n += parseOwnerBatch(b, (e) => o.add(e, 1000));
  const s = (performance.now() - t0) / 1000;
  const r = { events: n, seconds: +s.toFixed(3), eventsPerSec: Math.round(n / s), held: o.counters.connections, evicted: o.counters.evicted };
  if (!json) console.log(`drain: ${n} synthetic owner events parsed and added in ${r.seconds} s = ${r.eventsPerSec} events/s (held ${r.held}, evicted ${r.evicted})`);
  return r;
}

function memory() {
  if (!globalThis.gc) return { skipped: 'run node with --expose-gc' };
  const bs = batches(connections * 2);
  globalThis.gc();
  const before = process.memoryUsage().heapUsed;
  const o = new ConnectionOwners({ classify: stub, maxConnections: Math.max(131_072, connections) });
  for (const b of bs) parseOwnerBatch(b, (e) => o.add(e, 1000));
  bs.length = 0;
  globalThis.gc();
  const after = process.memoryUsage().heapUsed;
  const r = { connections: o.counters.connections, heapMB: +((after - before) / 1048576).toFixed(1), bytesPerConnection: Math.round((after - before) / o.counters.connections) };
  if (!json) console.log(`memory: ${r.connections} connections with both ends held: ${r.heapMB} MB of heap (${r.bytesPerConnection} B per connection)`);
  return r;
}

const why = process.getuid?.() !== 0 ? ['needs root'] : ownersUnavailable();
if (why.length) {
  out.live = { skipped: why.join('; ') };
  if (!json) console.log(`live: skipped (${why.join('; ')})`);
} else {
  out.live = [];
  for (const r of rates) out.live.push(await live(r));
}
out.drain = drain();
out.memory = memory();
if (json) console.log(JSON.stringify(out, null, 2));
