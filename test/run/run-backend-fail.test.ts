import { describe, expect, it } from 'vitest';
import type { Backend, RunRecord, StoppedSnapshot } from '../../src/run/backend.js';
import { runAndVerify, runExitCode } from '../../src/run/run.js';

/**
 * The loop's own logic with a backend that fails where a real one can (an agent that went away
 * mid-run): the command's result still comes back, unverified and saying why. No capture, no root.
 */
function backend(fail: { stop?: boolean; flows?: boolean; addRun?: boolean }): Backend & { kept: RunRecord[] } {
  const kept: RunRecord[] = [];
  const snap: StoppedSnapshot = { id: 'snap-000000000001', since: 1, until: 2, createdAt: 1, open: false, drained: 'proven' };
  const no = (what: string) => () => Promise.reject(new Error(`${what} failed`));
  return {
    kind: 'agent', kept, describe: () => 'a test backend',
    startSnapshot: async () => ({ id: snap.id }),
    stopSnapshot: fail.stop ? no('stop') : async () => snap,
    snapshotFlows: fail.flows ? no('flows') : async () => [],
    addRun: fail.addRun ? no('addRun') : async (r) => { kept.push(r); },
    listSnapshots: async () => [snap], getSnapshot: async () => snap, query: async () => ({ flows: [] }), flow: async () => undefined,
    exportPcap: no('export'), runs: async () => kept, close: async () => {},
  };
}

describe('runAndVerify when the backend fails after the command ran', () => {
  it('a snapshot that cannot be stopped: inconclusive, the reason given, the run kept', async () => {
    const b = backend({ stop: true });
    const r = await runAndVerify({ backend: b, command: 'echo done; exit 1' });
    expect(r.run).toMatchObject({ exitCode: 1, verdict: 'inconclusive', reason: 'the snapshot could not be stopped: stop failed', snapshot: 'snap-000000000001' });
    expect(r.snapshot).toBeUndefined();
    expect(r.outputTail).toBe('done');
    expect(r.warnings).toEqual(['the snapshot could not be stopped: stop failed']);
    expect(b.kept).toEqual([r.run]);
    expect(runExitCode(r)).toBe(4);
  });

  it('flows that cannot be read, a run that cannot be kept: both said, the result still returned', async () => {
    const r = await runAndVerify({ backend: backend({ flows: true, addRun: true }), command: ['true'] });
    expect(r.verdict).toMatchObject({ verdict: 'inconclusive', reason: "the snapshot's flows could not be read: flows failed" });
    expect(r.kept).toBe(false);
    expect(r.warnings).toEqual(["the snapshot's flows could not be read: flows failed", 'the run could not be kept: addRun failed']);
    expect(runExitCode(r)).toBe(3);
  });

  it('a working backend with no traffic: inconclusive (no flows), the spec named and hashed in the run', async () => {
    const b = backend({});
    const r = await runAndVerify({ backend: b, command: ['true'], spec: { text: 'version: 1\n', name: 'empty.yaml' } });
    expect(r.run).toMatchObject({ exitCode: 0, verdict: 'inconclusive', reason: 'no flows to verify', spec: { name: 'empty.yaml', hash: expect.stringMatching(/^[0-9a-f]{16}$/) }, drained: 'proven', source: 'agent' });
    expect(r.kept).toBe(true);
  });
});
