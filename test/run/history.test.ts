import { describe, expect, it } from 'vitest';
import { runHistory, runsTouching } from '../../src/run/history.js';
import { finding, runRecord } from './records.js';

const v1 = { commit: 'a'.repeat(40), dirty: '' };
const v2 = { commit: 'b'.repeat(40), dirty: '' };
const N1 = 'n-plus-one error # calls of postgres "select name from customers where id = ?"';
const RETRY = 'retry warning # retries of POST /payments';

describe('runHistory', () => {
  it('counts how often each finding failed, first and last, with the last evidence, newest runs first', () => {
    const runs = [
      runRecord({ code: v1, findings: [finding(N1, 'f-1')] }),
      runRecord({ code: v1 }),
      runRecord({ code: v1, findings: [finding(N1, 'f-3'), finding(N1, 'f-3b'), finding(RETRY)] }),
    ];
    const h = runHistory(runs);
    expect(h.runs.map((r) => r.id)).toEqual(runs.map((r) => r.id).reverse());
    expect(h.runs[0]!.fingerprints).toEqual([N1, N1, RETRY]);
    const n1 = h.findings.find((f) => f.fingerprint === N1)!;
    expect(n1).toMatchObject({
      kind: 'n-plus-one', failedRuns: 2, totalRuns: 3, firstFailed: runs[0]!.startedAt, lastFailed: runs[2]!.startedAt,
      lastRun: { id: runs[2]!.id, snapshot: runs[2]!.snapshot }, flaky: true,
      flakyOn: [{ commit: v1.commit, dirty: '', failedRuns: 2, totalRuns: 3 }],
    });
    // Two findings with one fingerprint in a run: the run counts once, the later evidence is kept.
    expect(n1.lastEvidence[0]!.flowId).toBe('f-3b');
    expect(h.findings[0]!.fingerprint).toBe(N1);
  });

  it('an info finding is not a failure: retries that back off share the retry fingerprint with retries that do not', () => {
    const backsOff = { ...finding(RETRY), severity: 'info' as const };
    const runs = [runRecord({ code: v1, findings: [finding(RETRY)] }), runRecord({ code: v1, findings: [backsOff] }), runRecord({ code: v1, findings: [{ ...finding(N1), severity: 'info' }] })];
    const h = runHistory(runs);
    expect(h.findings.map((f) => [f.fingerprint, f.failedRuns, f.totalRuns])).toEqual([[RETRY, 1, 3]]);
    expect(h.findings[0]!.lastRun.id).toBe(runs[0]!.id);
  });

  it('is not flaky when the code changed between the passing and the failing runs', () => {
    const runs = [runRecord({ code: v1 }), runRecord({ code: v2, findings: [finding(N1)] }), runRecord({ code: v2, findings: [finding(N1)] })];
    const f = runHistory(runs).findings[0]!;
    expect(f).toMatchObject({ failedRuns: 2, totalRuns: 3, flaky: false });
    expect(f.flakyOn).toBeUndefined();
  });

  it('is not flaky across different specs, commands, uncommitted changes, or without a code version', () => {
    for (const other of [{ spec: { name: 's.yaml', hash: 'x' } }, { command: 'npm run e2e' }, { code: { ...v1, dirty: '1234' } }]) {
      expect(runHistory([runRecord({ code: v1, findings: [finding(N1)] }), runRecord({ code: v1, ...other })]).findings[0]!.flaky).toBe(false);
    }
    expect(runHistory([runRecord({ findings: [finding(N1)] }), runRecord()]).findings[0]!.flaky).toBe(false);
  });

  it('filters by spec (name, file name or hash) and command, leaves cancelled runs out of the counts, and limits', () => {
    const spec = { name: 'test/checks.yaml', hash: 'feedface' };
    const runs = [
      runRecord({ spec, code: v1, findings: [finding(N1)] }),
      runRecord({ spec, code: v1, cancelled: true, verdict: 'inconclusive', exitCode: null }),
      runRecord({ code: v1 }),
      runRecord({ spec, code: v1, command: 'npm run e2e' }),
    ];
    for (const s of ['test/checks.yaml', 'checks.yaml', 'feedface']) expect(runHistory(runs, { spec: s }).runs).toHaveLength(3);
    const h = runHistory(runs, { spec: 'checks.yaml', command: 'npm test' });
    expect(h.runs.map((r) => r.id)).toEqual([runs[1]!.id, runs[0]!.id]);
    expect(h.runs[0]!.cancelled).toBe(true);
    expect(h.findings[0]).toMatchObject({ failedRuns: 1, totalRuns: 1, flaky: false });
    expect(runHistory(runs, { limit: 2 }).runs).toHaveLength(2);
  });

  it('counts a run for a finding only when it verified traffic: the others are neither found nor absent', () => {
    const found = runRecord({ code: v1, findings: [finding(N1)], flows: 29 });
    const unread = runRecord({ code: v1, verdict: 'inconclusive', reason: "the snapshot's flows could not be read: agent gone", flows: 0 });
    const noTraffic = runRecord({ code: v1, flows: 0, verified: false });
    const notStarted = runRecord({ code: v1, exitCode: 127, flows: 0, verified: false });
    const unproven = runRecord({ code: v1, drained: 'unproven' });
    const h = runHistory([found, unread, noTraffic, notStarted, unproven]);
    expect(h.findings[0]).toMatchObject({ fingerprint: N1, failedRuns: 1, totalRuns: 1, uncountedRuns: 4, flaky: false });
    expect(h.runs.map((r) => [r.id, r.verified, r.drained])).toEqual([
      [unproven.id, true, 'unproven'], [notStarted.id, false, undefined], [noTraffic.id, false, undefined], [unread.id, false, undefined], [found.id, true, undefined],
    ]);
    // The stored field wins over the flows count: a run that read flows but was not verified does not count.
    expect(runHistory([found, runRecord({ code: v1, verified: false })]).findings[0]).toMatchObject({ totalRuns: 1, flaky: false });
  });

  it('a finding found after an unproven drain counts; a verified run with a proven drain that lacks it is a real absence', () => {
    const runs = [
      runRecord({ code: v1, drained: 'unproven', findings: [finding(N1)] }),
      runRecord({ code: v1, drained: 'proven', verified: true }),
      runRecord({ code: v1, flows: 0 }),
    ];
    expect(runHistory(runs).findings[0]).toMatchObject({
      failedRuns: 1, totalRuns: 2, uncountedRuns: 1, flaky: true, flakyOn: [{ commit: v1.commit, dirty: '', failedRuns: 1, totalRuns: 2 }],
    });
  });
});

