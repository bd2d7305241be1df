// npm run bench:hub  [-- --flows 50000 --overlap 0.2 --samples 200]
//
// The hub (src/service/hub.ts) over two agents: its merge throughput, and its page latency beside
// asking one agent directly, in the same run.
//
// What runs: `tapwire agent` has no capture-file source, and replaying 100 000 exchanges through
// two libpcap captures would measure the capture, not the hub. So each "agent" is the agent's own
// serving half — a flow store filled with --flows real records (the demo capture's, copied with
// later starts, new ids and new client ports) served by the same createApi over StoreSource that
// `tapwire agent` runs — in a child process of its own, as two agents on two nodes would be. Agent
// B's store also holds a second tap's copy of --overlap of agent A's flows (other ids, starts
// 0.3 ms later): the cross-node duplicates the hub must fold. The hub is a HubSource over two
// RemoteSources (HTTP), served by createApi, measured through HTTP as a client sees it.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);

if (args[0] === '--serve') {
  // Child: one agent's store and API.
  const [{ analyzeFile }, { FlowStore }, { StoreSource, FlowFeed }, { createApi }, { Registry }] = await Promise.all([
    import('../dist/pipeline/analyze.js'), import('../dist/store/index.js'), import('../dist/service/index.js'), import('../dist/api/index.js'), import('prom-client'),
  ]);
  const which = args[1], total = Number(args[2]), overlap = Number(args[3]);
  const base = (await analyzeFile('pcaps/demo/demo.pcap')).records;
  const t0 = 1.7e9;
  /** Flow i of agent A: a demo record, moved to t0 + i ms, with its own id and client port. */
  const flowA = (i) => {
    const r = base[i % base.length];
    return { ...r, id: `a${i}-${r.id}`, connectionId: `a${i}`, src: { ...r.src, port: 10000 + (i % 50000) }, start: t0 + i / 1000, end: t0 + i / 1000 + (r.end - r.start) };
  };
  const dir = mkdtempSync(join(tmpdir(), `tapwire-hub-bench-${which}-`));
  const store = await FlowStore.open({ dir, maxBytes: 8 * 2 ** 30, maxAgeSec: 10 * 365 * 86400 });
  const every = overlap > 0 ? Math.round(1 / overlap) : Infinity;
  for (let i = 0; i < total; i++) {
    if (which === 'a') store.add(flowA(i));
    else if (i % every === 0) {
      // A second tap's copy of A's flow i.
      const a = flowA(i);
      store.add({ ...a, id: `b${i}-copy`, connectionId: `b${i}`, start: a.start + 0.0003, end: a.end + 0.0003 });
    } else {
      const a = flowA(i);
      store.add({ ...a, id: `b${i}`, connectionId: `b${i}`, src: { ...a.src, ip: '10.99.0.7' }, start: a.start + 0.0005, end: a.end + 0.0005 });
    }
    if (i % 5000 === 4999) await store.sync();
  }
  await store.sync();
  const server = createApi({ source: new StoreSource(store, new FlowFeed()), registry: new Registry() });
  server.listen(0, '127.0.0.1', () => process.send({ url: `http://127.0.0.1:${server.address().port}` }));
  process.on('disconnect', async () => {
    server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
} else {
  const total = Number(arg('--flows', 50_000)), overlap = Number(arg('--overlap', 0.2)), samples = Number(arg('--samples', 200));
  const [{ HubSource }, { createApi }, { Registry }] = await Promise.all([import('../dist/service/index.js'), import('../dist/api/index.js'), import('prom-client')]);
  const agents = ['a', 'b'].map((w) => fork(new URL(import.meta.url).pathname, ['--serve', w, String(total), String(overlap)]));
  const urls = await Promise.all(agents.map((c) => new Promise((resolve) => c.once('message', (m) => resolve(m.url)))));
  const hubSource = HubSource.open(urls);
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 50);
  const server = createApi({ source: hubSource, registry: new Registry() });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const hubUrl = `http://127.0.0.1:${server.address().port}`;
  const copies = Math.floor((total - 1) / Math.round(1 / overlap)) + 1;
  console.log(`hub bench: 2 agents × ${total} flows (agent B: ${copies} copies of agent A's, a second tap's); node ${process.version}; ${new Date().toISOString()}`);

  const getPage = async (base, limit, cursor) => {
    const u = new URL('/api/flows', base);
    u.searchParams.set('since', '0');
    u.searchParams.set('limit', String(limit));
    if (cursor) u.searchParams.set('cursor', cursor);
    const res = await fetch(u);
    if (res.status !== 200) throw new Error(`${u}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  /** Every flow through `base`, pages of `limit`: flows, seconds, and the cursors met on the way. */
  const walk = async (base, limit) => {
    const t0 = performance.now();
    let n = 0, cursor;
    const cursors = [undefined];
    do {
      const p = await getPage(base, limit, cursor);
      n += p.flows.length;
      cursor = p.next ?? undefined;
      if (cursor) cursors.push(cursor);
    } while (cursor);
    return { n, s: (performance.now() - t0) / 1000, cursors };
  };
  // Warm up both (JIT, the stores' memory).
  await walk(hubUrl, 1000);
  await walk(urls[0], 1000);

  const merged = await walk(hubUrl, 1000);
  const expected = 2 * total - copies;
  console.log(`\nmerge throughput (all flows, pages of 1000, through the hub's HTTP API)`);
  console.log(`  hub over 2 agents: ${merged.n} flows (expected ${expected}) in ${merged.s.toFixed(2)} s = ${Math.round(merged.n / merged.s)} flows/s`);
  const inproc = performance.now();
  let n = 0, cursor;
  do {
    const p = await hubSource.query({ since: '0', limit: 1000, cursor });
    n += p.flows.length;
    cursor = p.next;
  } while (cursor);
  const s = (performance.now() - inproc) / 1000;
  console.log(`  HubSource in-process (no hub HTTP): ${n} flows in ${s.toFixed(2)} s = ${Math.round(n / s)} flows/s`);
  const one = await walk(urls[0], 1000);
  console.log(`  one agent directly: ${one.n} flows in ${one.s.toFixed(2)} s = ${Math.round(one.n / one.s)} flows/s`);

  const pct = (xs, p) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  console.log(`\npage latency (${samples} pages each, at cursors spread over the whole range)`);
  for (const limit of [100, 1000]) {
    const hubCursors = (await walk(hubUrl, limit)).cursors, agentCursors = (await walk(urls[0], limit)).cursors;
    for (const [label, base, cs] of [['hub, 2 agents', hubUrl, hubCursors], ['one agent directly', urls[0], agentCursors]]) {
      const xs = [];
      for (let i = 0; i < samples; i++) {
        const c = cs[Math.floor((i * cs.length) / samples)];
        const t0 = performance.now();
        await getPage(base, limit, c);
        xs.push(performance.now() - t0);
      }
      console.log(`  limit ${String(limit).padEnd(5)} ${label.padEnd(20)} p50 ${pct(xs, 0.5).toFixed(1).padStart(6)} ms   p95 ${pct(xs, 0.95).toFixed(1).padStart(6)} ms`);
    }
  }
  // The hub's memory (this process holds only the hub: the agents are children): what its
  // Deployment's requests and limits are sized from (daemonset/base/hub.yaml).
  console.log(`\nhub process: peak RSS ${(peakRss / 1e6).toFixed(0)} MB, heap used now ${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB`);
  clearInterval(sampler);
  server.close();
  for (const c of agents) c.disconnect();
}
