import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageSampler } from '../../../src/enrich/usage/index.js';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../../helpers/apiserver.js';

/**
 * The "not reachable" path against a real kube-apiserver (scripts/k8s/apiserver.sh: kube-apiserver
 * 1.32 and etcd, no kubelet, no metrics-server). Nothing registers the metrics.k8s.io APIService
 * there, exactly as on a cluster without metrics-server, so discovery answers 404 and the sampler
 * must say so in words. The stand-in (sampler.test.ts) covers the samples themselves, which this
 * server cannot give: no metrics-server, and no kubelets for one to scrape.
 */
const why = apiserverUnavailable();
if (why) console.log(`usage apiserver test skipped: ${why}`);

let api: TestApiserver | undefined;
beforeAll(async () => { if (!why) api = await startApiserver(); }, 600_000);
afterAll(async () => { await api?.stop(); });

describe.skipIf(why !== '')('UsageSampler against a real kube-apiserver without metrics-server', () => {
  it('answers, in words, that the metrics API is not there (404 from discovery), and asks discovery again only after 5 minutes', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(api!.kubeconfig);
    let now = Date.now() / 1000;
    const s = new UsageSampler({ kubeconfig: kc, now: () => now });
    await s.poll();
    expect(s.usageOver(['default/payment-7f9c'], Date.now() / 1000 - 10, Date.now() / 1000)).toEqual({
      unavailable: 'metrics API not reachable: metrics.k8s.io/v1beta1 answered 404 (metrics-server not installed)',
    });
    now += 15;
    await s.poll();
    // Not at the next interval: the answer would be the same, and every agent would ask it.
    expect(s.requests).toEqual({ discovery: 1, list: 0 });
    now += 300;
    await s.poll();
    // Then again (metrics-server may have been installed), never a list of a group that is not there.
    expect(s.requests).toEqual({ discovery: 2, list: 0 });
  });
});
