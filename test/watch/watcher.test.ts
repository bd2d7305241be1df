import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { parseSpec } from '../../src/verify/spec/index.js';
import type { Verdict } from '../../src/verify/verdict.js';
import { Watcher, type VerdictChange } from '../../src/watch/watcher.js';
import { DEMO, DEMO_FIXED, DEMO_SPEC, demoSpec, lastStart, pcapFlows, startingAt } from './helpers.js';

/**
 * Standing specs over a sliding window, on real recorded traffic replayed as live flows: the demo
 * (buggy and fixed builds of the same services) against examples/specs/demo.yaml, and the
 * verifier's stories in pcaps/verify. Time is driven by hand: `evaluate(now)`.
 */
const T0 = 1_900_000_000;
let fixed: FlowRecord[], buggy: FlowRecord[];

beforeAll(async () => {
  [fixed, buggy] = await Promise.all([pcapFlows(DEMO_FIXED), pcapFlows(DEMO)]);
});

const feed = (w: Watcher, flows: FlowRecord[]) => flows.forEach((r) => w.add(r));
const errorsOf = (c: VerdictChange) => c.appeared.filter((f) => f.severity === 'error').map((f) => `${f.kind}: ${f.summary}`);

describe('the demo, redeployed', () => {
  it('fixed build → passing; the buggy build → now FAILING with its six errors; traffic stops → inconclusive', async () => {
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 60 });
    feed(w, startingAt(fixed, T0));
    const [first] = w.evaluate(T0 + 10);
    expect(first).toMatchObject({ seq: 1, spec: 'demo.yaml', file: DEMO_SPEC, previous: null, verdict: 'pass', appeared: [], resolved: [] });
    expect(first!.summary).toBe(`demo.yaml: passing (${fixed.length} flows in the last 1m)`);

    // The buggy build goes out 100 s later: the fixed build's flows have left the 60 s window.
    const bad = startingAt(buggy, T0 + 100);
    feed(w, bad);
    const [change] = w.evaluate(lastStart(bad) + 1);
    expect(change).toMatchObject({ seq: 2, previous: 'pass', verdict: 'fail', resolved: [] });
    // Exactly what `tapwire verify --spec` finds in the same capture.
    const cli = JSON.parse(spawnSync(process.execPath, ['dist/cli/main.js', 'verify', DEMO, '--spec', DEMO_SPEC, '--format', 'json'], { encoding: 'utf8' }).stdout) as Verdict;
    expect(errorsOf(change!).sort()).toEqual(cli.findings.filter((f) => f.severity === 'error').map((f) => `${f.kind}: ${f.summary}`).sort());
    expect(change!.appeared).toHaveLength(6);
    const lead = change!.appeared[0]!;
    expect(change!.summary).toBe(`demo.yaml: now FAILING — ${lead.kind}: ${lead.summary} (evidence flow ${lead.evidence[0]!.flowId} at ${new Date(lead.evidence[0]!.time * 1000).toISOString()}); 5 more errors`);
    expect(change!.summary).toMatch(/^demo\.yaml: now FAILING — redundant-call: 12 identical calls: postgres SELECT .* \(evidence flow 3f3a3303cf8d-1 at 20\d\d-/);
    // Evidence is capped at the spec's evidence.max (10); the total is stated.
    const redundant = change!.appeared.find((f) => f.kind === 'redundant-call')!;
    expect([redundant.evidence.length, redundant.details.evidenceTotal]).toEqual([10, 12]);

    const state = w.current()[0]!;
    expect(state).toMatchObject({ spec: 'demo.yaml', verdict: 'fail', flows: buggy.length, changedAt: lastStart(bad) + 1, evaluatedAt: lastStart(bad) + 1 });
    expect(state.window.until - state.window.since).toBe(60);
    expect(state.reason).toBeUndefined();

    // Nobody calls for a while: the window slides past the last flow.
    const [quiet] = w.evaluate(lastStart(bad) + 61);
    expect(quiet).toMatchObject({ seq: 3, previous: 'fail', verdict: 'inconclusive', appeared: [] });
    expect(quiet!.resolved).toHaveLength(6);
    expect(quiet!.summary).toBe('demo.yaml: now INCONCLUSIVE — no flows to verify: none started in the last 1m');
    expect(w.current()[0]).toMatchObject({ verdict: 'inconclusive', flows: 0, findings: [], reason: 'no flows to verify: none started in the last 1m' });
    expect(w.changes().map((c) => c.seq)).toEqual([1, 2, 3]);
    expect(w.changes(2).map((c) => c.seq)).toEqual([3]);
  });

  it('the buggy build, then the fix → now passing, the six findings resolved', async () => {
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 60 });
    feed(w, startingAt(buggy, T0));
    const [first] = w.evaluate(T0 + 10);
    expect(first).toMatchObject({ previous: null, verdict: 'fail' });
    expect(first!.summary).toMatch(/^demo\.yaml: FAILING — redundant-call: /);
    const good = startingAt(fixed, T0 + 100);
    feed(w, good);
    const [c] = w.evaluate(lastStart(good) + 1);
    expect(c).toMatchObject({ previous: 'fail', verdict: 'pass', appeared: [] });
    expect(c!.resolved).toHaveLength(6);
    expect(c!.resolved).toContain('retry: 4 attempts of POST /payments on payment-service; retries at 0.20 s, 0.20 s, 0.20 s (constant: delays do not grow)');
    expect(c!.summary).toBe(`demo.yaml: now passing (${fixed.length} flows in the last 1m; 6 findings resolved)`);
  });
});

