import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Issue 15, part 2: the built image (npm run image) run as the DaemonSet runs it, without a container
 * runtime (none starts here, ../shared/ENVIRONMENT.md). The image's root filesystem (buildah mount) is
 * mounted read-only, with a writable data directory at /data, /proc, /sys of the "node" network namespace
 * and /dev; its entrypoint and environment come from the image's config; it runs as user 65532 with
 * NET_RAW and NET_ADMIN only (setpriv: bounding, inheritable and ambient sets, no_new_privs as
 * allowPrivilegeEscalation: false sets). Pods are network namespaces on a bridge inside the "node"
 * namespace; one pod calls another over HTTP and the agent's /api/flows must show those calls.
 * Then the same without NET_RAW: the agent exits 2 and names the capability. Last, launched as Kubernetes
 * launches a non-root container (capabilities granted, but none ambient, so lost at execve): an image
 * built with CAPTURE_FILE_CAPS captures, one without it cannot. TAPWIRE_IMAGE picks another tag, e.g.
 * one built with `CAPTURE_FILE_CAPS=cap_net_raw,cap_net_admin+ep npm run image`.
 */
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const IMAGE = process.env.TAPWIRE_IMAGE || `localhost/tapwire:${version}`;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const imageExists = () => spawnSync('buildah', ['inspect', '--type', 'image', IMAGE], { stdio: 'ignore' }).status === 0;
const build = process.env.TAPWIRE_IMAGE_BUILD === '1';
const why = process.getuid?.() !== 0 ? 'needs root (buildah mount, network namespaces, setpriv)'
  : !has('ip') ? 'no ip command (apt-get install iproute2)'
    : !has('buildah') && !build ? 'no buildah: build the image with `npm run image`, or set TAPWIRE_IMAGE_BUILD=1'
      : !build && !imageExists() ? `no image ${IMAGE}: build it with \`npm run image\`, or set TAPWIRE_IMAGE_BUILD=1` : '';
if (why) console.warn(`test/image/image.test.ts skipped: ${why}`);

const TOKEN = 'image-test-token';
const CAPS = 'net_raw,net_admin';
const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

interface Agent { proc: ChildProcess; output: () => string; exited: Promise<number | null> }

