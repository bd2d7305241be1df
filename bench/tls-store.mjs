// node scripts/build-if-needed.mjs && node bench/tls-store.mjs [--requests 20000] [--size 1024] [--rounds 5]
//
// What keeping decrypted TLS plaintext for snapshots costs (issue 17, kubeshark#1882): the tee
// (pipeline/plaintext-packets.ts) that turns each plaintext stream into TCP packets on its 4-tuple,
// and the agent's packet store that keeps them marked (store addPacket with a mark).
//
// - store bytes: the packet store's bytes on disk (segments and sidecars) for decrypted requests,
//   as the agent writes them: a curl-sized GET and its 200 (one request per connection, the
//   connection's SYN/SYN-ACK/ACK and FINs included), and keep-alive requests of --size bytes each
//   way (data segments only). Against the plaintext bytes themselves.
// - tee throughput: chunks through the tee into a sink that drops them (the packet building and
//   checksums alone), and into a FlowStore (what the agent does), --size bytes a chunk, median of
//   --rounds rounds.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlaintextPackets } from '../dist/pipeline/plaintext-packets.js';
import { FlowStore } from '../dist/store/index.js';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const requests = arg('--requests', 20_000);
const size = arg('--size', 1024);
const rounds = arg('--rounds', 5);

const MARK = { via: 'uprobe', library: 'openssl', pid: 123456, comm: 'curl' };
const quiet = { open() {}, data() {}, gap() {}, fin() {}, close() {} };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dirBytes = (dir) => readdirSync(dir).filter((f) => f.startsWith('packets-')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);

const GET = 'GET /orders.json HTTP/1.1\r\nHost: shop.example:8443\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n';
const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\nDate: Mon, 07 Dec 2026 14:00:00 GMT\r\nConnection: keep-alive\r\n\r\n{"id":42}\n';

function conn(i, t) {
  return {
    id: `tls-${i}`, client: { ip: '10.1.2.3', port: 30000 + (i % 30000) }, server: { ip: '10.9.8.7', port: 8443 }, family: 4,
    startTime: t, firstFrame: 0, handshakeSeen: false, midStream: false,
  };
}

/** n exchanges of (request, response) on one connection, or one connection per exchange. */
function drive(tee, n, req, res, perConnection) {
  const t0 = Date.now() / 1000 - 3600;
  let c, next;
  for (let i = 0; i < n; i++) {
    const t = t0 + i * 0.001;
    if (perConnection || i === 0) {
      c = conn(i, t);
      next = [0, 0];
      tee.open(c);
    }
    tee.data(c, 0, req, { time: t, frame: 0, offset: next[0], peerAck: next[1] });
    next[0] += req.length;
    tee.data(c, 1, res, { time: t + 0.0005, frame: 0, offset: next[1], peerAck: next[0] });
    next[1] += res.length;
    if (perConnection || i === n - 1) tee.close(c, t + 0.0008, 'fin');
  }
}

async function storeBytes(label, n, req, res, perConnection) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-store-'));
  try {
    const store = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 10 * 365 * 86400 });
    const tee = new PlaintextPackets(quiet, (p) => store.addPacket(p.time, p.linkType, p.data, p.data.length, p.mark), () => MARK);
    drive(tee, n, req, res, perConnection);
    await store.close();
    const bytes = dirBytes(dir);
    const plain = req.length + res.length;
    console.log(`store bytes, ${label}: ${(bytes / n).toFixed(0)} B per request for ${plain} B of plaintext (${(bytes / n / plain).toFixed(2)}×), ${(tee.counters.packets / n).toFixed(1)} packets per request; ${n} requests, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function throughput(label, makeSink) {
  const chunk = Buffer.alloc(size, 0x61);
  const mbs = [], cps = [];
  for (let r = 0; r < rounds; r++) {
    const { sink, done } = await makeSink();
    const tee = new PlaintextPackets(quiet, sink, () => MARK);
    const t0 = process.hrtime.bigint();
    drive(tee, requests, chunk, chunk, false);
    await done();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    mbs.push((2 * requests * size) / s / 2 ** 20);
    cps.push((2 * requests) / s);
  }
  console.log(`tee throughput, ${label}: ${median(cps).toFixed(0)} chunks/s, ${median(mbs).toFixed(1)} MiB/s of plaintext (${size} B chunks, median of ${rounds}; runs ${mbs.map((x) => x.toFixed(1)).join(', ')} MiB/s)`);
}

console.log(`node ${process.version}, ${new Date().toISOString()}`);
await storeBytes('a curl GET + 200, one connection each', requests, Buffer.from(GET), Buffer.from(OK), true);
await storeBytes(`keep-alive, ${size} B each way`, requests, Buffer.alloc(size, 0x61), Buffer.alloc(size, 0x62), false);
await throughput('packets built, then dropped', async () => ({ sink: () => {}, done: async () => {} }));
await throughput('into a FlowStore (add + a sync at the end)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-store-'));
  const store = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 10 * 365 * 86400 });
  return {
    sink: (p) => store.addPacket(p.time, p.linkType, p.data, p.data.length, p.mark),
    done: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
