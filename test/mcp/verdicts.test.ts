import { mkdtempSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import type { StandingVerdicts } from '../../src/mcp/verdicts.js';
import { parseSpec } from '../../src/verify/spec/index.js';
import { connect, isRoot } from './helpers.js';

/**
 * verdicts://current: the agent's standing-spec verdicts, followed over its event stream; a
 * session subscribed to it hears of each change (resources/updated, and a log line saying what
 * changed). First against a stand-in agent speaking the verdicts API, then against a real agent
 * started with a standing spec.
 */

type Connected = Awaited<ReturnType<typeof connect>>;

/** Waits for what `listen` is given by the client's notification handlers. */
function watch(t: Connected) {
  const updated: string[] = [];
  const logs: string[] = [];
  t.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { updated.push(n.params.uri); });
  t.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { logs.push(String(n.params.data)); });
  return {
    updated, logs,
    async until(ok: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
      const end = Date.now() + ms;
      while (!(await ok()) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(await ok()).toBe(true);
    },
  };
}

/** verdicts://current as resources.ts writes it: the agent's standing verdicts, or why there are none. */
type CurrentVerdicts = (StandingVerdicts & { available: true }) | { available: false; reason: string; specs?: undefined; changes?: undefined };

async function read(t: Connected): Promise<CurrentVerdicts> {
  const r = await t.client.readResource({ uri: 'verdicts://current' });
  return JSON.parse((r.contents[0] as { text: string }).text);
}

describe('verdicts://current from a stand-in agent', () => {
  let fake: Server;
  let stream: ServerResponse | undefined;
  let specs = [{ spec: 'demo.yaml', file: 'demo.yaml', verdict: 'pass', findings: [], flows: 10 }];
  const changes: object[] = [];
  /** The Last-Event-ID of each stream request, in order. */
  const lastEventIds: (string | undefined)[] = [];
  let t: Connected;

  beforeAll(async () => {
    fake = createServer((req, res) => {
      if (req.url === '/api/verdicts') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ window: 300, specs, changes }));
      } else if (req.url === '/api/verdicts/stream') {
        lastEventIds.push(req.headers['last-event-id'] as string | undefined);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`event: current\ndata: ${JSON.stringify({ window: 300, specs })}\n\n`);
        stream = res;
      } else {
        res.writeHead(404).end('{"error":"no"}');
      }
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    t = await connect({ api: `http://127.0.0.1:${(fake.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await t.close();
    stream?.end();
    fake.close();
  });

  it('reads the current verdicts, and tells a subscriber of each change with its one line', async () => {
    const w = watch(t);
    expect(await read(t)).toMatchObject({ available: true, window: 300, specs: [{ spec: 'demo.yaml', verdict: 'pass' }] });
    await t.client.subscribeResource({ uri: 'verdicts://current' });
    await w.until(() => stream !== undefined);
    const evidence = { flowId: 'cd357717c2fd-1', time: 1795263335.728, summary: 'attempt 1, failed' };
    specs = [{ spec: 'demo.yaml', file: 'demo.yaml', verdict: 'fail', flows: 12, findings: [{ kind: 'retry', severity: 'error', summary: '4 attempts of POST /payments', evidence: [evidence], details: {} }] as never }];
    const change = { seq: 1, at: 1, spec: 'demo.yaml', file: 'demo.yaml', previous: 'pass', verdict: 'fail', appeared: [], resolved: [], summary: 'demo.yaml: now FAILING — retry: 4 attempts of POST /payments (evidence flow cd357717c2fd-1)' };
    changes.push(change);
    stream!.write(`id: 1\nevent: change\ndata: ${JSON.stringify(change)}\n\n`);
    await w.until(() => w.updated.length > 0 && w.logs.length > 0);
    expect(w.updated).toEqual(['verdicts://current']);
    expect(w.logs[0]).toMatch(/now FAILING — retry: .*evidence flow cd357717c2fd-1/);
    const now = await read(t);
    expect(now.specs![0]).toMatchObject({ verdict: 'fail', findings: [{ kind: 'retry', evidence: [evidence] }] });
    expect(now.changes!.map((c: { summary: string }) => c.summary)).toEqual([change.summary]);
    // Unsubscribed: no more notifications.
    await t.client.unsubscribeResource({ uri: 'verdicts://current' });
    stream!.write(`id: 2\nevent: change\ndata: ${JSON.stringify({ ...change, seq: 2, verdict: 'pass', summary: 'demo.yaml: now passing' })}\n\n`);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.updated).toHaveLength(1);
  });

  it('after the stream drops, the reconnect sends Last-Event-ID, and a change it did not replay is still told', async () => {
    const w = watch(t);
    await t.client.subscribeResource({ uri: 'verdicts://current' });
    const before = lastEventIds.length;
    // The agent goes away mid-stream; meanwhile its spec turns to fail, a change the stand-in does
    // not replay (as an agent restarted, its change log gone): only the fresh `current` shows it.
    specs = [{ ...specs[0]!, verdict: 'inconclusive', findings: [] }];
    stream!.destroy();
    await w.until(() => lastEventIds.length > before);
    expect(lastEventIds.at(-1)).toBe('2');
    await w.until(() => w.logs.some((l) => /changed while the agent's verdict stream was down/.test(l)));
    expect(w.logs.at(-1)).toBe('demo.yaml: now inconclusive (changed while the agent\'s verdict stream was down)');
    expect(w.updated).toContain('verdicts://current');
    expect((await read(t)).specs![0].verdict).toBe('inconclusive');
    // The same state again on the next reconnect: nothing more to tell.
    const heard = w.logs.length;
    stream!.destroy();
    await w.until(() => lastEventIds.length > before + 1);
    await new Promise((r) => setTimeout(r, 800));
    expect(w.logs.length).toBe(heard);
    await t.client.unsubscribeResource({ uri: 'verdicts://current' });
  }, 30_000);

  it('an agent without standing specs is said to have none', async () => {
    const none = createServer((_q, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no standing specs: start the agent with --spec FILE"}'));
    await new Promise<void>((r) => none.listen(0, '127.0.0.1', r));
    const u = await connect({ api: `http://127.0.0.1:${(none.address() as AddressInfo).port}` });
    try {
      expect(await read(u)).toMatchObject({ available: false, reason: expect.stringMatching(/has no standing specs: start it with --spec/) });
    } finally {
      await u.close();
      none.close();
    }
  });
});

