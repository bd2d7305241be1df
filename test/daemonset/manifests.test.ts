// daemonset/: every manifest checked offline against the Kubernetes OpenAPI schemas
// (kubernetes-models' validators), and the agent's security properties asserted, for the base
// files as written, and, where kubectl is installed, for the rendered kind overlay, the overlay
// with the opt-in eBPF patch and the demo. Each check is also shown to reject a broken copy.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML, walked by path */
type Obj = Record<string, any>;

const ROOT = resolve(import.meta.dirname, '../..');
const DIR = join(ROOT, 'daemonset');

// One validator per kind the manifests use: a kind with none here fails the test, not passes it.
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace, 'v1/ServiceAccount': ServiceAccount, 'v1/ConfigMap': ConfigMap, 'v1/Secret': Secret, 'v1/Service': Service,
  'apps/v1/DaemonSet': DaemonSet, 'apps/v1/Deployment': Deployment, 'batch/v1/Job': Job,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole, 'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
};

/** Schema errors of one object, [] when it is valid. */
export function schemaProblems(o: Obj): string[] {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) return [`${o.apiVersion} ${o.kind}: no schema known for this kind`];
  if (!o.metadata?.name) return [`${o.kind}: metadata.name is missing`];
  try {
    new Model(o as never).validate();
    return [];
  } catch (e) {
    return [`${o.kind} ${o.metadata.name}: ${(e as Error).message}`];
  }
}

function loadYaml(text: string, where: string): Obj[] {
  return parseAllDocuments(text).flatMap((d) => {
    if (d.errors.length) throw new Error(`${where}: ${d.errors[0]!.message}`);
    const v = d.toJS() as Obj | null;
    return v ? [v] : [];
  });
}

function baseFiles(): Obj[] {
  const dir = join(DIR, 'base');
  return readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) => loadYaml(readFileSync(join(dir, f), 'utf8'), `daemonset/base/${f}`));
}

const KUBECTL = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!KUBECTL) console.warn('test/daemonset: SKIP the rendered overlays: kubectl is not installed (the base files are still checked)');

function kustomize(dir: string, ...flags: string[]): Obj[] {
  return loadYaml(execFileSync('kubectl', ['kustomize', ...flags, dir], { encoding: 'utf8' }), `kubectl kustomize ${dir}`);
}

const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

// ---------------------------------------------------------------------------------------------
// The security properties (issue 15 §1), each a problem string when broken.

const NET = ['NET_ADMIN', 'NET_RAW'];
const EBPF_EXTRA = ['BPF', 'PERFMON', 'SYS_PTRACE', 'SYS_ADMIN', 'DAC_READ_SEARCH'];
/**
 * Forbidden everywhere but the opt-in eBPF patch, which needs them for TLS uprobes (measured:
 * test/agent/tls-caps.test.ts): SYS_ADMIN creates a uprobe on kernels since 2025, DAC_READ_SEARCH
 * reads tracepoint ids in the root-only tracefs.
 */
const EBPF_ONLY = ['SYS_ADMIN'];
const FORBIDDEN_CAPS = ['SYS_ADMIN', 'CAP_SYS_ADMIN', 'SYS_RESOURCE', 'CAP_SYS_RESOURCE', 'ALL'];
const READ_VERBS = new Set(['get', 'list', 'watch']);

/** Every capability added anywhere in these objects, with where. */
function addedCaps(objs: Obj[]): { where: string; cap: string }[] {
  const out: { where: string; cap: string }[] = [];
  for (const o of objs) {
    const spec = o.spec?.template?.spec;
    if (!spec) continue;
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      for (const cap of c.securityContext?.capabilities?.add ?? []) out.push({ where: `${o.kind} ${o.metadata.name}/${c.name}`, cap: String(cap) });
    }
  }
  return out;
}

