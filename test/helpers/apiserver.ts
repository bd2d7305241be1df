import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeconfigText, startProxy, type CountingProxy } from '../../bench/k8s/proxy.mjs';

/**
 * A real kube-apiserver + etcd for tests (issue 16): scripts/k8s/apiserver.sh as a child, which
 * prints KUBE_SERVER, KUBE_TOKEN and KUBECONFIG once /readyz answers (about 3 s with the binaries
 * cached in /var/cache/tapwire-k8s/bin). stop() kills kube-apiserver (SIGKILL: its graceful
 * shutdown takes about 21 s, and its data is thrown away) and sends the script SIGTERM, whose
 * trap stops etcd and removes the temp dir. `flags` go to kube-apiserver through APISERVER_FLAGS.
 */
export interface TestApiserver {
  kubeconfig: string;
  server: string;
  token: string;
  /** A counting proxy in front of the server, and a kubeconfig that goes through it. */
  proxy(): Promise<CountingProxy & { kubeconfig: string }>;
  stop(): Promise<void>;
}

export type { CountingProxy };

const CACHE = process.env.TAPWIRE_K8S_CACHE ?? '/var/cache/tapwire-k8s';
const K8S_VERSION = process.env.K8S_VERSION ?? '1.32.13';
const ETCD_VERSION = process.env.ETCD_VERSION ?? '3.5.36';

/** Why the API server cannot be started here ('' when it can). */
export function apiserverUnavailable(): string {
  const cached = existsSync(join(CACHE, 'bin', `kube-apiserver-${K8S_VERSION}`)) && existsSync(join(CACHE, 'bin', `etcd-${ETCD_VERSION}`));
  for (const tool of ['openssl', 'python3', 'curl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `scripts/k8s/apiserver.sh needs ${tool}`;
  }
  if (cached) return '';
  if (spawnSync('sh', ['-c', 'command -v go']).status !== 0) {
    return `no Go toolchain and no cached kube-apiserver/etcd in ${CACHE}/bin (scripts/k8s/apiserver.sh builds them with Go)`;
  }
  return '';
}

export async function startApiserver(opts: { flags?: string; timeoutMs?: number } = {}): Promise<TestApiserver> {
  const child: ChildProcess = spawn('bash', ['scripts/k8s/apiserver.sh'], {
    env: { ...process.env, APISERVER_FLAGS: opts.flags ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const vars = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`scripts/k8s/apiserver.sh: not ready after ${opts.timeoutMs ?? 600_000} ms\n${err}`)), opts.timeoutMs ?? 600_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const got = Object.fromEntries(out.split('\n').map((l) => /^(KUBE_SERVER|KUBE_TOKEN|KUBECONFIG)=(.*)$/.exec(l)).filter((m) => m).map((m) => [m![1], m![2]]));
      if (got.KUBE_SERVER && got.KUBE_TOKEN && got.KUBECONFIG) {
        clearTimeout(timer);
        resolve(got as Record<string, string>);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`scripts/k8s/apiserver.sh exited (${code}) before it was ready\n${err}`));
    });
  });
  // A test run that dies without stop() must not leave the servers behind.
  const onExit = () => {
    if (child.exitCode !== null) return;
    killApiserver(child.pid!);
    child.kill('SIGTERM');
  };
  process.once('exit', onExit);
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-kc-'));
  const proxies: CountingProxy[] = [];
  let n = 0;
  return {
    kubeconfig: vars.KUBECONFIG!,
    server: vars.KUBE_SERVER!,
    token: vars.KUBE_TOKEN!,
    async proxy() {
      const p = await startProxy(vars.KUBE_SERVER!);
      proxies.push(p);
      const kubeconfig = join(dir, `proxy-${++n}.yaml`);
      writeFileSync(kubeconfig, kubeconfigText(p.url, vars.KUBE_TOKEN!));
      return Object.assign(p, { kubeconfig });
    },
    async stop() {
      process.off('exit', onExit);
      await Promise.all(proxies.map((p) => p.close()));
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        killApiserver(child.pid!);
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** SIGKILLs the script's kube-apiserver child, by pid. */
function killApiserver(scriptPid: number): void {
  let kids = '';
  try {
    kids = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(scriptPid)], { encoding: 'utf8' });
  } catch {
    return;
  }
  for (const line of kids.trim().split('\n')) {
    const [pid, comm] = line.trim().split(/\s+/);
    if (pid && comm?.startsWith('kube-apiserver')) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