const why = isRoot ? '' : 'needs root (libpcap capture on lo)';
if (why) console.warn(`test/mcp/verdicts.test.ts (real agent) skipped: ${why}`);

describe.skipIf(why !== '')('verdicts://current from a real agent with a standing spec', () => {
  let web: Server;
  let agent: Agent;
  let port = 0;
  let t: Connected;
  beforeAll(async () => {
    web = createServer((req, res) => res.writeHead(req.url === '/fail' ? 503 : 200).end('{}'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    port = (web.address() as AddressInfo).port;
    const spec = parseSpec(`version: 1\nchecks:\n  - name: no 5xx\n    select: 'http[status="5xx"]'\n    expect: { count: { exactly: 0 } }\n`, 'live.yaml', process.cwd());
    agent = await Agent.start({
      specs: [{ file: 'live.yaml', spec }], specWindowSec: 60, interfaces: ['lo'], filter: `tcp port ${port}`, listen: { host: '127.0.0.1', port: 0 }, dataDir: mkdtempSync(join(tmpdir(), 'tapwire-mcp-verdicts-')),
      retention: { maxBytes: 64 << 20, maxAgeSec: 3600 }, bodyLimit: 4096, redactKey: Buffer.from('k'),
    });
    t = await connect({ api: agent.address });
  });
  afterAll(async () => {
    await t?.close();
    await agent?.stop();
    web?.close();
  });

  it('a subscriber hears "now FAILING" when a 5xx goes over the wire', async () => {
    const w = watch(t);
    await t.client.subscribeResource({ uri: 'verdicts://current' });
    await fetch(`http://127.0.0.1:${port}/ok`).then((r) => r.text());
    // The watcher judges every 2 s: first the spec passes on the 200…
    await w.until(async () => (await read(t)).specs?.[0]?.verdict === 'pass', 20_000);
    const heard = w.logs.length;
    await fetch(`http://127.0.0.1:${port}/fail`).then((r) => r.text());
    // …then the 503 turns it, and the subscriber is told without asking.
    await w.until(() => w.logs.slice(heard).some((l) => /now FAILING/.test(l)), 20_000);
    expect(w.updated).toContain('verdicts://current');
    expect(w.logs.slice(heard).find((l) => /now FAILING/.test(l))).toMatch(/^live\.yaml: now FAILING — check "no 5xx": 1 matching flow .*\(evidence flow \S+ at /);
    const now = await read(t);
    expect(now.specs![0]).toMatchObject({ spec: 'live.yaml', verdict: 'fail' });
  });
});