describe('a change is a real change', () => {
  it('nothing new, nothing leaving: no verification, no change; re-verified by force: still no change', async () => {
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 300 });
    const flows = startingAt(buggy, T0);
    feed(w, flows);
    expect(w.evaluate(T0 + 20)).toHaveLength(1);
    expect(w.evaluate(T0 + 20)).toEqual([]);
    expect(w.evaluate(T0 + 25)).toEqual([]);
    expect(w.evaluate(T0 + 25, true)).toEqual([]);
    // The same records again (a history page and the live stream overlapping) are held once.
    feed(w, flows);
    expect(w.evaluate(T0 + 26)).toEqual([]);
    expect(w.current()[0]!.flows).toBe(buggy.length);
    expect(w.current()[0]!.changedAt).toBe(T0 + 20);
    expect(w.current()[0]!.evaluatedAt).toBe(T0 + 25);
  });

  it('more of the same problem is not news (numbers differ, fingerprints do not); a new kind of problem is', async () => {
    const spec = parseSpec('version: 1\n', 'stories.yaml', '.');
    const w = new Watcher({ specs: [{ file: 'specs/stories.yaml', spec }], windowSec: 600 });
    const story = await pcapFlows('pcaps/verify/missing-propagation.pcap');
    feed(w, startingAt(story, T0));
    const [first] = w.evaluate(T0 + 10);
    expect(first!.verdict).toBe('pass');
    expect(first!.summary).toMatch(/^stories\.yaml: passing \(\d+ flows in the last 10m\) — warning: missing-propagation: traceparent, x-request-id dropped on 5 of 5 calls .* \(evidence flow \S+ at /);
    // The same story again, as new exchanges: "dropped on 10 of 10 calls" is the same finding.
    feed(w, startingAt(story, T0 + 20, '-again'));
    expect(w.evaluate(T0 + 40)).toEqual([]);
    // A different story adds an N+1 error.
    const n1 = await pcapFlows('pcaps/verify/n-plus-one.pcap');
    feed(w, startingAt(n1, T0 + 60));
    const [c] = w.evaluate(T0 + 90);
    expect(c).toMatchObject({ previous: 'pass', verdict: 'fail', resolved: [] });
    expect(c!.appeared.map((f) => `${f.kind} ${f.severity}`).sort()).toEqual(['n-plus-one error', 'n-plus-one warning', 'n-plus-one warning', 'redundant-call warning']);
    expect(c!.summary).toMatch(/^stories\.yaml: now FAILING — n-plus-one: 12 calls of postgres "select sku, qty from order_items where order_id = \?"/);
    // While failing, a new warning alone is "still FAILING — new warning".
    const slow = await pcapFlows('pcaps/verify/slow.pcap');
    feed(w, startingAt(slow, T0 + 120));
    const [s] = w.evaluate(T0 + 200);
    expect(s).toMatchObject({ previous: 'fail', verdict: 'fail' });
    expect(s!.summary).toMatch(/^stories\.yaml: still FAILING — new warning: slow: 2 of 30 calls to GET \/index/);
  });
});

