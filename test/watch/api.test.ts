import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlowFeed } from '../../src/service/feed.js';
import { serveEvents } from '../../src/api/sse.js';
import { openEvents, type SseEvent } from '../../src/client/sse.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { Watcher, type SpecState, type VerdictChange } from '../../src/watch/watcher.js';
import { DEMO, DEMO_FIXED, demoSpec, lastStart, pcapFlows, startAgentApi, startingAt } from './helpers.js';

/**
 * GET /api/verdicts and /api/verdicts/stream over a real store and feed, with a Watcher wired to
 * the feed the way the agent wires it; the stream is read with tapwire's own SSE reader.
 */
const TOKEN = 'verdict-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const T0 = 1_900_000_000;
let now = T0;
let watcher: Watcher, feed: FlowFeed, base = '', bareBase = '';
let fixed: FlowRecord[], buggy: FlowRecord[];
const closing: (() => Promise<void>)[] = [];

beforeAll(async () => {
  [fixed, buggy] = await Promise.all([pcapFlows(DEMO_FIXED), pcapFlows(DEMO)]);
  watcher = new Watcher({ specs: [await demoSpec()], windowSec: 60, intervalMs: 20, clock: () => now });
  const api = await startAgentApi({ token: TOKEN, watcher });
  // An agent started without --spec.
  const bare = await startAgentApi();
  ({ feed, base } = api);
  bareBase = bare.base;
  closing.push(api.close, bare.close);
});
afterAll(async () => {
  watcher.stop();
  for (const close of closing) await close();
});

async function next(events: AsyncGenerator<SseEvent>): Promise<SseEvent> {
  const r = await events.next();
  if (r.done) throw new Error('the stream ended');
  return r.value;
}

describe('GET /api/verdicts', () => {
  it('is a JSON 404 naming --spec when the agent has no standing specs', async () => {
    for (const path of ['/api/verdicts', '/api/verdicts/stream']) {
      const res = await fetch(`${bareBase}${path}`);
      expect([res.status, await res.json()]).toEqual([404, { error: 'no standing specs: start the agent with --spec FILE' }]);
    }
  });

  it('lists each spec where it stands, the window and the changes; ?after= pages, and refuses a bad one', async () => {
    for (const r of startingAt(fixed, T0)) feed.publish(r);
    now = lastStart(startingAt(fixed, T0)) + 1;
    watcher.evaluate();
    const res = await fetch(`${base}/api/verdicts`, { headers: auth });
    const body = (await res.json()) as { window: number; specs: SpecState[]; changes: VerdictChange[] };
    expect(body.window).toBe(60);
    expect(body.specs).toHaveLength(1);
    expect(body.specs[0]).toMatchObject({ spec: 'demo.yaml', file: 'examples/specs/demo.yaml', verdict: 'pass', flows: fixed.length });
    expect(body.changes.map((c) => [c.seq, c.previous, c.verdict])).toEqual([[1, null, 'pass']]);
    expect(((await (await fetch(`${base}/api/verdicts?after=1`, { headers: auth })).json()) as { changes: unknown[] }).changes).toEqual([]);
    const badAfter = await fetch(`${base}/api/verdicts?after=x`, { headers: auth });
    expect([badAfter.status, await badAfter.json()]).toEqual([400, { error: 'after: "x" is not a whole number (a change\'s seq)' }]);
    expect((await fetch(`${base}/api/verdicts`)).status).toBe(401);
  });
});

describe('GET /api/verdicts/stream', () => {
  it('sends the current state, then each change as flows arrive on the feed', async () => {
    const ac = new AbortController();
    const events = await openEvents(`${base}/api/verdicts/stream`, { headers: auth, signal: ac.signal });
    const current = await next(events);
    expect(current.event).toBe('current');
    expect(JSON.parse(current.data)).toMatchObject({ window: 60, specs: [{ spec: 'demo.yaml', verdict: 'pass' }] });

    // The buggy build is deployed: its traffic reaches the feed, the timer notices.
    watcher.start();
    const bad = startingAt(buggy, T0 + 100);
    now = lastStart(bad) + 1;
    for (const r of bad) feed.publish(r);
    const change = await next(events);
    const c = JSON.parse(change.data) as VerdictChange;
    expect([change.event, change.id]).toEqual(['change', String(c.seq)]);
    expect(c).toMatchObject({ seq: 2, spec: 'demo.yaml', previous: 'pass', verdict: 'fail' });
    expect(c.appeared).toHaveLength(6);
    expect(c.summary).toMatch(/^demo\.yaml: now FAILING — redundant-call: 12 identical calls: .* \(evidence flow 3f3a3303cf8d-1 at 20\d\d-.*\); 5 more errors$/);
    ac.abort();
    for await (const _ of events) { /* drains to the end quietly */ }
  });

  it('a client reconnecting with Last-Event-ID gets the changes it missed after the current state', async () => {
    const ac = new AbortController();
    const events = await openEvents(`${base}/api/verdicts/stream`, { headers: auth, signal: ac.signal, lastEventId: '1' });
    expect((await next(events)).event).toBe('current');
    const missed = await next(events);
    expect([missed.event, missed.id]).toEqual(['change', '2']);
    ac.abort();
  });
});

describe('the shared SSE helper (src/api/sse.ts)', () => {
  it('drops events for a client with 4 MiB waiting, then says how many before the next one; detaches on close', () => {
    const req = new EventEmitter() as IncomingMessage;
    const written: string[] = [];
    const res = Object.assign(new EventEmitter(), {
      writableLength: 0,
      writeHead: () => res,
      write: (s: string) => written.push(s),
    });
    let detached = 0;
    let send: (e: string, d: unknown, id?: number) => void = () => undefined;
    serveEvents(req, res as unknown as ServerResponse, 'test stream', (s) => {
      send = s;
      return () => detached++;
    });
    send('change', { a: 1 }, 1);
    res.writableLength = 5 * 1024 * 1024;
    send('change', { a: 2 }, 2);
    send('change', { a: 3 }, 3);
    res.writableLength = 0;
    send('change', { a: 4 }, 4);
    expect(written).toEqual([': test stream\n\n', 'event: change\nid: 1\ndata: {"a":1}\n\n', 'event: dropped\ndata: {"dropped":2}\n\n', 'event: change\nid: 4\ndata: {"a":4}\n\n']);
    req.emit('close');
    expect(detached).toBe(1);
  });
});
