import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveCaptureUnavailable } from '../../src/capture/live.js';
import { readEvents } from '../../src/client/sse.js';

/**
 * Continuous validation end to end: `tapwire agent --spec` on lo, the demo shop's real services
 * and PostgreSQL (examples/demo/test.mjs), and a client following /api/verdicts/stream. When the
 * buggy version is "redeployed" over the fixed one, the stream says the retry check now fails,
 * with evidence, without being asked.
 */
const root = process.getuid?.() === 0;
const why = !root ? 'needs root (live capture, initdb as postgres)'
  : liveCaptureUnavailable() || (existsSync('/usr/lib/postgresql/15/bin/initdb') ? '' : 'needs PostgreSQL 15 (apt-get install postgresql)');
if (why) console.log(`skipping standing-spec agent test: ${why}`);

interface Change { spec: string; previous: string | null; verdict: string; summary: string; appeared: { kind: string; evidence: unknown[] }[] }

describe.skipIf(why !== '')('tapwire agent --spec: verdict changes stream as traffic changes', () => {
  let agent: ChildProcess;
  let base = '';
  beforeAll(async () => {
    spawnSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-verdicts-'));
    agent = spawn(process.execPath, ['dist/cli/main.js', 'agent', '--interface', 'lo', '--listen', '127.0.0.1:0', '--data-dir', dir,
      '--spec', 'examples/specs/demo.yaml', '--spec-window', '6s', '--filter', 'tcp and (port 8080 or port 8081 or host 127.0.0.4)'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TAPWIRE_TOKEN: '' } });
    let err = '';
    base = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`agent not up: ${err}`)), 20_000);
      agent.stderr!.on('data', (d) => {
        err += d;
        const m = /API on (http:\/\/[^;]+);/.exec(err);
        if (m) { clearTimeout(t); resolve(m[1]!); }
      });
    });
    expect(err).toMatch(/1 standing spec judged over the last 6s, at \/api\/verdicts/);
  }, 30_000);
  afterAll(() => { agent?.kill('SIGTERM'); });

  const demo = (fixed: boolean) => {
    const r = spawnSync(process.execPath, ['examples/demo/test.mjs', ...(fixed ? ['--fixed'] : [])], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  };

  it('fixed → passing; buggy redeployed → "now FAILING" with the retry evidence; both listed at /api/verdicts', async () => {
    const ac = new AbortController();
    const changes: Change[] = [];
    const res = await fetch(`${base}/api/verdicts/stream`, { signal: ac.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reading = (async () => {
      try {
        for await (const ev of readEvents(res.body!, ac.signal)) if (ev.event === 'change') changes.push(JSON.parse(ev.data) as Change);
      } catch { /* aborted */ }
    })();
    const until = async (pred: () => boolean, what: string) => {
      for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(pred(), `${what}; changes: ${JSON.stringify(changes.map((c) => c.summary))}`).toBe(true);
    };

    demo(true);
    await until(() => changes.at(-1)?.verdict === 'pass', 'the fixed demo passes');
    // The window (6 s) moves past the fixed run before the buggy one, as after a redeploy.
    await new Promise((r) => setTimeout(r, 6500));
    demo(false);
    // The buggy run's flows arrive over a few seconds, so the verdict may turn FAILING on its first
    // requests and then add findings ("still FAILING — new error: …"): every change after the pass
    // together must name the three bugs, with all four retry attempts as evidence.
    const passed = changes.length;
    const appeared = () => changes.slice(passed).flatMap((c) => c.appeared);
    const kinds = () => new Set(appeared().map((f) => f.kind));
    await until(() => ['redundant-call', 'retry', 'secret-forwarded'].every((k) => kinds().has(k)), 'the buggy demo fails with its three bugs');
    // Between the runs the window may have emptied (inconclusive: no flows); then it fails.
    const at = changes.findIndex((c, i) => i >= passed && c.verdict === 'fail');
    const failing = changes[at]!;
    expect(['pass', 'inconclusive']).toContain(failing.previous);
    expect(failing.summary).toMatch(/^demo\.yaml: now FAILING/);
    expect(changes.slice(at).every((c) => c.verdict === 'fail')).toBe(true);
    // The retry finding may first appear with the attempts seen so far; the current verdict has all four.
    expect(appeared().find((f) => f.kind === 'retry')!.evidence.length).toBeGreaterThanOrEqual(2);
    type Current = { specs: { spec: string; verdict: string; findings: { kind: string; evidence: unknown[] }[] }[] };
    const current = async () => await (await fetch(`${base}/api/verdicts`)).json() as Current;
    let retry: { evidence: unknown[] } | undefined;
    for (let i = 0; i < 100 && (retry?.evidence.length ?? 0) < 4; i++) {
      retry = (await current()).specs[0]!.findings.find((f) => f.kind === 'retry');
      if ((retry?.evidence.length ?? 0) < 4) await new Promise((r) => setTimeout(r, 100));
    }
    expect(retry!.evidence).toHaveLength(4);

    const listed = await (await fetch(`${base}/api/verdicts`)).json() as { specs: { spec: string; verdict: string }[]; changes: Change[] };
    expect(listed.specs.map((s) => [s.spec, s.verdict])).toEqual([['demo.yaml', 'fail']]);
    expect(listed.changes.map((c) => c.verdict)).toEqual(changes.map((c) => c.verdict));
    ac.abort();
    await reading;
  }, 120_000);
});
