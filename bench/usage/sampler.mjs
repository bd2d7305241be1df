// The UsageSampler's cost on a full node: 110 pods (the kubelet's default max-pods) of two containers,
// read 240 times (an hour at 15 s) from a stand-in metrics API; prints the ring's heap, the size of one
// PodMetricsList answer, usageOver's time for every pod over the hour, and the requests made.
//   npm run build && node --expose-gc bench/usage/sampler.mjs
import { createServer } from 'node:http';
import { KubeConfig } from '@kubernetes/client-node';
import { UsageSampler } from '../../dist/enrich/usage/index.js';
const PODS = 110, READS = 240;
let t = Date.parse('2026-12-07T12:00:00Z') / 1000;
const srv = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  if (req.url.endsWith('v1beta1')) return res.end('{"resources":[]}');
  t += 15;
  const items = Array.from({ length: PODS }, (_, i) => ({ metadata: { name: `pod-${i}`, namespace: 'ns' }, timestamp: new Date(t * 1000).toISOString(), window: '15s', containers: [{ name: 'a', usage: { cpu: `${1e6 * i}n`, memory: `${1000 + i}Ki` } }, { name: 'b', usage: { cpu: '5m', memory: '20Mi' } }] }));
  const body = JSON.stringify({ items });
  globalThis.bodyBytes = body.length;
  res.end(body);
});
await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const kc = new KubeConfig();
kc.loadFromOptions({ clusters: [{ name: 's', server: `http://127.0.0.1:${srv.address().port}`, skipTLSVerify: true }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'c', cluster: 's', user: 'u' }], currentContext: 'c' });
globalThis.gc(); const before = process.memoryUsage().heapUsed;
const s = new UsageSampler({ kubeconfig: kc, now: () => t });
for (let i = 0; i < READS; i++) await s.poll();
globalThis.gc(); const after = process.memoryUsage().heapUsed;
const pods = Array.from({ length: PODS }, (_, i) => `ns/pod-${i}`);
const t0 = performance.now(); for (let i = 0; i < 100; i++) s.usageOver(pods, t - 3600, t); const per = (performance.now() - t0) / 100;
console.log(JSON.stringify({ pods: PODS, samplesPerPod: READS, ringHeapBytes: after - before, listBodyBytes: globalThis.bodyBytes, bytesPerPodInList: Math.round(globalThis.bodyBytes / PODS), usageOverMsAllPodsHour: per.toFixed(2), requests: s.requests }));
srv.close();