/** What is wrong with the agent DaemonSet; `ebpf` says whether the eBPF patch is applied. */
export function agentProblems(ds: Obj, ebpf = false): string[] {
  const p: string[] = [];
  const spec = ds.spec?.template?.spec ?? {};
  const c = (spec.containers ?? []).find((x: Obj) => x.name === 'agent');
  if (!c) return ['no container "agent"'];
  const sc = c.securityContext ?? {};
  const args: string[] = c.args ?? [];
  const arg = (flag: string) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

  if (spec.hostNetwork !== true) p.push('hostNetwork is not true');
  if (spec.dnsPolicy !== 'ClusterFirstWithHostNet') p.push(`dnsPolicy is ${spec.dnsPolicy}, not ClusterFirstWithHostNet`);
  if (sc.privileged === true || spec.securityContext?.privileged === true) p.push('privileged');
  if (sc.allowPrivilegeEscalation !== false) p.push('allowPrivilegeEscalation is not false');
  const drop = sc.capabilities?.drop ?? [];
  if (!drop.includes('ALL')) p.push(`capabilities.drop is [${drop}], not ALL`);
  const add = [...(sc.capabilities?.add ?? [])].map(String).sort();
  const want = [...NET, ...(ebpf ? EBPF_EXTRA : [])].sort();
  if (add.join() !== want.join()) p.push(`capabilities.add is [${add}], want exactly [${want}]`);
  if (Boolean(spec.hostPID) !== ebpf) p.push(ebpf ? 'the eBPF patch does not set hostPID' : 'hostPID without the eBPF patch');
  if (sc.readOnlyRootFilesystem !== true) p.push('readOnlyRootFilesystem is not true');
  const runAsNonRoot = sc.runAsNonRoot ?? spec.securityContext?.runAsNonRoot;
  const runAsUser = sc.runAsUser ?? spec.securityContext?.runAsUser;
  if (runAsNonRoot !== true) p.push('runAsNonRoot is not true');
  if (runAsUser === undefined || runAsUser === 0) p.push(`runAsUser is ${runAsUser}, not a non-root id`);

  // hostPath: only the eBPF mounts, only with the patch, only read-only.
  const hostPaths = (spec.volumes ?? []).filter((v: Obj) => v.hostPath);
  const paths = hostPaths.map((v: Obj) => v.hostPath.path).sort();
  const wantPaths = ebpf ? ['/proc', '/sys/fs/bpf', '/sys/kernel/btf', '/sys/kernel/tracing'] : [];
  if (paths.join() !== wantPaths.join()) p.push(`hostPath volumes [${paths}], want [${wantPaths}]`);
  for (const v of hostPaths) {
    const m = (c.volumeMounts ?? []).find((x: Obj) => x.name === v.name);
    if (m && m.readOnly !== true) p.push(`hostPath ${v.hostPath.path} is mounted writable`);
  }

  // A writable data volume at --data-dir, the root filesystem being read-only.
  const dataDir = arg('--data-dir');
  const dataMount = (c.volumeMounts ?? []).find((m: Obj) => m.mountPath === dataDir);
  if (!dataDir || !dataMount || dataMount.readOnly) p.push(`--data-dir ${dataDir} is not a writable volume mount`);
  else if (!(spec.volumes ?? []).some((v: Obj) => v.name === dataMount.name && (v.emptyDir || v.hostPath?.path === '/var/lib/tapwire'))) {
    p.push(`--data-dir ${dataDir}: its volume is neither an emptyDir nor hostPath /var/lib/tapwire`);
  }

  // The API: beyond loopback, so with a token from a Secret.
  const listen = arg('--listen') ?? '';
  if (!listen || /^(127\.|\[::1\]|localhost|:)/.test(listen)) p.push(`--listen "${listen}" is loopback: unreachable from the hub and port-forward`);
  const env = (name: string) => (c.env ?? []).find((e: Obj) => e.name === name);
  if (!env('TAPWIRE_TOKEN')?.valueFrom?.secretKeyRef?.name) p.push('TAPWIRE_TOKEN does not come from a secretKeyRef');
  if (args.some((a) => a.startsWith('--token'))) p.push('--token on the command line (visible in ps and the manifest)');
  if (env('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath !== 'spec.nodeName') p.push('NODE_NAME is not from fieldRef spec.nodeName');
  // Issue 16: identities from the API server (this node's pods: NODE_NAME), not a hand-kept file.
  if (!args.includes('--kubernetes')) p.push('no --kubernetes: flows would carry bare addresses');

  for (const probe of ['livenessProbe', 'readinessProbe']) {
    const pr = c[probe];
    const onHealthz = pr?.httpGet?.path === '/healthz' || (pr?.exec?.command ?? []).some((s: string) => s.includes('/healthz'));
    if (!onHealthz) p.push(`${probe} is not on /healthz`);
  }

  const r = c.resources ?? {};
  for (const k of ['requests', 'limits']) for (const res of ['cpu', 'memory']) if (!r[k]?.[res]) p.push(`resources.${k}.${res} is not set`);
  // The soak's highest RSS (docs/reliability.md): 944 MB. A request below it overcommits the node.
  if (r.requests?.memory && bytes(r.requests.memory) < 944e6) p.push(`memory request ${r.requests.memory} is below the measured 944 MB`);
  if (r.limits?.memory && r.requests?.memory && bytes(r.limits.memory) < bytes(r.requests.memory)) p.push('memory limit below request');
  return p;
}

function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(String(q));
  if (!m) return NaN;
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** What is wrong with the ClusterRole: read verbs only, on at least the resources issue 15 lists. */
export function rbacProblems(role: Obj): string[] {
  const p: string[] = [];
  const granted = new Set<string>();
  for (const rule of role.rules ?? []) {
    for (const v of rule.verbs ?? []) if (!READ_VERBS.has(v)) p.push(`verb "${v}" on [${rule.resources}]`);
    if (rule.nonResourceURLs) p.push('nonResourceURLs granted');
    for (const g of rule.apiGroups ?? []) for (const r of rule.resources ?? []) {
      if (r === '*' || g === '*') p.push(`wildcard ${g}/${r}`);
      granted.add(`${g}/${r}`);
    }
  }
  for (const want of ['/pods', '/services', '/nodes', '/namespaces', '/events', 'discovery.k8s.io/endpointslices', 'apps/replicasets', 'batch/jobs', 'events.k8s.io/events', 'metrics.k8s.io/pods']) {
    if (!granted.has(want)) p.push(`no read access to ${want}`);
  }
  return p;
}

function noForbiddenCaps(objs: Obj[], allowed: string[] = []): string[] {
  return addedCaps(objs).filter(({ cap }) => FORBIDDEN_CAPS.includes(cap.toUpperCase()) && !allowed.includes(cap.toUpperCase()))
    .map(({ where, cap }) => `${where} adds ${cap}`);
}

function privilegedAnywhere(objs: Obj[]): string[] {
  return objs.flatMap((o) => {
    const spec = o.spec?.template?.spec;
    return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]
      .filter((c: Obj) => c.securityContext?.privileged === true || c.securityContext?.allowPrivilegeEscalation !== false)
      .map((c: Obj) => `${o.kind} ${o.metadata.name}/${c.name}: privileged or may escalate`);
  });
}

// ---------------------------------------------------------------------------------------------

function checkSet(name: string, objs: () => Obj[], opts: { agent?: 'default' | 'ebpf' } = {}) {
  it(`${name}: every object is valid against the Kubernetes schemas`, () => {
    const all = objs();
    expect(all.length).toBeGreaterThan(0);
    expect(all.flatMap(schemaProblems)).toEqual([]);
  });
  it(`${name}: no SYS_ADMIN or SYS_RESOURCE, nothing privileged, nothing that may escalate`, () => {
    expect(noForbiddenCaps(objs(), opts.agent === 'ebpf' ? EBPF_ONLY : [])).toEqual([]);
    expect(privilegedAnywhere(objs())).toEqual([]);
  });
  if (opts.agent) {
    it(`${name}: the agent DaemonSet keeps its security properties`, () => {
      expect(agentProblems(find(objs(), 'DaemonSet', 'tapwire-agent'), opts.agent === 'ebpf')).toEqual([]);
    });
  }
}

describe('daemonset/base, as written', () => {
  const objs = baseFiles;
  checkSet('base', objs, { agent: 'default' });

  it('RBAC: read-only, on the resources the identity source needs, bound to the agents\' ServiceAccount', () => {
    const all = objs();
    expect(rbacProblems(find(all, 'ClusterRole', 'tapwire-reader'))).toEqual([]);
    const binding = find(all, 'ClusterRoleBinding', 'tapwire-reader');
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'tapwire-reader' });
    const sa = find(all, 'ServiceAccount', 'tapwire');
    expect(binding.subjects).toContainEqual({ kind: 'ServiceAccount', name: 'tapwire', namespace: sa.metadata.namespace });
    expect(find(all, 'DaemonSet', 'tapwire-agent').spec.template.spec.serviceAccountName).toBe('tapwire');
  });

  it('a headless Service selects the agents; the hub has a Deployment and a Service', () => {
    const all = objs();
    const ds = find(all, 'DaemonSet', 'tapwire-agent');
    const headless = find(all, 'Service', 'tapwire-agent');
    expect(headless.spec.clusterIP).toBe('None');
    expect(ds.spec.template.metadata.labels).toMatchObject(headless.spec.selector);
    const hub = find(all, 'Deployment', 'tapwire-hub');
    expect(hub.spec.template.spec.containers[0].args[0]).toBe('hub');
    // Issue 16: one hub, finding the agents through their headless Service.
    expect(hub.spec.replicas).toBe(1);
    expect(hub.spec.template.spec.containers[0].args).toContain('--discover=tapwire/tapwire-agent');
    // No capability: so not the agent's image, whose node carries file capabilities (EPERM at exec).
    expect(hub.spec.template.spec.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(hub.spec.template.spec.containers[0].image).not.toBe(find(all, 'DaemonSet', 'tapwire-agent').spec.template.spec.containers[0].image);
    expect(hub.spec.template.metadata.labels).toMatchObject(find(all, 'Service', 'tapwire-hub').spec.selector);
  });

  it('the opt-in eBPF patch adds exactly BPF, PERFMON, SYS_PTRACE, SYS_ADMIN, DAC_READ_SEARCH, hostPID and read-only eBPF mounts, and is off by default', () => {
    const patch = loadYaml(readFileSync(join(DIR, 'overlays/kind/ebpf-patch.yaml'), 'utf8'), 'ebpf-patch.yaml')[0]!;
    const spec = patch.spec.template.spec;
    expect(spec.hostPID).toBe(true);
    const add = [...spec.containers[0].securityContext.capabilities.add].sort();
    expect(add).toEqual([...NET, ...EBPF_EXTRA].sort());
    expect(noForbiddenCaps([patch], EBPF_ONLY)).toEqual([]);
    expect(noForbiddenCaps([patch])).toEqual([`DaemonSet tapwire-agent/agent adds SYS_ADMIN`]);
    expect(spec.volumes.map((v: Obj) => v.hostPath.path).sort()).toEqual(['/proc', '/sys/fs/bpf', '/sys/kernel/btf', '/sys/kernel/tracing']);
    // Issue 17: the agent it patches reads TLS plaintext.
    expect(spec.containers[0].args).toContain('--tls=auto');
    expect(spec.containers[0].volumeMounts.every((m: Obj) => m.readOnly === true)).toBe(true);
    const kust = loadYaml(readFileSync(join(DIR, 'overlays/kind/kustomization.yaml'), 'utf8'), 'kustomization.yaml')[0]!;
    expect((kust.patches ?? []).map((x: Obj) => x.path)).not.toContain('ebpf-patch.yaml');
  });
});

