import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FlowFeed } from '../../src/service/feed.js';
import type { FlowStore } from '../../src/store/index.js';
import type { VerdictChange } from '../../src/watch/watcher.js';
import { closeServer, DEMO, DEMO_FIXED, DEMO_SPEC, listen, pcapFlows, startAgentApi, startingAt } from './helpers.js';

/**
 * `tapwire watch` as a user runs it (node dist/cli/main.js): against a real agent API in this
 * process (store + feed, records published into the feed), and on a local capture of lo (root).
 */
const dir = mkdtempSync(join(tmpdir(), 'tapwire-watch-cli-'));
const running: ChildProcess[] = [];

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
});
afterEach(() => {
  for (const c of running.splice(0)) c.kill('SIGKILL');
});

const run = (args: string[]) => {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', 'watch', ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TAPWIRE_TOKEN: '' } });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
};

/** A running `tapwire watch`: its output so far, and a wait for a line. */
function start(args: string[]) {
  const child = spawn(process.execPath, ['dist/cli/main.js', 'watch', ...args], { env: { ...process.env, TAPWIRE_TOKEN: '' } });
  running.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (b: Buffer) => (out.stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out.stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const line = async (re: RegExp, ms = 15_000): Promise<string> => {
    const end = Date.now() + ms;
    for (;;) {
      const l = out.stdout.split('\n').find((x) => re.test(x));
      if (l) return l;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`no line matching ${re} in:\n${out.stdout}\nstderr:\n${out.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { child, out, line, exited };
}

describe('bad input exits 2 naming the file, field or flag', () => {
  it('a bad spec names the file and the field; a missing one names the file', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nchecks:\n  - name: typo\n    select: "http[pth=1]"\n    expect: { count: { atMost: 0 } }\n');
    const r = run(['--spec', DEMO_SPEC, '--spec', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^tapwire: spec ${bad}: checks\\[0\\]\\.select: bad selector 'http\\[pth=1\\]' at character 6: unknown key "pth"`));
    expect(run(['--spec', join(dir, 'none.yaml')])).toMatchObject({ status: 2, stderr: `tapwire: spec ${join(dir, 'none.yaml')}: file: no such file\n` });
  });

  it('a bad --window, no --spec, flags that do not go together, an agent not there', async () => {
    const closed = createServer();
    const closedPort = new URL(await listen(closed)).port;
    await closeServer(closed);
    expect(run(['--spec', DEMO_SPEC, '--window', 'soon'])).toMatchObject({ status: 2, stderr: 'tapwire watch: --window "soon": expected a duration such as 5m, 300s or 1h\n' });
    expect(run(['--spec', DEMO_SPEC, '--window', '0s']).status).toBe(2);
    expect(run([])).toMatchObject({ status: 2, stderr: 'tapwire watch: give at least one --spec FILE\n' });
    expect(run(['--spec', DEMO_SPEC, '--api', 'http://127.0.0.1:9', '--interface', 'lo'])).toMatchObject({ status: 2, stderr: 'tapwire watch: --interface and --filter are for a local capture; with --api the agent captures\n' });
    expect(run(['--spec', DEMO_SPEC, '--api', 'agent'])).toMatchObject({ status: 2, stderr: 'tapwire watch: --api: "agent" is not a URL (expected e.g. http://127.0.0.1:8899)\n' });
    const down = run(['--spec', DEMO_SPEC, '--api', `http://127.0.0.1:${closedPort}`]);
    expect(down).toMatchObject({ status: 2, stderr: `tapwire watch: --api: cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED\n` });
    expect(run(['--spec', DEMO_SPEC, '--format', 'xml']).status).toBe(2);
  });
});

