// npm run bench:k8s: what KubernetesIdentity costs (issue 16's figures), against the real
// kube-apiserver + etcd of scripts/k8s/apiserver.sh.
//
//   npm run bench:k8s                       1,000 pods, 300 Services (+ EndpointSlices), 2 min steady state
//   npm run bench:k8s -- --minutes 10       a longer steady state (watches renew every 5–10 min)
//   npm run bench:k8s -- --pods 5000 --services 1000
//
// It creates the objects as a cluster would (pods spread over 10 nodes, each owned by a
// ReplicaSet of one of 50 Deployments, IPs written through the status subresource; Services with
// ClusterIPs, one EndpointSlice each listing 3 pods), then starts KubernetesIdentity in cluster
// scope (the hub's) and node scope (one agent's) through a counting proxy, and measures:
//   memory    V8 heap used after a full GC (--expose-gc) minus the same before start (library
//             loaded already, so this is the informers' data: cached objects, indexes, history),
//             and the RSS delta;
//   requests  what tapwire sent, as the proxy saw it: at start (lists, watches) and per minute at
//             steady state, with no changes; a watch counts once, when opened.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigText, startProxy } from './proxy.mjs';

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], Number(process.argv[5]));
} else if (typeof globalThis.gc !== 'function') {
  const child = spawn(process.execPath, ['--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
  const PODS = opt('--pods', 1000), SERVICES = opt('--services', 300), MINUTES = opt('--minutes', 2);
  const NODES = 10, DEPLOYMENTS = 50;
  const k8s = await import('@kubernetes/client-node');

  const t0 = Date.now();
  // 300 ClusterIPs do not fit the script's 10.0.0.0/24: the later flag wins.
  const server = await startApiserver('--service-cluster-ip-range=10.0.0.0/20');
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-bench-k8s-'));
  try {
    console.log(`API server ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(server.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const discovery = kc.makeApiClient(k8s.DiscoveryV1Api);

    const t1 = Date.now();
    const ns = 'bench';
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await pool(NODES, 10, async (i) => {
      const name = `node-${i}`;
      await core.createNode({ body: { metadata: { name } } });
      const n = await core.readNode({ name });
      n.status = { addresses: [{ type: 'InternalIP', address: `172.30.0.${i + 1}` }] };
      await core.replaceNodeStatus({ name, body: n });
    });
    const podIp = (i) => `10.244.${i >> 8}.${i & 255}`;
    const podName = (i) => `app-${i % DEPLOYMENTS}-5d8f9c7b6-${String(i).padStart(5, '0')}`;
    await pool(PODS, 32, async (i) => {
      const d = `app-${i % DEPLOYMENTS}`;
      const name = podName(i);
      const created = await core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: {
            name, labels: { app: d, tier: 'backend', 'pod-template-hash': '5d8f9c7b6' },
            ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${d}-5d8f9c7b6`, uid: `00000000-0000-0000-0000-${String(i % DEPLOYMENTS).padStart(12, '0')}`, controller: true }],
          },
          spec: { nodeName: `node-${i % NODES}`, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', ports: [{ containerPort: 8080 }] }] },
        },
      });
      created.status = { phase: 'Running', podIP: podIp(i), podIPs: [{ ip: podIp(i) }] };
      await core.replaceNamespacedPodStatus({ name, namespace: ns, body: created });
    });
    await pool(SERVICES, 32, async (i) => {
      const name = `svc-${i}`;
      await core.createNamespacedService({ namespace: ns, body: { metadata: { name }, spec: { ports: [{ port: 80 }], selector: { app: name } } } });
      const members = [0, 1, 2].map((k) => (i * 3 + k) % PODS);
      await discovery.createNamespacedEndpointSlice({
        namespace: ns,
        body: {
          metadata: { name: `${name}-abcde`, labels: { 'kubernetes.io/service-name': name } },
          addressType: 'IPv4',
          endpoints: members.map((m) => ({ addresses: [podIp(m)], nodeName: `node-${m % NODES}`, conditions: { ready: true }, targetRef: { kind: 'Pod', name: podName(m), namespace: ns } })),
          ports: [{ port: 8080, protocol: 'TCP', name: '' }],
        },
      });
    });
    console.log(`created ${PODS} pods (with IPs), ${SERVICES} Services + EndpointSlices, ${NODES} nodes in ${((Date.now() - t1) / 1000).toFixed(1)} s`);

    const proxy = await startProxy(server.server);
    const viaProxy = join(dir, 'kubeconfig');
    writeFileSync(viaProxy, kubeconfigText(proxy.url, server.token));

    const rows = [];
    // Each scope in a fresh process: its baseline is then not disturbed by the other's garbage.
    for (const scope of ['node', 'cluster']) {
      const minutes = scope === 'cluster' ? MINUTES : 0;
      if (minutes) console.log(`cluster scope: ${MINUTES} min of steady state with no changes…`);
      const startAt = proxy.requests.length;
      let syncedAt = 0;
      const lines = await runChild(scope, viaProxy, minutes, (line) => {
        if (line.phase === 'synced') syncedAt = proxy.requests.length;
      });
      const [synced, steady] = lines;
      const sent = proxy.requests.slice(syncedAt);
      rows.push({
        scope, ...synced,
        startRequests: syncedAt - startAt, startKinds: summarize(proxy.requests.slice(startAt, syncedAt)),
        steady: minutes ? { minutes, requests: sent.length, kinds: summarize(sent), bookmarks: steady.stats.bookmarks - synced.stats.bookmarks, events: steady.stats.events - synced.stats.events } : undefined,
      });
    }
    await proxy.close();

    const date = new Date().toISOString().slice(0, 10);
    console.log(`\n## KubernetesIdentity, ${date}: ${PODS} pods, ${SERVICES} Services (+ ${SERVICES} EndpointSlices), ${NODES} nodes; node ${process.version}`);
    console.log('| scope | pods | services | slices | IPs | heap after GC (MB) | RSS delta (MB) | sync (ms) | requests at start |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const s = r.stats;
      console.log(`| ${r.scope} | ${s.pods} | ${s.services} | ${s.slices} | ${s.ips} | ${r.heapMB.toFixed(1)} | ${r.rssMB.toFixed(1)} | ${r.syncMs} | ${r.startRequests} (${r.startKinds}) |`);
    }
    console.log(`\nthe client library itself, loaded (heap after GC, in the baseline above): ${rows[0].libraryMB.toFixed(1)} MB`);
    const st = rows.find((r) => r.steady).steady;
    console.log(`steady state (cluster scope, ${st.minutes} min, no changes): ${st.requests} requests (${(st.requests / st.minutes).toFixed(2)}/min)${st.requests ? ` [${st.kinds}]` : ''}; ${st.bookmarks} bookmarks and ${st.events} events received`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
}