describe.skipIf(why !== '')(`${IMAGE} run as the DaemonSet runs it (user 65532, NET_RAW+NET_ADMIN only)`, () => {
  const tag = `${process.pid % 10000}${Math.floor(Math.random() * 90 + 10)}`;
  const net = `10.${200 + (process.pid % 50)}.${Math.floor(Math.random() * 200) + 20}`;
  const ns = { node: `twi${tag}node`, srv: `twi${tag}srv`, cli: `twi${tag}cli` };
  const bridge = 'twbr0';
  const nodeIp = `${net}.1`, srvIp = `${net}.11`, cliIp = `${net}.12`;
  let container = '', rootfs = '', dataDir = '';
  let entry: string[] = [], env: string[] = [];
  /** Built with CAPTURE_FILE_CAPS: node carries cap_net_raw,cap_net_admin+ep. */
  let fileCaps = false;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    if (build && !imageExists()) {
      const t0 = Date.now();
      execFileSync('bash', ['scripts/image/build.sh'], { stdio: 'inherit', timeout: 20 * 60_000 });
      console.log(`test/image: built ${IMAGE} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    const config = JSON.parse(run('buildah', ['inspect', '--type', 'image', IMAGE])) as { OCIv1: { config: { Entrypoint?: string[]; Env?: string[]; User?: string } } };
    entry = config.OCIv1.config.Entrypoint ?? [];
    env = config.OCIv1.config.Env ?? [];
    expect(entry).toEqual(['tapwire']);
    expect(config.OCIv1.config.User).toBe('65532:65532');
    container = run('buildah', ['from', IMAGE]);
    rootfs = run('buildah', ['mount', container]);
    fileCaps = /cap_net_admin,cap_net_raw=ep/.test(spawnSync('getcap', [join(rootfs, 'usr/local/bin/node')], { encoding: 'utf8' }).stdout ?? '');
    console.log(`test/image: ${IMAGE}: node's file capabilities: ${fileCaps ? 'cap_net_admin,cap_net_raw=ep' : 'none'}`);
    dataDir = mkdtempSync(join(tmpdir(), 'tapwire-image-data-'));
    chownSync(dataDir, 65532, 65532);
    // The node and its pods.
    for (const n of Object.values(ns)) run('ip', ['netns', 'add', n]);
    run('ip', ['-n', ns.node, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', ns.node, 'link', 'add', bridge, 'type', 'bridge']);
    run('ip', ['-n', ns.node, 'addr', 'add', `${nodeIp}/24`, 'dev', bridge]);
    run('ip', ['-n', ns.node, 'link', 'set', bridge, 'up']);
    for (const [pod, ip, veth] of [[ns.srv, srvIp, 'vsrv'], [ns.cli, cliIp, 'vcli']] as const) {
      run('ip', ['-n', ns.node, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
      run('ip', ['-n', ns.node, 'link', 'set', veth, 'master', bridge, 'up']);
      run('ip', ['-n', pod, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      run('ip', ['-n', pod, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', pod, 'link', 'set', 'lo', 'up']);
    }
  }, 25 * 60_000);

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n]);
    if (container) {
      spawnSync('buildah', ['umount', container]);
      spawnSync('buildah', ['rm', container]);
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** In the node namespace, a private mount namespace: the image read-only, /data writable, then setpriv and the entrypoint. */
  function startAgent(caps: string, args: string[], ambient = true): Agent {
    const mounts = [
      `mount --bind ${rootfs} ${rootfs}`, `mount -o remount,bind,ro ${rootfs}`,
      `mount -t proc proc ${rootfs}/proc`, `mount -t sysfs sysfs ${rootfs}/sys`, `mount --rbind /dev ${rootfs}/dev`,
      `mount --bind ${dataDir} ${rootfs}/data`,
    ].join(' && ');
    const setpriv = ['/usr/bin/setpriv', '--reuid=65532', '--regid=65532', '--clear-groups', '--no-new-privs',
      `--inh-caps=-all${caps && ambient ? `,${caps.split(',').map((c) => `+${c}`).join(',')}` : ''}`,
      `--ambient-caps=-all${caps && ambient ? `,${caps.split(',').map((c) => `+${c}`).join(',')}` : ''}`,
      `--bounding-set=-all${caps ? `,${caps.split(',').map((c) => `+${c}`).join(',')}` : ''}`];
    // What the DaemonSet adds to the image's environment: the redaction key from a Secret (the root
    // filesystem is read-only, so the agent cannot keep a generated one).
    const containerEnv = [...env, 'HOME=/nonexistent', 'TAPWIRE_REDACT_KEY=image-test-redaction-key'];
    const script = `${mounts} && cd / && exec chroot ${rootfs} "$@"`;
    // The environment passes through ip, unshare, sh, chroot and setpriv: no `env` in between, whose own
    // exec would drop capabilities that are not ambient.
    const proc = spawn('ip', ['netns', 'exec', ns.node, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh',
      ...setpriv, ...entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: Object.fromEntries(containerEnv.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])) });
    children.push(proc);
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    return { proc, output: () => out, exited };
  }

  async function waitUp(agent: Agent): Promise<void> {
    const end = Date.now() + 20_000;
    while (!/capturing on/.test(agent.output()) && agent.proc.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  }

  async function inNs(name: string, script: string): Promise<string> {
    const p = spawn('ip', ['netns', 'exec', name, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let out = '', err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (err += d));
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    if (code !== 0) throw new Error(`in ${name}: exited ${code}: ${err}`);
    return out;
  }

  const api = (path: string) => inNs(ns.node,
    `const r = await fetch('http://${nodeIp}:9464${path}', { headers: { authorization: 'Bearer ${TOKEN}' } }); process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() }));`)
    .then((s) => JSON.parse(s) as { status: number; body: string });

  const status = (pid: number, field: string) => new RegExp(`^${field}:\\s*(.+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim();

  it('captures a pod\'s HTTP calls to another pod and serves them on /api/flows', async () => {
    const agent = startAgent(CAPS, ['agent', '--interface', bridge, '--listen', `${nodeIp}:9464`, '--token', TOKEN, '--data-dir', '/data', '--filter', 'tcp port 8080']);
    await waitUp(agent);
    expect(agent.output()).toMatch(/capturing on twbr0/);
    const pid = agent.proc.pid!;
    // Exactly the DaemonSet's capabilities (CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13), as user 65532.
    expect(status(pid, 'Uid')).toMatch(/^65532\s+65532\s+65532\s+65532$/);
    for (const set of ['CapEff', 'CapPrm', 'CapBnd']) expect(status(pid, set), set).toBe('0000000000003000');
    // An exec of a file with capabilities clears the ambient set (they come from the file then).
    expect(status(pid, 'CapAmb')).toBe(fileCaps ? '0000000000000000' : '0000000000003000');
    expect(status(pid, 'NoNewPrivs')).toBe('1');
    await new Promise((r) => setTimeout(r, 2000));
    console.log(`test/image: agent from the image, idle: VmRSS ${status(pid, 'VmRSS')} (RssAnon ${status(pid, 'RssAnon')}, RssFile ${status(pid, 'RssFile')}, RssShmem ${status(pid, 'RssShmem')})`);

    const server = spawn('ip', ['netns', 'exec', ns.srv, process.execPath, 'test/agent/pods/http-server.mjs', srvIp, '8080'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (d) => { if (/listening on/.test(String(d))) resolve(); });
      server.on('exit', (code) => reject(new Error(`http server exited ${code}`)));
    });
    const N = 20;
    await inNs(ns.cli, `for (let i = 1; i <= ${N}; i++) { const r = await fetch('http://${srvIp}:8080/items/' + i); if (r.status !== 200) process.exit(1); await r.text(); }`);

    let paths: string[] = [];
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const r = await api('/api/flows?limit=1000');
      expect(r.status).toBe(200);
      const flows = (JSON.parse(r.body) as { flows: { protocol: string; src: { ip: string }; dst: { ip: string }; request?: { method?: string; path?: string }; response?: { status?: number } }[] }).flows;
      paths = flows.filter((f) => f.protocol === 'http' && f.src.ip === cliIp && f.dst.ip === srvIp && f.response?.status === 200)
        .map((f) => `${f.request?.method} ${f.request?.path}`).sort();
      if (paths.length >= N) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(paths).toEqual(Array.from({ length: N }, (_, i) => `GET /items/${i + 1}`).sort());
    // The token is required off loopback.
    expect((await inNs(ns.node, `const r = await fetch('http://${nodeIp}:9464/api/flows'); process.stdout.write(String(r.status));`))).toBe('401');
    console.log(`test/image: agent after ${N} calls: VmRSS ${status(pid, 'VmRSS')} (RssAnon ${status(pid, 'RssAnon')})`);
    agent.proc.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }, 60_000);

  it('ships the eBPF addon (TLS uprobes, issue 17), which loads against the image\'s own libbpf', () => {
    for (const f of ['tapwire_bpf.node', 'tls.bpf.o']) expect(existsSync(join(rootfs, 'opt/tapwire/native/build', f)), f).toBe(true);
    // Loaded by the image's node, in the image's root: a missing shared library (libbpf1, libelf1) fails here.
    const r = spawnSync('chroot', [rootfs, '/usr/local/bin/node', '-e',
      "const a = require('/opt/tapwire/native/build/tapwire_bpf.node'); console.log(typeof a.open, typeof a.attach)"], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('function function');
  });

  it('without NET_RAW, exits 2 and names the missing capability', async () => {
    const agent = startAgent('net_admin', ['agent', '--interface', bridge, '--listen', `${nodeIp}:9465`, '--token', TOKEN, '--data-dir', '/data']);
    if (fileCaps) {
      // The kernel refuses to exec a file whose +ep capabilities the bounding set cannot give: node never
      // starts (in Kubernetes, the container fails to start with "operation not permitted").
      expect(await agent.exited).toBe(126);
      expect(agent.output()).toMatch(/tapwire'?: Operation not permitted/);
      return;
    }
    expect(await agent.exited).toBe(2);
    expect(agent.output()).toMatch(/tapwire agent: twbr0: permission denied: .*CAP_NET_RAW/);
  }, 30_000);

  it('launched as Kubernetes launches it (no ambient capabilities): captures only if node has file capabilities', async () => {
    const agent = startAgent(CAPS, ['agent', '--interface', bridge, '--listen', `${nodeIp}:9466`, '--token', TOKEN, '--data-dir', '/data'], false);
    if (fileCaps) {
      await waitUp(agent);
      expect(agent.output()).toMatch(/capturing on twbr0/);
      expect(status(agent.proc.pid!, 'CapEff')).toBe('0000000000003000');
      expect(status(agent.proc.pid!, 'CapAmb')).toBe('0000000000000000');
      agent.proc.kill('SIGTERM');
      expect(await agent.exited).toBe(0);
    } else {
      expect(await agent.exited).toBe(2);
      expect(agent.output()).toMatch(/permission denied: .*CAP_NET_RAW/);
    }
  }, 30_000);
});