describe('tapwire agent --spec', () => {
  const agent = (args: string[]) => {
    const r = spawnSync(process.execPath, ['dist/cli/main.js', 'agent', '--data-dir', mkdtempSync(join(dir, 'agent-')), '--listen', '127.0.0.1:0', ...args], { encoding: 'utf8', timeout: 20_000 });
    return { status: r.status, stderr: r.stderr };
  };
  it('a bad spec, or a bad --spec-window, exits 2 before the agent starts', () => {
    const bad = join(dir, 'agent-bad.yaml');
    writeFileSync(bad, 'version: 1\nevidence: { max: lots }\n');
    const r = agent(['--spec', DEMO_SPEC, '--spec', bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^tapwire: spec ${bad}: evidence\\.max: .*\\n$`));
    expect(agent(['--spec', DEMO_SPEC, '--spec-window', '5 minutes'])).toEqual({ status: 2, stderr: 'tapwire agent: --spec-window "5 minutes": expected a duration such as 5m, 300s or 1h\n' });
  });
});

describe('tapwire watch --api against a running agent', () => {
  const TOKEN = 'watch-token';
  let api: Awaited<ReturnType<typeof startAgentApi>>;
  let store: FlowStore, feed: FlowFeed, base = '';
  beforeAll(async () => {
    api = await startAgentApi({ token: TOKEN });
    ({ store, feed, base } = api);
  });
  afterAll(() => api.close());

  it('reads the window the agent already holds, then prints each change as live flows arrive; SIGTERM stops it', async () => {
    // The fixed build ran ten seconds ago: the agent holds its flows.
    for (const r of startingAt(await pcapFlows(DEMO_FIXED), Date.now() / 1000 - 10)) feed.publish(r);
    await store.sync();
    const w = start(['--spec', DEMO_SPEC, '--api', base, '--token', TOKEN]);
    expect(await w.line(/demo\.yaml: passing/)).toMatch(/^\d{4}-\d\d-\d\dT\S+Z demo\.yaml: passing \(18 flows in the last 5m\)$/);
    expect(w.out.stderr).toBe(`tapwire watch: 1 spec over the last 5m of flows from the agent at ${base}; Ctrl-C stops\n`);
    // The buggy build is deployed now: its traffic arrives on the live stream.
    for (const r of startingAt(await pcapFlows(DEMO), Date.now() / 1000)) feed.publish(r);
    const failing = await w.line(/now FAILING/);
    expect(failing).toMatch(/ demo\.yaml: now FAILING — redundant-call: 13 identical calls: postgres SELECT id, customer, total, status FROM orders WHERE id = \$1 .*\(evidence flow \S+ at 20\d\d-[^)]+\); \d+ more errors$/);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    expect(w.out.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('when the agent drops the stream, it reconnects, reads the window again and goes on', async () => {
    const spec = join(dir, 'boom.yaml');
    writeFileSync(spec, 'version: 1\nchecks:\n  - name: nobody calls /boom\n    select: \'http[path="/boom"]\'\n    expect: { count: { atMost: 0 } }\n');
    // An agent of its own, holding only the fixed build's traffic.
    const own = await startAgentApi();
    for (const r of startingAt(await pcapFlows(DEMO_FIXED), Date.now() / 1000 - 5)) own.feed.publish(r);
    await own.store.sync();
    const w = start(['--spec', spec, '--api', own.base]);
    await w.line(/boom\.yaml: passing/);
    own.server.closeAllConnections();
    for (let i = 0; !w.out.stderr.includes('tapwire watch: reconnected\n') && i < 200; i++) await new Promise((r) => setTimeout(r, 50));
    expect(w.out.stderr).toMatch(/tapwire watch: lost the agent's flow stream \(.*\); reconnecting\ntapwire watch: reconnected\n$/);
    const call = structuredClone((await pcapFlows(DEMO_FIXED)).find((f) => f.protocol === 'http')!);
    Object.assign(call, { id: 'boom-1', connectionId: 'boom', start: Date.now() / 1000, end: Date.now() / 1000 });
    (call.request as { path: string }).path = '/boom';
    own.feed.publish(call);
    expect(await w.line(/now FAILING/)).toMatch(/ boom\.yaml: now FAILING — check "nobody calls \/boom": 1 matching flows? where at most 0 was expected \(evidence flow boom-1 at /);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    await own.close();
  });

  it('--format json prints one change object per line; a wrong token is refused with exit 2', async () => {
    const w = start(['--spec', DEMO_SPEC, '--api', base, '--token', TOKEN, '--format', 'json', '--window', '1h']);
    const first = JSON.parse(await w.line(/^\{/)) as VerdictChange;
    expect(first).toMatchObject({ seq: 1, spec: 'demo.yaml', file: DEMO_SPEC, previous: null, verdict: 'fail' });
    expect(first.appeared.length).toBeGreaterThan(0);
    w.child.kill('SIGINT');
    expect(await w.exited).toBe(0);
    // Not spawnSync: the agent answering it runs in this process.
    const denied = start(['--spec', DEMO_SPEC, '--api', base, '--token', 'wrong']);
    expect(await denied.exited).toBe(2);
    expect(denied.out.stderr).toMatch(/^tapwire watch: --api: \/api\/flows\/stream answered 401: missing or wrong bearer token/);
  });
});

const notRoot = process.getuid?.() !== 0 ? 'needs root (libpcap capture on lo)' : '';
if (notRoot) console.warn(`test/watch/cli.test.ts local capture skipped: ${notRoot}`);

describe.skipIf(notRoot !== '')('tapwire watch on a local capture (root)', () => {
  let server: Server, port = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/boom' ? 500 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    port = Number(new URL(await listen(server)).port);
  });
  afterAll(() => closeServer(server));

  it('captures lo, judges the spec, and prints the change when a forbidden call is made', async () => {
    const spec = join(dir, 'local.yaml');
    writeFileSync(spec, 'version: 1\nchecks:\n  - name: nobody calls /boom\n    select: \'http[path="/boom"]\'\n    expect: { count: { atMost: 0 } }\n');
    const w = start(['--spec', spec, '--interface', 'lo', '--filter', `tcp port ${port}`, '--window', '1m']);
    expect(await w.line(/local\.yaml: INCONCLUSIVE — no flows to verify: none started in the last 1m$/)).toBeTruthy();
    expect(w.out.stderr).toMatch(/^tapwire watch: 1 spec over the last 1m of flows from a capture on lo; Ctrl-C stops\n/);
    for (const path of ['/ok', '/ok']) await (await fetch(`http://127.0.0.1:${port}${path}`)).text();
    expect(await w.line(/local\.yaml: now passing \(2 flows in the last 1m\)$/)).toBeTruthy();
    await (await fetch(`http://127.0.0.1:${port}/boom`)).text();
    expect(await w.line(/now FAILING/)).toMatch(/ local\.yaml: now FAILING — check "nobody calls \/boom": 1 matching flows? where at most 0 was expected \(evidence flow \S+ at /);
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  it('a capture that cannot open exits 2 naming the interface', () => {
    const r = run(['--spec', DEMO_SPEC, '--interface', 'nope0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^tapwire watch: nope0: no such device/);
  });
});