/** One scope's measurement, in this (fresh) process; prints JSON lines for the parent. */
async function child(scope, kubeconfig, minutes) {
  const bare = settle();
  await import('@kubernetes/client-node');
  const { KubernetesIdentity, loadKubeConfig } = await import('../../dist/enrich/kubernetes/index.js');
  const kc = await loadKubeConfig({ kubeconfig });
  const base = settle();
  const t = Date.now();
  const id = await KubernetesIdentity.start(kc, { scope, node: 'node-0' });
  const syncMs = Date.now() - t;
  const after = settle();
  const MB = 2 ** 20;
  console.log(JSON.stringify({ phase: 'synced', syncMs, heapMB: (after.heap - base.heap) / MB, rssMB: (after.rss - base.rss) / MB, libraryMB: (base.heap - bare.heap) / MB, stats: id.stats() }));
  if (minutes) await new Promise((r) => setTimeout(r, minutes * 60_000));
  console.log(JSON.stringify({ phase: 'steady', stats: id.stats() }));
  id.stop();
  process.exit(0);
}

function runChild(scope, kubeconfig, minutes, onLine) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--expose-gc', process.argv[1], '--child', scope, kubeconfig, String(minutes)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = [];
    let buf = '';
    c.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        lines.push(line);
        onLine(line);
      }
    });
    c.on('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`bench child (${scope}) exited ${code}`))));
  });
}

function settle() {
  for (let i = 0; i < 3; i++) globalThis.gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

/** "2 list, 4 watch" from proxied requests. */
function summarize(reqs) {
  const by = new Map();
  for (const r of reqs) {
    const path = r.url.split('?')[0];
    const kind = r.url.includes('watch=true') ? 'watch' : r.method !== 'GET' ? r.method : /\/namespaces\/[^/]+\/[^/]+\/[^/]+$/.test(path) ? 'get' : 'list page';
    by.set(kind, (by.get(kind) ?? 0) + 1);
  }
  return [...by].map(([k, n]) => `${n} ${k}`).join(', ');
}

async function pool(n, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

async function startApiserver(flags) {
  const child = spawn('bash', ['scripts/k8s/apiserver.sh'], { env: { ...process.env, APISERVER_FLAGS: flags }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const vars = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const got = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      if (got.KUBECONFIG) resolve(got);
    });
    child.on('exit', (code) => reject(new Error(`scripts/k8s/apiserver.sh exited (${code}) before it was ready`)));
  });
  return {
    server: vars.KUBE_SERVER, token: vars.KUBE_TOKEN, kubeconfig: vars.KUBECONFIG,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      // kube-apiserver's graceful shutdown takes ~21 s and its data is thrown away: kill it by pid.
      try {
        for (const line of execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(child.pid)], { encoding: 'utf8' }).trim().split('\n')) {
          const [pid, comm] = line.trim().split(/\s+/);
          if (comm?.startsWith('kube-apiserver')) process.kill(Number(pid), 'SIGKILL');
        }
      } catch { /* already gone */ }
      child.kill('SIGTERM');
      await exited;
    },
  };
}
