import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeConfigError, loadKubeConfig, nodeName } from '../../../src/enrich/kubernetes/index.js';

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tapwire-kubeconfig-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

const GOOD = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: "t"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;

describe('loadKubeConfig', () => {
  it('loads a kubeconfig file', async () => {
    const kc = await loadKubeConfig({ kubeconfig: file('ok.yaml', GOOD) });
    expect(kc.getCurrentCluster()?.server).toBe('https://10.0.0.1:6443');
  });

  it.each([
    ['missing file', undefined, /missing\.yaml: cannot read the kubeconfig: no such file/],
    ['not YAML', 'clusters: [\n  - {', /bad\.yaml: not YAML/],
    ['not a mapping', '- 1\n- 2\n', /bad\.yaml: not a kubeconfig/],
    ['no current context', GOOD.replace('current-context: x\n', ''), /bad\.yaml: no current-context/],
    ['unknown context', GOOD.replace('current-context: x', 'current-context: y'), /bad\.yaml: current-context "y" is not in contexts/],
    ['unknown cluster', GOOD.replace('cluster: c,', 'cluster: d,'), /bad\.yaml: context "x" names cluster "d", which is not in clusters/],
    ['no server', GOOD.replace('server: "https://10.0.0.1:6443", ', ''), /bad\.yaml: cluster "c" has no server URL/],
  ])('names the file and what is wrong: %s', async (_what, text, message) => {
    const f = text === undefined ? join(dir, 'missing.yaml') : file('bad.yaml', text);
    const err = await loadKubeConfig({ kubeconfig: f }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeConfigError);
    expect((err as Error).message).toMatch(message);
  });

  it('in a cluster: the service account; outside: says to give --kubeconfig', async () => {
    const hostBefore = process.env.KUBERNETES_SERVICE_HOST;
    await expect(loadKubeConfig({ env: {} })).rejects.toThrow('not in a cluster (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set): give --kubeconfig');
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    await expect(loadKubeConfig({ env, root: dir })).rejects.toThrow(/serviceaccount\/token: cannot read the service-account token \(ENOENT\)/);
    const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'tok');
    writeFileSync(join(sa, 'ca.crt'), '');
    const kc = await loadKubeConfig({ env, root: dir });
    expect(kc.getCurrentCluster()?.server).toBe('https://[fd00::1]:443');
    expect(process.env.KUBERNETES_SERVICE_HOST).toBe(hostBefore);
  });
});

describe('nodeName', () => {
  it('takes --node, else NODE_NAME, else says what to give', () => {
    expect(nodeName({ node: 'n1' }, { NODE_NAME: 'n2' })).toBe('n1');
    expect(nodeName({}, { NODE_NAME: 'n2' })).toBe('n2');
    expect(() => nodeName({}, {})).toThrow('no node name: give --node <name> or set NODE_NAME');
  });
});