describe('the checks reject what they should', () => {
  const ds = () => structuredClone(find(baseFiles(), 'DaemonSet', 'tapwire-agent'));
  const agent = (o: Obj) => o.spec.template.spec.containers.find((c: Obj) => c.name === 'agent');
  const broken: [string, (o: Obj) => void, RegExp][] = [
    ['privileged', (o) => { agent(o).securityContext.privileged = true; }, /privileged/],
    ['escalation allowed', (o) => { agent(o).securityContext.allowPrivilegeEscalation = true; }, /allowPrivilegeEscalation/],
    ['SYS_ADMIN added', (o) => { agent(o).securityContext.capabilities.add.push('SYS_ADMIN'); }, /capabilities.add/],
    ['NET_ADMIN missing', (o) => { agent(o).securityContext.capabilities.add = ['NET_RAW']; }, /capabilities.add/],
    ['drop ALL missing', (o) => { delete agent(o).securityContext.capabilities.drop; }, /drop/],
    ['hostPID without the patch', (o) => { o.spec.template.spec.hostPID = true; }, /hostPID/],
    ['a writable root filesystem', (o) => { agent(o).securityContext.readOnlyRootFilesystem = false; }, /readOnlyRootFilesystem/],
    ['root', (o) => { agent(o).securityContext.runAsUser = 0; agent(o).securityContext.runAsNonRoot = false; }, /runAsUser|runAsNonRoot/],
    ['a hostPath volume', (o) => { o.spec.template.spec.volumes.push({ name: 'h', hostPath: { path: '/' } }); }, /hostPath/],
    ['the token inline', (o) => { agent(o).env = agent(o).env.map((e: Obj) => (e.name === 'TAPWIRE_TOKEN' ? { name: e.name, value: 'x' } : e)); }, /secretKeyRef/],
    ['NODE_NAME missing', (o) => { agent(o).env = agent(o).env.filter((e: Obj) => e.name !== 'NODE_NAME'); }, /NODE_NAME/],
    ['no liveness probe', (o) => { delete agent(o).livenessProbe; }, /livenessProbe/],
    ['a loopback API', (o) => { agent(o).args = agent(o).args.map((a: string) => (a.startsWith('--listen=') ? '--listen=127.0.0.1:8899' : a)); }, /loopback/],
    ['no memory limit', (o) => { delete agent(o).resources.limits.memory; }, /limits.memory/],
    ['a guessed memory request', (o) => { agent(o).resources.requests.memory = '256Mi'; }, /944 MB/],
    ['no Kubernetes identities', (o) => { agent(o).args = agent(o).args.filter((a: string) => a !== '--kubernetes'); }, /--kubernetes/],
    ['a data dir on the read-only root', (o) => { agent(o).args = agent(o).args.map((a: string) => (a.startsWith('--data-dir=') ? '--data-dir=/var/tmp/tapwire' : a)); }, /--data-dir/],
  ];
  for (const [name, mutate, why] of broken) {
    it(`agent: ${name}`, () => {
      const o = ds();
      mutate(o);
      expect(agentProblems(o).join('\n')).toMatch(why);
    });
  }

  it('RBAC: a write verb, a wildcard, a missing resource', () => {
    const role = () => structuredClone(find(baseFiles(), 'ClusterRole', 'tapwire-reader'));
    const w = role(); w.rules[0].verbs.push('create');
    expect(rbacProblems(w).join()).toMatch(/verb "create"/);
    const s = role(); s.rules.push({ apiGroups: [''], resources: ['*'], verbs: ['get'] });
    expect(rbacProblems(s).join()).toMatch(/wildcard/);
    const m = role(); m.rules = m.rules.filter((r: Obj) => !r.apiGroups.includes('metrics.k8s.io'));
    expect(rbacProblems(m).join()).toMatch(/metrics\.k8s\.io\/pods/);
  });

  it('schema: a wrong type, a missing required field, an unknown kind', () => {
    const a = ds(); a.spec.template.spec.hostNetwork = 'yes';
    expect(schemaProblems(a).join()).toMatch(/hostNetwork must be boolean/);
    const b = ds(); delete b.spec.selector;
    expect(schemaProblems(b).join()).toMatch(/selector/);
    const c = ds(); delete agent(c).name;
    expect(schemaProblems(c).join()).toMatch(/name/);
    expect(schemaProblems({ apiVersion: 'apps/v1', kind: 'StatefulThing', metadata: { name: 'x' } }).join()).toMatch(/no schema/);
  });
});