describe('bounds and honesty', () => {
  it('past maxFlows the oldest are dropped and the verdict says the window is shorter, until the loss slides out', async () => {
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 60, maxFlows: 20 });
    const flows = startingAt(buggy, T0);
    feed(w, flows);
    w.evaluate(T0 + 10);
    const s = w.current()[0]!;
    expect(s.flows).toBe(20);
    const lastDropped = Math.max(...flows.slice(0, 9).map((f) => f.start));
    expect(s.reason).toBe(`9 flows were lost (at most 20 are held, and a live feed drops flows for a reader that falls behind): the window is whole only from ${new Date(lastDropped * 1000).toISOString()}, the last ${Math.round(T0 + 10 - lastDropped)} s of 60 s`);
    expect(s.window).toEqual({ since: T0 + 10 - 60, until: T0 + 10 });
    // Later traffic, once the lost flows are older than the window: whole again.
    const later = startingAt(fixed, T0 + 100);
    feed(w, later);
    w.evaluate(lastStart(later) + 1);
    const t = w.current()[0]!;
    expect(t.reason).toBeUndefined();
    expect(t.verdict).toBe('pass');
    expect(t.window.until - t.window.since).toBe(60);
  });

  it('flows a live feed dropped make the window shorter too', async () => {
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 60 });
    feed(w, startingAt(fixed, T0));
    // The feed fell behind after the fixed build's traffic: what was seen still counts.
    w.lost(3, T0 + 5);
    expect(w.evaluate(T0 + 30)[0]!.verdict).toBe('pass');
    expect(w.current()[0]!.flows).toBe(fixed.length);
    expect(w.current()[0]!.reason).toMatch(/^3 flows were lost .*: the window is whole only from \S+, the last 25 s of 60 s$/);
    // Once that moment is older than the window, the reason goes: a change of reason alone is not news.
    expect(w.evaluate(T0 + 70)).toEqual([expect.objectContaining({ verdict: 'inconclusive' })]);
    expect(w.current()[0]!.reason).toBe('no flows to verify: none started in the last 1m');
  });

  it('an empty window is inconclusive, never a failure of count checks', async () => {
    const w = new Watcher({ specs: [await demoSpec()] });
    const [c] = w.evaluate(T0);
    expect(c).toMatchObject({ previous: null, verdict: 'inconclusive', appeared: [], resolved: [] });
    expect(c!.summary).toBe('demo.yaml: INCONCLUSIVE — no flows to verify: none started in the last 5m');
  });

  it('keeps the last 200 changes', async () => {
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 10 });
    for (let i = 0; i < 101; i++) {
      feed(w, startingAt(buggy, T0 + i * 100, `-${i}`));
      w.evaluate(T0 + i * 100 + 5);
      w.evaluate(T0 + i * 100 + 50);
    }
    const all = w.changes();
    expect(all).toHaveLength(200);
    expect([all[0]!.seq, all.at(-1)!.seq]).toEqual([3, 202]);
  });

  it('two specs with the same basename are told apart by path', async () => {
    const spec = parseSpec('version: 1\n', 'x', '.');
    const w = new Watcher({ specs: [{ file: 'a/checks.yaml', spec }, { file: 'b/checks.yaml', spec }, { file: 'c/other.yaml', spec }] });
    w.evaluate(T0);
    expect(w.current().map((s) => s.spec)).toEqual(['a/checks.yaml', 'b/checks.yaml', 'other.yaml']);
  });
});

describe('the timer and subscribers', () => {
  it('start() evaluates on its own when flows arrive, tells subscribers, stop() ends it', async () => {
    let now = T0;
    const w = new Watcher({ specs: [await demoSpec()], windowSec: 60, intervalMs: 20, clock: () => now });
    const seen: VerdictChange[] = [];
    const unsubscribe = w.subscribe((c) => seen.push(c));
    w.start();
    const flows = startingAt(buggy, T0);
    now = lastStart(flows) + 1;
    feed(w, flows);
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(seen[0]).toMatchObject({ previous: null, verdict: 'fail' });
    unsubscribe();
    now += 100;
    while (w.current()[0]!.verdict === 'fail') await new Promise((r) => setTimeout(r, 10));
    expect(seen).toHaveLength(1);
    w.stop();
  });
});
