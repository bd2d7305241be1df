import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunRecord, RunRecordError, openRunLog } from '../../src/run/record.js';
import { RunLog } from '../../src/store/runs.js';
import { finding, runRecord } from './records.js';

const dir = () => mkdtempSync(join(tmpdir(), 'tapwire-runlog-'));

describe('RunLog (runs.jsonl)', () => {
  it('appends one line per run and reads them back newest first, also from a new process', () => {
    const d = dir();
    const log = openRunLog(d);
    const runs = [runRecord(), runRecord({ verdict: 'fail', findings: [finding('n-plus-one error # calls')] }), runRecord()];
    for (const r of runs) log.append(r);
    expect(readFileSync(join(d, 'runs.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3);
    const again = openRunLog(d).list();
    expect(again.problems).toEqual([]);
    expect(again.runs.map((r) => r.id)).toEqual(runs.map((r) => r.id).reverse());
    expect(again.runs[1]).toEqual(runs[1]);
    expect(openRunLog(d).list(2).runs).toHaveLength(2);
  });

  it('a torn last line (a crash mid-write) is reported, not thrown, and the next run starts a fresh line', () => {
    const d = dir();
    const log = openRunLog(d);
    const first = runRecord();
    log.append(first);
    const torn = JSON.stringify(runRecord()).slice(0, 40);
    appendFileSync(join(d, 'runs.jsonl'), torn);
    const read = openRunLog(d).list();
    expect(read.runs.map((r) => r.id)).toEqual([first.id]);
    expect(read.problems).toEqual([expect.stringMatching(/^runs\.jsonl line 2: cut short .*; skipped$/)]);
    const next = runRecord();
    openRunLog(d).append(next);
    const after = openRunLog(d).list();
    expect(after.runs.map((r) => r.id)).toEqual([next.id, first.id]);
    // The torn fragment stays what it was: one bad line in the middle now, still reported.
    expect(after.problems).toEqual([expect.stringMatching(/^runs\.jsonl line 2: not JSON/)]);
  });

  it('skips lines that are JSON but not runs, naming the line and the field', () => {
    const d = dir();
    writeFileSync(join(d, 'runs.jsonl'), `${JSON.stringify(runRecord())}\n{"id":"run-000000000abc","startedAt":1}\n${JSON.stringify({ ...runRecord(), verdict: 'maybe' })}\n`);
    const r = openRunLog(d).list();
    expect(r.runs).toHaveLength(1);
    expect(r.problems).toEqual([
      'runs.jsonl line 2: endedAt: expected epoch seconds, got undefined; skipped',
      'runs.jsonl line 3: verdict: expected one of pass, fail, inconclusive, got "maybe"; skipped',
    ]);
  });

  it('is bounded: past maxRuns and a tenth it is rewritten with the newest maxRuns', () => {
    const d = dir();
    const log = RunLog.open(d, { maxRuns: 20 });
    const runs = Array.from({ length: 23 }, () => runRecord());
    for (const r of runs) log.append(r);
    const kept = RunLog.open(d).list().runs;
    expect(kept).toHaveLength(20);
    expect(kept.map((r) => r.id)).toEqual(runs.slice(-20).map((r) => r.id).reverse());
    expect(readFileSync(join(d, 'runs.jsonl'), 'utf8').trim().split('\n')).toHaveLength(20);
  });
});

describe('parseRunRecord: field by field', () => {
  const bad = (v: unknown) => {
    try {
      parseRunRecord(v);
    } catch (e) {
      if (e instanceof RunRecordError) return e.message;
      throw e;
    }
    return 'accepted';
  };

  it.each([
    [null, 'body: expected an object, got null'],
    [{ ...runRecord(), id: 'x' }, 'id: "x" is not a run id ("run-" and 12 hex digits)'],
    [{ ...runRecord(), startedAt: 10, endedAt: 5 }, 'endedAt: 5 is before startedAt 10'],
    [{ ...runRecord(), exitCode: 300 }, 'exitCode: expected an exit status 0-255 or null, got 300'],
    [{ ...runRecord(), findings: [{ ...finding('x'), severity: 'fatal' }] }, 'findings[0].severity: expected one of error, warning, info, got "fatal"'],
    [{ ...runRecord(), findings: [{ ...finding('x'), evidence: [{ flowId: 1 }] }] }, 'findings[0].evidence[0].flowId: expected a string, got number'],
    [{ ...runRecord(), touched: { services: ['a', 2], endpoints: [] } }, 'touched.services[1]: expected a string, got number'],
    [{ ...runRecord(), extra: 1 }, expect.stringMatching(/^extra: unknown field \(known: id, /)],
    [{ ...runRecord(), code: { commit: 'abc' } }, 'code.dirty: expected a string, got undefined'],
    [{ ...runRecord(), verified: 'yes' }, 'verified: expected true or false, got string'],
    [{ ...runRecord(), startedAt: -1 }, 'startedAt: expected epoch seconds, got -1'],
    [{ ...runRecord(), flows: 1.5 }, 'flows: expected a whole number, got 1.5'],
    [{ ...runRecord(), command: 'x'.repeat(9000) }, 'command: longer than 8192 characters'],
    [{ ...runRecord(), findings: [{ ...finding('x'), evidence: [{ flowId: 'f', time: 1, summary: 's', frames: [1] }] }] }, 'findings[0].evidence[0].frames: expected [first, last] frame numbers'],
    [{ ...runRecord(), touched: { services: [], endpoints: [], more: [] } }, expect.stringMatching(/^touched\.more: unknown field \(known: services, endpoints\)$/)],
  ])('%#: %j', (v, message) => {
    expect(bad(v)).toEqual(message);
  });

  it('accepts a whole record', () => {
    expect(bad(runRecord({ exitCode: null, signal: 'SIGTERM', timedOut: true, code: { commit: 'a'.repeat(40), dirty: '' }, spec: { name: 'checks.yaml', hash: '0123' }, drained: 'proven', verified: true }))).toBe('accepted');
    // Runs kept before `verified` was recorded still load.
    expect(bad(runRecord())).toBe('accepted');
  });
});
