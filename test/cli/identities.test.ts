import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiserverUnavailable, startApiserver, type TestApiserver } from '../helpers/apiserver.js';
import { apis, deployment, namespace, pod } from '../enrich/kubernetes/cluster.js';

/** `analyze` and `verify` name the peers of a capture (issue 16): the built bin, real files. */
const BIN = 'dist/cli/main.js';
const DEMO = 'pcaps/demo/demo.pcap';
const dir = mkdtempSync(join(tmpdir(), 'tapwire-ids-'));

function tapwire(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: dir, TAPWIRE_REDACT_KEY: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const IDS = join(dir, 'ids.json');
beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
  writeFileSync(IDS, JSON.stringify({
    '127.0.0.2': { name: 'orders-7c9', namespace: 'shop', workload: 'orders', service: 'orders' },
    '127.0.0.4': { name: 'db-0', namespace: 'shop', workload: 'db', service: 'postgres' },
  }));
});

describe('--identities on capture commands', () => {
  it('analyze names both peers of every flow the file knows, and the filter reads src.service', () => {
    const all = tapwire(['analyze', DEMO, '--format', 'jsonl', '--identities', IDS]);
    expect(all.status, all.stderr).toBe(0);
    const flows = all.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const toDb = flows.filter((f) => f.dst.ip === '127.0.0.4');
    expect(toDb.length).toBeGreaterThan(0);
    for (const f of toDb) expect(f.dst).toMatchObject({ name: 'db-0', namespace: 'shop', workload: 'db', service: 'postgres' });
    // Only what the file knows: the client at 127.0.0.1 stays an address.
    for (const f of flows.filter((x) => x.src.ip === '127.0.0.1')) expect(f.src.name).toBeUndefined();

    const fromOrders = tapwire(['analyze', DEMO, '--format', 'jsonl', '--identities', IDS, '--filter', 'src.service == "orders"']);
    expect(fromOrders.status, fromOrders.stderr).toBe(0);
    const picked = fromOrders.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(picked.length).toBe(flows.filter((f) => f.src.ip === '127.0.0.2').length);
    expect(picked.every((f) => f.src.service === 'orders')).toBe(true);
  });

  it('verify judges the named flows: evidence carries the names', () => {
    const r = tapwire(['verify', DEMO, '--format', 'json', '--identities', IDS]);
    expect([0, 1, 3]).toContain(r.status);
    expect(r.stdout).toContain('orders-7c9');
  });

  it('a bad identities file: exit 2 before decoding, naming the file and the entry', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ '127.0.0.2': { name: 'x', servcie: 'y' } }));
    for (const cmd of ['analyze', 'verify']) {
      const r = tapwire([cmd, DEMO, '--identities', bad]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--identities ${bad}: $["127.0.0.2"].servcie: unknown field`);
      expect(r.stdout).toBe('');
    }
  });
});

/**
 * `--kubeconfig`: a real kube-apiserver (scripts/k8s/apiserver.sh) whose pods hold the demo
 * capture's loopback addresses. Addresses are not special-cased, loopback included.
 */
const noApi = apiserverUnavailable();
if (noApi) console.warn(`test/cli/identities.test.ts: --kubeconfig cases skipped: ${noApi}`);

describe.skipIf(noApi !== '')('--kubeconfig on capture commands (a real API server)', () => {
  let api: TestApiserver;
  beforeAll(async () => {
    api = await startApiserver();
    const a = apis(api.kubeconfig);
    await namespace(a, 'shop');
    const { rs } = await deployment(a, 'shop', 'orders', '7c9d5');
    await pod(a, 'shop', 'orders-7c9d5-abcde', { node: 'node-1', ips: ['127.0.0.2'], labels: { app: 'orders', 'pod-template-hash': '7c9d5' }, owner: rs });
    await pod(a, 'shop', 'db-0', { node: 'node-2', ips: ['127.0.0.4'], labels: { app: 'db' } });
  }, 120_000);
  afterAll(async () => api?.stop(), 60_000);

  it('analyze names the peers from the cluster: pod, namespace, top workload, node, labels', () => {
    const r = tapwire(['analyze', DEMO, '--format', 'jsonl', '--kubeconfig', api.kubeconfig, '--filter', 'src.workload == "orders"']);
    expect(r.status, r.stderr).toBe(0);
    const flows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(flows.length).toBeGreaterThan(0);
    for (const f of flows) expect(f.src).toMatchObject({ name: 'orders-7c9d5-abcde', namespace: 'shop', workload: 'orders', node: 'node-1', labels: { app: 'orders' } });
    expect(flows.filter((f) => f.dst.ip === '127.0.0.4').every((f) => f.dst.name === 'db-0' && f.dst.node === 'node-2')).toBe(true);
  });

  it('the identities file overrides the cluster where both name an address', () => {
    const r = tapwire(['analyze', DEMO, '--format', 'jsonl', '--kubeconfig', api.kubeconfig, '--identities', IDS, '--filter', 'dst.ip == "127.0.0.4"']);
    expect(r.status, r.stderr).toBe(0);
    const flows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(flows.length).toBeGreaterThan(0);
    // The file's name and service; the cluster's node, which the file does not give.
    for (const f of flows) expect(f.dst).toMatchObject({ name: 'db-0', service: 'postgres', workload: 'db', node: 'node-2' });
  });

  it('a kubeconfig that cannot be used: exit 2 naming it, before decoding', () => {
    const missing = join(dir, 'nope.yaml');
    const r = tapwire(['verify', DEMO, '--kubeconfig', missing]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`--kubeconfig ${missing}: cannot read the kubeconfig: no such file`);
    const wrongToken = join(dir, 'wrong.yaml');
    writeFileSync(wrongToken, readFileSync(api.kubeconfig, 'utf8').replace(/token: "?[0-9a-f]+"?/, 'token: "wrong"'));
    const denied = tapwire(['analyze', DEMO, '--kubeconfig', wrongToken]);
    expect(denied.status).toBe(2);
    expect(denied.stderr).toMatch(new RegExp(`--kubeconfig ${wrongToken}: .*(401|Unauthorized)`));
  });
});
