import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageSampler } from '../../../src/enrich/usage/index.js';

/**
 * The "not reachable" path against a real kube-apiserver (scripts/k8s/apiserver.sh: kube-apiserver
 * 1.32 and etcd, no kubelet, no metrics-server). Nothing registers the metrics.k8s.io APIService
 * there, exactly as on a cluster without metrics-server, so discovery answers 404 and the sampler
 * must say so in words. The stand-in (sampler.test.ts) covers the samples themselves, which this
 * server cannot give: no metrics-server, and no kubelets for one to scrape.
 */
const CACHE = process.env.TAPWIRE_K8S_CACHE ?? '/var/cache/tapwire-k8s';
const cached = existsSync(`${CACHE}/bin/kube-apiserver-1.32.13`) && existsSync(`${CACHE}/bin/etcd-3.5.36`);
if (!cached) console.log(`usage apiserver test skipped: no cached kube-apiserver and etcd in ${CACHE}/bin (scripts/k8s/apiserver.sh --build builds them)`);

let child: ChildProcess | undefined, kubeconfig = '';

beforeAll(async () => {
  if (!cached) return;
  // The shared helper (test/helpers/apiserver.ts) is being written alongside; the script is the same server.
  child = spawn('bash', ['scripts/k8s/apiserver.sh'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  kubeconfig = await new Promise<string>((resolve, reject) => {
    child!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^KUBECONFIG=(.+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    child!.on('exit', (code) => reject(new Error(`apiserver.sh exited ${code}: ${err.slice(-2000)}`)));
  });
}, 120_000);

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child!.on('exit', r));
  child.kill('SIGTERM');
  await gone;
});

describe.skipIf(!cached)('UsageSampler against a real kube-apiserver without metrics-server', () => {
  it('answers, in words, that the metrics API is not there (404 from discovery), and keeps asking discovery', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const s = new UsageSampler({ kubeconfig: kc });
    await s.poll();
    expect(s.usageOver(['default/payment-7f9c'], Date.now() / 1000 - 10, Date.now() / 1000)).toEqual({
      unavailable: 'metrics API not reachable: metrics.k8s.io/v1beta1 answered 404 (metrics-server not installed)',
    });
    await s.poll();
    // Discovery again (metrics-server may be installed later), never a list of a group that is not there.
    expect(s.requests).toEqual({ discovery: 2, list: 0 });
  });
});
