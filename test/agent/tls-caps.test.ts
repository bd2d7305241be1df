import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { tlsProbesUnavailable } from '../../src/capture/index.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { flowsWhere, startAgent, type AgentProcess } from '../helpers/agent-process.js';

/**
 * Issue 17, "the DaemonSet's eBPF patch carries the capabilities it needs": the agent as a pod runs
 * it, non-root, with no capability but those the patch adds, given the way the image gives them —
 * file capabilities on node (a container's non-root process loses its bounding capabilities at
 * execve; the Dockerfile says why). There is no cluster here, so the stand-in is the same: a copy
 * of node with exactly the patch's capabilities as file capabilities, run as user nobody with no
 * inherited or ambient capabilities and a bounding set of exactly that list. It must decrypt a curl
 * → Node https call. Then the same without SYS_ADMIN: `--tls auto` must run on, and say that
 * uprobes need it.
 */
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const why = process.getuid?.() !== 0 ? 'needs root (to set file capabilities and drop to nobody)'
  : !has('setcap') || !has('setpriv') ? 'needs setcap (libcap2-bin) and setpriv (util-linux)'
  : !has('openssl') || !has('curl') ? 'needs openssl and curl'
  : tlsProbesUnavailable().join('; ');
if (why) console.warn(`test/agent/tls-caps.test.ts skipped: ${why}`);

/** The capabilities the eBPF patch adds to the agent container, as written in the manifest. */
function patchCapabilities(): string[] {
  const doc = parseAllDocuments(readFileSync('daemonset/overlays/kind/ebpf-patch.yaml', 'utf8'))[0]!.toJS();
  const agent = doc.spec.template.spec.containers.find((c: { name: string }) => c.name === 'agent');
  return (agent.securityContext.capabilities.add as string[]).map((c) => c.toLowerCase());
}

/** `tapwire agent` through a node copy carrying `caps` as file capabilities, as nobody. */
function startAsPod(dir: string, caps: string[], args: string[]): Promise<AgentProcess> {
  const node = join(dir, `node-${caps.length}`);
  copyFileSync(process.execPath, node);
  chmodSync(node, 0o755);
  const set = spawnSync('setcap', [`${caps.map((c) => `cap_${c}`).join(',')}+ep`, node], { encoding: 'utf8' });
  if (set.status !== 0) throw new Error(`setcap: ${set.stderr}`);
  return startAgent(args, { spawnVia: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all',
    `--bounding-set=-all,${caps.map((c) => `+${c}`).join(',')}`, node] });
}

describe.skipIf(why !== '')('the eBPF patch\'s capabilities, as file capabilities for a non-root agent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-tls-caps-'));
  chmodSync(dir, 0o755);
  const port = 21000 + (process.pid % 20000);
  let server: ChildProcess;
  let full: AgentProcess | undefined, noAdmin: AgentProcess | undefined;

  beforeAll(async () => {
    spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const serve = `require('node:https').createServer({ key: require('fs').readFileSync('k.pem'), cert: require('fs').readFileSync('c.pem') },
      (q, s) => s.end(JSON.stringify({ path: q.url }))).listen(${port}, '127.0.0.1', () => console.log('listening'));`;
    server = spawn(process.execPath, ['-e', serve], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => server.stdout!.once('data', () => res()));
  }, 30_000);

  afterAll(async () => {
    await full?.stop();
    await noAdmin?.stop();
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('with exactly the patch\'s list, --tls uprobe attaches and a curl → Node https call is decrypted', async () => {
    const caps = patchCapabilities();
    expect(caps).toContain('sys_admin');
    const data = join(dir, 'data-full');
    writeFileSync(join(dir, '.keep'), '');
    chmodSync(dir, 0o777);
    full = await startAsPod(dir, caps, ['--tls', 'uprobe', '--interface', 'lo', '--filter', `tcp port ${port}`, '--listen', '127.0.0.1:0', '--data-dir', data]);
    const base = full.base;
    expect(full.log()).toMatch(/TLS plaintext through uprobes on .*libssl\.so/);
    const r = spawnSync('curl', ['-sk', `https://127.0.0.1:${port}/as-a-pod`], { encoding: 'utf8' });
    expect(r.stdout).toBe('{"path":"/as-a-pod"}');
    const flows = await flowsWhere(base, `http && dst.port == ${port}`);
    expect(flows).toHaveLength(1);
    expect((flows[0] as FlowRecord & { request: { path: string } }).request.path).toBe('/as-a-pod');
    expect(flows[0]!.tls).toMatchObject({ via: 'uprobe' });
    await full.stop();
  }, 60_000);

  it('without SYS_ADMIN, --tls auto runs on (packets only) and says uprobes need it', async () => {
    const caps = patchCapabilities().filter((c) => c !== 'sys_admin');
    noAdmin = await startAsPod(dir, caps, ['--tls', 'auto', '--interface', 'lo', '--filter', `tcp port ${port}`, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data-noadmin')]);
    const base = noAdmin.base;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(noAdmin.log()).toMatch(/SYS_ADMIN/);
    await noAdmin.stop();
  }, 60_000);
});
