/**
 * 410 Gone against a real API server: with the watch cache off, watches are served by etcd, and
 * after a compaction a watch from an older resourceVersion answers "too old resource version"
 * (docs/kubernetes.md, "A real API server for tests"). The informer must relist, and report
 * what changed while it was away: a pod deleted then is reported deleted, its IP ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesIdentity, loadKubeConfig } from '../../../src/enrich/kubernetes/index.js';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../../helpers/apiserver.js';
import { apis, deletePod, namespace, node, pod, podLabels, sleep, until, type Apis } from './cluster.js';

const why = apiserverUnavailable();
if (why) console.log(`skipping the 410 relist test: ${why}`);

describe.skipIf(why !== '')('a watch too old for the server (410 Gone)', () => {
  let api: TestApiserver;
  let a: Apis;

  beforeAll(async () => {
    api = await startApiserver({ flags: '--etcd-compaction-interval=5s --watch-cache=false' });
    a = apis(api.kubeconfig);
    await namespace(a, 'shop');
    await node(a, 'node-a', '172.30.0.1');
    await pod(a, 'shop', 'stays', { node: 'node-a', ips: ['10.244.1.10'], labels: { v: '1' } });
    await pod(a, 'shop', 'goes', { node: 'node-a', ips: ['10.244.1.11'] });
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('relists, and reports what changed while the watch was away', async () => {
    const proxy = await api.proxy();
    const kc = await loadKubeConfig({ kubeconfig: proxy.kubeconfig });
    const id = await KubernetesIdentity.start(kc, { scope: 'node', node: 'node-a', informer: { initialBackoffMs: 200, maxBackoffMs: 1000 } });
    const events: string[] = [];
    id.onPod((type, p) => events.push(`${type} ${p.metadata!.name}`));
    try {
      expect(id.lookup('10.244.1.11')?.name).toBe('goes');
      const before = id.stats();
      const oldRv = (await a.core.listPodForAllNamespaces({ limit: 1 })).metadata!.resourceVersion!;
      await proxy.pause();
      const gone = Date.now() / 1000;
      await deletePod(a, 'shop', 'goes');
      await podLabels(a, 'shop', 'stays', { v: '2' });
      await pod(a, 'shop', 'came', { node: 'node-a', ips: ['10.244.1.12'] });
      // Move etcd's revision on and let the compactor (every 5 s, up to the revision it saw one
      // interval before) pass the informers' resourceVersions: until a read at the old version
      // answers 410 itself.
      const compacted = async () => {
        try {
          await a.core.listPodForAllNamespaces({ resourceVersion: oldRv, resourceVersionMatch: 'Exact', limit: 1 });
          return false;
        } catch (e) {
          if ((e as { code?: number }).code !== 410) throw e;
          return true;
        }
      };
      for (let i = 0; !(await compacted()); i++) {
        expect(i, 'etcd compacted within 30 s').toBeLessThan(60);
        await podLabels(a, 'shop', 'stays', { v: '2', n: String(i) });
        await sleep(500);
      }
      await proxy.resume();
      await until('a relist', () => id.stats().relists > before.relists, 20_000);
      await until('the deletion seen', () => id.lookup('10.244.1.11') === undefined && id.lookup('10.244.1.12')?.name === 'came');
      const after = id.stats();
      expect(after.lists).toBeGreaterThan(before.lists);
      // The watch request that got 410 started from the old resourceVersion.
      const tooOld = proxy.requests.filter((r) => r.url.startsWith('/api/v1/pods?') && r.url.includes('watch=true'));
      expect(tooOld.length).toBeGreaterThanOrEqual(2);
      expect(events).toContain('delete goes');
      expect(events).toContain('add came');
      expect(id.lookup('10.244.1.10')?.labels?.v).toBe('2');
      // The deleted pod's version ended when the relist showed it gone, and still answers before.
      expect(id.lookup('10.244.1.11', gone)?.name).toBe('goes');
    } finally {
      id.stop();
    }
  });
});
