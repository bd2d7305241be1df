import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/**
 * A simulated node: network namespaces as pods on a bridge (../shared/ENVIRONMENT.md). Names and
 * the subnet are unique per run; `down()` removes everything and kills what ran in the pods.
 */
export class SimNode {
  readonly bridge: string;
  readonly subnet: string;
  readonly pods: { name: string; ip: string; veth: string }[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly net: string;
  private readonly tag: string;

  constructor(pods: number) {
    const tag = `${process.pid % 10000}${Math.floor(Math.random() * 90 + 10)}`;
    const net = `10.${100 + (process.pid % 100)}.${Math.floor(Math.random() * 200) + 20}`;
    this.bridge = `twbr${tag}`.slice(0, 15);
    this.subnet = `${net}.0/24`;
    this.net = net;
    this.tag = tag;
    try {
      ip('link', 'add', this.bridge, 'type', 'bridge');
      ip('link', 'set', this.bridge, 'up');
      ip('addr', 'add', `${net}.1/24`, 'dev', this.bridge);
      for (let i = 0; i < pods; i++) this.addPod();
    } catch (e) {
      this.down();
      throw e;
    }
  }

  /** The host-side veth names of this node's pods match it: `<prefix>*`. */
  get vethPrefix(): string {
    return `${this.bridge.slice(0, 11)}v`;
  }

  /** Adds one more pod, as a kubelet would when a pod is scheduled: a namespace and a veth on the bridge. */
  addPod(): { name: string; ip: string; veth: string } {
    const i = this.pods.length;
    const p = { name: `tw${this.tag}p${i + 1}`, ip: `${this.net}.${11 + i}`, veth: `${this.vethPrefix}${i + 1}` };
    this.pods.push(p);
    ip('netns', 'add', p.name);
    ip('link', 'add', p.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.name);
    ip('link', 'set', p.veth, 'master', this.bridge);
    ip('link', 'set', p.veth, 'up');
    ip('-n', p.name, 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
    ip('-n', p.name, 'link', 'set', 'eth0', 'up');
    ip('-n', p.name, 'link', 'set', 'lo', 'up');
    return p;
  }

  /** Runs a command inside pod `i`; with `ready`, resolves once its output matches. */
  run(i: number, cmd: string[], ready?: RegExp): Promise<ChildProcess & { output: () => string }> {
    const p = Object.assign(spawn('ip', ['netns', 'exec', this.pods[i]!.name, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] }), { output: () => out });
    let out = '';
    this.children.push(p);
    p.stdout!.on('data', (d) => (out += d));
    p.stderr!.on('data', (d) => (out += d));
    if (!ready) return Promise.resolve(p);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd.join(' ')} in ${this.pods[i]!.name}: not ready after 15 s:\n${out}`)), 15_000);
      const check = () => {
        if (!ready.test(out)) return;
        clearTimeout(timer);
        resolve(p);
      };
      p.stdout!.on('data', check);
      p.stderr!.on('data', check);
      p.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd.join(' ')} exited ${code}:\n${out}`)); });
    });
  }

  /** Runs a command inside pod `i` to its end: its exit code and output. */
  async exec(i: number, cmd: string[]): Promise<{ code: number | null; stdout: string; output: string }> {
    const p = await this.run(i, cmd);
    let stdout = '';
    p.stdout!.on('data', (d) => (stdout += d));
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    return { code, stdout, output: p.output() };
  }

  down(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const p of this.pods) try { ip('netns', 'del', p.name); } catch { /* already gone */ }
    try { ip('link', 'del', this.bridge); } catch { /* already gone */ }
  }
}