describe('runsTouching', () => {
  const shop = { services: ['orders-api', 'postgres'], endpoints: ['orders-api GET /orders', 'orders-api GET /orders/{id}', 'orders-api POST /orders/{id}/pay'] };
  const pay = { services: ['payments'], endpoints: ['payments POST /payments'] };
  const runs = [
    runRecord({ command: 'npm test', touched: shop, verdict: 'fail' }),
    runRecord({ command: 'npm test', touched: shop }),
    runRecord({ command: 'npm run pay-tests', touched: pay }),
  ];

  it('finds the commands that exercised a service, with their last run', () => {
    const t = runsTouching(runs, { service: 'orders-api' });
    expect(t).toEqual([{ command: 'npm test', cwd: '/src/shop', runs: 2, matched: ['orders-api'], lastRun: { id: runs[1]!.id, startedAt: runs[1]!.startedAt, verdict: 'pass', exitCode: 0, snapshot: runs[1]!.snapshot } }]);
    expect(runsTouching(runs, { service: 'postgres' }).map((c) => c.command)).toEqual(['npm test']);
    expect(runsTouching(runs, { service: 'nobody' })).toEqual([]);
  });

  it('matches a concrete path by its endpoint template, a template as is, and globs', () => {
    expect(runsTouching(runs, { path: '/orders/42' })[0]!.matched).toEqual(['orders-api GET /orders/{id}']);
    expect(runsTouching(runs, { path: '/orders/42?full=1' })[0]!.matched).toEqual(['orders-api GET /orders/{id}']);
    expect(runsTouching(runs, { path: '/orders/{id}/pay' })[0]!.matched).toEqual(['orders-api POST /orders/{id}/pay']);
    expect(runsTouching(runs, { path: '/orders/**' })[0]!.matched).toHaveLength(2);
    expect(runsTouching(runs, { path: '/payments', service: 'payments' }).map((c) => c.command)).toEqual(['npm run pay-tests']);
    expect(runsTouching(runs, { path: '/payments', service: 'orders-api' })).toEqual([]);
    expect(runsTouching(runs, {})).toEqual([]);
  });

  it('any {name} in a template is a placeholder: OpenAPI-style paths match the {id} runs store', () => {
    expect(runsTouching(runs, { path: '/orders/{orderId}' })[0]!.matched).toEqual(['orders-api GET /orders/{id}']);
    expect(runsTouching(runs, { path: '/orders/{orderId}/pay' })[0]!.matched).toEqual(['orders-api POST /orders/{id}/pay']);
    expect(runsTouching(runs, { path: '/orders/{orderId}/*' })[0]!.matched).toEqual(['orders-api POST /orders/{id}/pay']);
    const named = [runRecord({ touched: { services: ['orders-api'], endpoints: ['orders-api GET /orders/{orderId}'] } })];
    expect(runsTouching(named, { path: '/orders/7' })[0]!.matched).toEqual(['orders-api GET /orders/{orderId}']);
  });

  it('judges each command by its last run: one that no longer touches it is left out; cancelled and traffic-less runs are skipped', () => {
    const old = runRecord({ command: 'npm run legacy', touched: shop });
    const gone = runRecord({ command: 'npm run legacy', touched: pay });
    const touchedThen = runRecord({ command: 'npm run e2e', touched: shop, verdict: 'fail' });
    const cancelled = runRecord({ command: 'npm run e2e', cancelled: true, verdict: 'inconclusive', exitCode: null, flows: 0 });
    const down = runRecord({ command: 'npm run e2e', flows: 0, verdict: 'inconclusive' });
    const t = runsTouching([old, gone, touchedThen, cancelled, down, ...runs], { service: 'orders-api' });
    // Most recently run first, by the run each is judged by (the shared runs are the oldest here).
    expect(t.map((c) => c.command)).toEqual(['npm run e2e', 'npm test']);
    expect(t[0]).toMatchObject({ runs: 1, skippedNewer: 2, lastRun: { id: touchedThen.id, verdict: 'fail' }, matched: ['orders-api'] });
    expect(t[1]!.skippedNewer).toBeUndefined();
    // The same command in another directory is another command.
    expect(runsTouching([old, gone, runRecord({ command: 'npm run legacy', cwd: '/elsewhere', touched: shop })], { service: 'orders-api' }))
      .toMatchObject([{ command: 'npm run legacy', cwd: '/elsewhere', runs: 1 }]);
  });
});