describe.skipIf(!KUBECTL)('rendered with kubectl kustomize (offline)', () => {
  const kind = () => kustomize(join(DIR, 'overlays/kind'));
  checkSet('overlays/kind', kind, { agent: 'default' });

  it('overlays/kind: the built image, and the service subnet of kind.yaml left out of the capture', () => {
    const all = kind();
    const ds = find(all, 'DaemonSet', 'tapwire-agent');
    const c = ds.spec.template.spec.containers[0];
    expect(c.image).toBe(`localhost/tapwire:${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`);
    const cluster = loadYaml(readFileSync(join(DIR, 'kind.yaml'), 'utf8'), 'kind.yaml')[0]!;
    expect(c.args).toContain(`--filter=not net ${cluster.networking.serviceSubnet}`);
    for (const o of all) if (o.kind === 'ClusterRole') expect(rbacProblems(o)).toEqual([]);
  });

  // The opt-in patch enabled the way docs/kubernetes.md says: its line uncommented, in a copy.
  const ebpf = () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tapwire-ebpf-'));
    try {
      cpSync(DIR, join(tmp, 'daemonset'), { recursive: true });
      const k = join(tmp, 'daemonset/overlays/kind/kustomization.yaml');
      const text = readFileSync(k, 'utf8');
      const enabled = text.replace(/^ {2}# - path: ebpf-patch\.yaml$/m, '  - path: ebpf-patch.yaml');
      if (enabled === text) throw new Error('overlays/kind/kustomization.yaml has no commented-out "- path: ebpf-patch.yaml" line');
      writeFileSync(k, enabled);
      return kustomize(join(tmp, 'daemonset/overlays/kind'));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  };
  checkSet('overlays/kind + ebpf-patch.yaml', ebpf, { agent: 'ebpf' });

  const demo = () => kustomize(join(DIR, 'demo'), '--load-restrictor', 'LoadRestrictionsNone');
  checkSet('demo', demo);

  it('demo: order-service, payment-service and postgres as Deployments with Services, a test Job, and the demo\'s own code', () => {
    const all = demo();
    for (const name of ['order-service', 'payment-service', 'postgres']) {
      const d = find(all, 'Deployment', name);
      expect(d.spec.template.metadata.labels).toMatchObject(find(all, 'Service', name).spec.selector);
      expect(d.spec.template.metadata.labels['app.kubernetes.io/name']).toBe(name); // the workload the spec names
    }
    const job = find(all, 'Job', 'demo-test');
    expect(job.spec.template.spec.containers[0].command.join(' ')).toContain('driver.mjs');
    const code = all.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('demo-code'))!;
    for (const f of ['order-service.mjs', 'payment-service.mjs', 'driver.mjs']) {
      expect(code.data[f]).toBe(readFileSync(join(ROOT, 'scripts/record/demo', f), 'utf8'));
    }
  });
});

describe('docs/kubernetes.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/kubernetes.md'), 'utf8');
  it('every daemonset/ path it names exists, and the image it builds is the one the overlay runs', () => {
    // Not kubectl's daemonset/<name> (daemonset/tapwire-agent): that is an object, not a path.
    const paths = [...new Set(doc.match(/(?<![\w/])daemonset\/[\w./-]+\w/g) ?? [])].filter((p) => !p.startsWith('daemonset/tapwire-'));
    expect(paths.length).toBeGreaterThan(3);
    expect(paths.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
    const kust = loadYaml(readFileSync(join(DIR, 'overlays/kind/kustomization.yaml'), 'utf8'), 'kustomization.yaml')[0]!;
    const image = `${kust.images[0].newName}:${kust.images[0].newTag}`;
    expect(doc).toContain(`docker build -t ${image}`);
    expect(doc).toContain(`kind load docker-image ${image}`);
    expect(doc).toContain('kubectl apply -k daemonset/overlays/kind');
  });
});
